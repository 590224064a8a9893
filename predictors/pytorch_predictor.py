"""PyTorch predictor: TorchScript (`.pt`, `.ts`) or torch.export programs (`.pt2`).

Neither format unpickles arbitrary Python objects, so loading a model runs no code from its author.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from carml.errors import CarmlError, FrameworkUnavailable
from predictors.base import Predictor, parse_device


class PyTorchPredictor(Predictor):
    framework = "pytorch"
    module = "torch"
    distributions = ("torch",)
    install_hint = "pip install 'carml[torch]'"
    artifact_suffixes = (".pt", ".ts", ".pt2")

    def _load(self, device: str) -> str:
        import torch

        kind, index = parse_device(device)
        if kind == "cuda" and not torch.cuda.is_available():
            raise FrameworkUnavailable("CUDA was requested but torch sees no CUDA device")
        chosen = f"cuda:{index}" if kind == "cuda" or (kind == "auto" and torch.cuda.is_available()) else "cpu"
        self._torch = torch
        self._device = torch.device(chosen)
        try:
            if self.model_path.suffix == ".pt2":
                self._module = torch.export.load(str(self.model_path)).module().to(self._device)
            else:
                self._module = torch.jit.load(str(self.model_path), map_location=self._device)
                self._module.eval()
        except Exception as exc:  # torch raises RuntimeError, ValueError, zipfile errors ... for bad files
            raise CarmlError(f"torch cannot load {self.model_path}: {exc}") from None
        return chosen

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        names = [i.name for i in self.manifest.inputs] + [c.name for c in self.manifest.constants]
        args = [torch.from_numpy(np.ascontiguousarray(feeds[n])).to(self._device) for n in names]
        with torch.inference_mode():
            result = self._module(*args)
        return self._outputs_by_name(result)

    def _outputs_by_name(self, result: Any) -> dict[str, np.ndarray]:
        names = [o.name for o in self.manifest.outputs]
        if isinstance(result, dict):
            return {k: v.detach().cpu().numpy() for k, v in result.items()}
        values = list(result) if isinstance(result, (tuple, list)) else [result]
        if len(values) < len(names):
            raise CarmlError(f"the model returned {len(values)} outputs; the manifest declares {len(names)}")
        return {name: values[i].detach().cpu().numpy() for i, name in enumerate(names)}

    def _close(self) -> None:
        self._module = None
        if self._device.type == "cuda":
            self._torch.cuda.empty_cache()
