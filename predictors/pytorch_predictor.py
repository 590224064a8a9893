"""PyTorch predictor: TorchScript programs (`.pt`, `.ts`).

TorchScript archives hold code in TorchScript's own restricted language and tensors, never pickled
Python objects, so loading one runs no Python from its author. torch.export's `.pt2` is not accepted:
torch 2.13's `torch.export.load` falls back to unrestricted unpickling when its safe path fails.
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
    artifact_suffixes = (".pt", ".ts")

    def _load(self, device: str) -> str:
        import torch

        kind, index = parse_device(device)
        if kind == "cuda" and not torch.cuda.is_available():
            raise FrameworkUnavailable("CUDA was requested but torch sees no CUDA device")
        chosen = f"cuda:{index}" if kind == "cuda" or (kind == "auto" and torch.cuda.is_available()) else "cpu"
        self._torch = torch
        self._device = torch.device(chosen)
        try:
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
