"""A third-party predictor: `logits = flatten(x) @ weights + bias`, weights read from an .npz file."""

from __future__ import annotations

import numpy as np

from carml.errors import CarmlError
from predictors.base import Predictor, parse_device


class LinearPredictor(Predictor):
    framework = "numpy-linear"
    module = "numpy"
    distributions = ("numpy",)
    install_hint = "pip install numpy"
    artifact_suffixes = (".npz",)

    def _load(self, device: str) -> str:
        kind, _ = parse_device(device)
        if kind == "cuda":
            raise CarmlError("numpy-linear runs on the CPU only")
        with np.load(self.model_path, allow_pickle=False) as weights:
            self._weights, self._bias = weights["weights"], weights["bias"]
        return "cpu"

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        (name,) = [i.name for i in self.manifest.inputs]
        x = feeds[name].reshape(len(feeds[name]), -1)
        return {self.manifest.outputs[0].name: x @ self._weights + self._bias}
