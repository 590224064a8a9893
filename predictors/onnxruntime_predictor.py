"""ONNX Runtime predictor: `.onnx` graphs on the CPU, or on CUDA through the CUDA execution provider."""

from __future__ import annotations

from typing import Any

import numpy as np

from carml.errors import CarmlError, FrameworkUnavailable
from predictors.base import Predictor, parse_device


class OnnxRuntimePredictor(Predictor):
    framework = "onnxruntime"
    module = "onnxruntime"
    distributions = ("onnxruntime", "onnxruntime-gpu")
    install_hint = "pip install 'carml[onnx]'"
    artifact_suffixes = (".onnx",)

    def _load(self, device: str) -> str:
        import onnxruntime as ort

        kind, index = parse_device(device)
        has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
        if kind == "cuda" and not has_cuda:
            raise FrameworkUnavailable(
                "CUDA was requested but this onnxruntime has no CUDA provider (install onnxruntime-gpu)"
            )
        providers: list[Any] = ["CPUExecutionProvider"]
        if has_cuda and kind in ("cuda", "auto"):
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": index}))
        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initializers are noise to users
        try:
            self._session = ort.InferenceSession(str(self.model_path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
            raise CarmlError(f"onnxruntime cannot load {self.model_path}: {exc}") from None
        graph_inputs = {i.name for i in self._session.get_inputs()}
        declared = {i.name for i in self.manifest.inputs} | {c.name for c in self.manifest.constants}
        if graph_inputs - declared or declared - graph_inputs:
            raise CarmlError(
                f"{self.manifest.key}: the manifest declares inputs {sorted(declared)} "
                f"but the ONNX graph has {sorted(graph_inputs)}"
            )
        self._output_names = [o.name for o in self.manifest.outputs]
        used = self._session.get_providers()[0]
        return f"cuda:{index}" if used == "CUDAExecutionProvider" else "cpu"

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self._session.run(self._output_names, feeds)
        return dict(zip(self._output_names, values, strict=True))

    def _close(self) -> None:
        self._session = None
