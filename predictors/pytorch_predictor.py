"""PyTorch predictor: TorchScript programs (`.pt`, `.ts`).

TorchScript archives hold code in TorchScript's own restricted language and tensors, never pickled
Python objects, so loading one runs no Python from its author. torch.export's `.pt2` is not accepted:
torch 2.13's `torch.export.load` falls back to unrestricted unpickling when its safe path fails.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from carml.errors import CarmlError, FrameworkUnavailable
from carml.manifest.steps import Cast, Decode, Normalize
from predictors.base import Feed, PixelBatch, Predictor, PreparedItem, parse_device
from predictors.profiling import OperatorEvent, OperatorProfiler

# `framework.precision` -> the torch dtype weights and floating-point inputs are cast to (None: as stored).
PRECISION_DTYPES = {"fp32": None, "bf16": "bfloat16", "fp16": "float16"}


class PyTorchPredictor(Predictor):
    framework = "pytorch"
    module = "torch"
    distributions = ("torch",)
    install_hint = "pip install 'carml[torch]'"
    artifact_suffixes = (".pt", ".ts")
    precisions = tuple(PRECISION_DTYPES)

    def _load(self, device: str) -> str:
        import torch

        kind, index = parse_device(device)
        if kind == "cuda" and not torch.cuda.is_available():
            raise FrameworkUnavailable("CUDA was requested but torch sees no CUDA device")
        chosen = f"cuda:{index}" if kind == "cuda" or (kind == "auto" and torch.cuda.is_available()) else "cpu"
        self._torch = torch
        self._device = torch.device(chosen)
        if self.threads > 0:
            torch.set_num_threads(self.threads)  # process-wide: a worker runs one thread budget for all its models
        self._device_constants: dict[float | tuple[float, ...], Any] = {}
        dtype_name = PRECISION_DTYPES[self.manifest.framework.precision]
        self._dtype = getattr(torch, dtype_name) if dtype_name else None
        try:
            self._module = torch.jit.load(str(self.model_path), map_location=self._device)
            self._module.eval()
            if self._dtype is not None:
                self._module.to(self._dtype)  # floating-point weights and buffers; inputs are cast in `_tensor`
        except Exception as exc:  # torch raises RuntimeError, ValueError, zipfile errors ... for bad files
            raise CarmlError(f"torch cannot load {self.model_path}: {exc}") from None
        return chosen

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._run_feeds(dict(feeds))

    def _run_feeds(self, feeds: dict[str, Feed]) -> dict[str, np.ndarray]:
        torch = self._torch
        names = [i.name for i in self.manifest.inputs] + [c.name for c in self.manifest.constants]
        with torch.inference_mode():
            result = self._module(*[self._tensor(feeds[n]) for n in names])
        return self._outputs_by_name(result)

    def _tensor(self, feed: Feed) -> Any:
        """A feed on the model's device, in the model's precision. On an accelerator a pixel batch goes there as it
        is (uint8, a quarter of float32's bytes) and its remaining steps run there; on the CPU numpy's are faster
        (torch's took ten times as long on a 32 x 128 x 128 batch)."""
        if isinstance(feed, PixelBatch) and self._device.type != "cpu":
            tensor = self._finish_on_device(feed)
        else:
            array = feed.finish() if isinstance(feed, PixelBatch) else np.ascontiguousarray(feed)
            tensor = self._torch.from_numpy(array).to(self._device)
        if self._dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(self._dtype)
        return tensor

    def _finish_on_device(self, feed: PixelBatch) -> Any:
        """`PixelBatch.finish` in torch on the model's device: the same float32 operations in the same order."""
        torch = self._torch
        value = torch.from_numpy(np.ascontiguousarray(feed.pixels)).to(self._device)
        for step in feed.spec.preprocessing[feed.tail :]:
            if isinstance(step, Normalize):
                value = value.to(torch.float32) * self._constant(step.scale)
                if step.mean is not None:
                    value = value - self._constant(step.mean)
                if step.std is not None:
                    value = value / self._constant(step.std)
            elif isinstance(step, Cast):
                value = value.to(getattr(torch, str(step.element_type)))
        decode = feed.spec.preprocessing[0]
        if isinstance(decode, Decode) and decode.layout == "CHW":
            value = value.permute(0, 3, 1, 2)
        return value.to(getattr(torch, str(feed.spec.element_type))).contiguous()

    def _constant(self, value: float | list[float]) -> Any:
        """A normalize step's scale, mean or std on the device, copied there once rather than with every batch."""
        key = tuple(value) if isinstance(value, list) else value
        cached = self._device_constants.get(key)
        if cached is None:
            cached = self._device_constants[key] = self._torch.tensor(
                value, dtype=self._torch.float32, device=self._device
            )
        return cached

    def _outputs_by_name(self, result: Any) -> dict[str, np.ndarray]:
        names = [o.name for o in self.manifest.outputs]
        if isinstance(result, dict):
            return {k: self._to_numpy(v) for k, v in result.items()}
        values = list(result) if isinstance(result, (tuple, list)) else [result]
        if len(values) < len(names):
            raise CarmlError(f"the model returned {len(values)} outputs; the manifest declares {len(names)}")
        return {name: self._to_numpy(values[i]) for i, name in enumerate(names)}

    def _to_numpy(self, tensor: Any) -> np.ndarray:
        torch = self._torch
        if tensor.dtype in (torch.bfloat16, torch.float16):  # numpy has no bfloat16; answers are float32
            tensor = tensor.float()
        return tensor.detach().cpu().numpy()

    def _close(self) -> None:
        self._module = None
        if self._device.type == "cuda":
            self._torch.cuda.empty_cache()

    def operator_profiler(self) -> OperatorProfiler:
        return _TorchOperatorProfiler(self)


class _TorchOperatorProfiler(OperatorProfiler):
    """torch.profiler around each batch: every aten operator (and CUDA kernel on GPUs), nested as torch nests them."""

    def __init__(self, predictor: PyTorchPredictor):
        self.predictor = predictor
        self.events: list[OperatorEvent] = []

    def predict(self, batch: Sequence[PreparedItem]) -> list[dict[str, np.ndarray]]:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU]
        if self.predictor._device.type == "cuda":
            activities.append(ProfilerActivity.CUDA)
        called_ns = time.time_ns()
        with profile(activities=activities) as profiler:
            outputs = self.predictor.predict(batch)
        self.events.extend(_torch_events(profiler, called_ns, first_index=len(self.events)))
        return outputs

    def finish(self) -> list[OperatorEvent]:
        events, self.events = self.events, []
        return events


def _torch_events(profiler: Any, called_ns: int, first_index: int) -> list[OperatorEvent]:
    """The profiled operators with wall-clock times; `parent` indexes count from `first_index`."""
    events = list(profiler.events() or [])
    if not events:
        return []
    # Event times are microseconds after the trace's start; kineto knows that start on the wall clock.
    try:
        base_ns = int(profiler.profiler.kineto_results.trace_start_ns())
    except AttributeError:  # an older torch: line the first operator up with the call instead
        base_ns = called_ns - int(min(e.time_range.start for e in events) * 1000)
    position = {event.id: first_index + i for i, event in enumerate(events)}
    return [
        OperatorEvent(
            name=event.name,
            start_ns=base_ns + int(event.time_range.start * 1000),
            end_ns=base_ns + int(event.time_range.end * 1000),
            parent=position.get(event.cpu_parent.id) if event.cpu_parent is not None else None,
            attributes={"device": str(event.device_type).rsplit(".", 1)[-1].lower()},
        )
        for event in events
    ]
