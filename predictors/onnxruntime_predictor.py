"""ONNX Runtime predictor: `.onnx` graphs on the CPU, or on CUDA through the CUDA execution provider."""

from __future__ import annotations

import bisect
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from carml.errors import CarmlError, FrameworkUnavailable
from predictors.base import Predictor, PreparedItem, parse_device
from predictors.profiling import OperatorEvent, OperatorProfiler


class OnnxRuntimePredictor(Predictor):
    framework = "onnxruntime"
    module = "onnxruntime"
    distributions = ("onnxruntime", "onnxruntime-gpu")
    install_hint = "pip install 'carml[onnx]'"
    artifact_suffixes = (".onnx",)
    #: Set before `load` to record an onnxruntime profile (files starting with this path); see operator_profiler.
    profile_prefix: str | None = None

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
        if self.profile_prefix:
            options.enable_profiling, options.profile_file_prefix = True, self.profile_prefix
        if self.threads > 0:
            # NB: onnxruntime ignores OMP_NUM_THREADS; its own pools are sized here.
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
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

    def operator_profiler(self) -> OperatorProfiler:
        return _OnnxOperatorProfiler(self)


class _OnnxOperatorProfiler(OperatorProfiler):
    """onnxruntime's session profiler: each graph node's kernel time, under the `model_run` it belongs to.

    NB: onnxruntime profiles a whole session and cannot start again once stopped, so batches run on a
    second session of the same model, created for this profiler, and the cached one stays unprofiled.
    """

    def __init__(self, predictor: OnnxRuntimePredictor):
        self.folder = Path(tempfile.mkdtemp(prefix="carml-ort-profile-"))
        self.twin = type(predictor)(predictor.manifest, predictor.model_path, predictor.requested_device)
        self.twin.threads, self.twin.profile_prefix = predictor.threads, str(self.folder / "profile")
        try:
            self.twin.load(predictor.labels)
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    def predict(self, batch: Sequence[PreparedItem]) -> list[dict[str, np.ndarray]]:
        return self.twin.predict(batch)

    def finish(self) -> list[OperatorEvent]:
        try:
            session = self.twin._session
            started_ns = session.get_profiling_start_time_ns()
            report = json.loads(Path(session.end_profiling()).read_text())
        finally:
            self.twin.close()
            shutil.rmtree(self.folder, ignore_errors=True)
        return _onnx_events(report, started_ns)


def _onnx_events(report: list[dict[str, Any]], started_ns: int) -> list[OperatorEvent]:
    """`model_run` calls and the node kernels inside them, from onnxruntime's Chrome-trace JSON (µs offsets)."""

    def window(entry: dict[str, Any]) -> tuple[int, int]:
        start = started_ns + int(entry.get("ts", 0)) * 1000
        return start, start + int(entry.get("dur", 0)) * 1000

    runs = sorted(window(e) for e in report if e.get("cat") == "Session" and e.get("name") == "model_run")
    run_starts = [start for start, _ in runs]
    events = [OperatorEvent("model_run", start, end) for start, end in runs]
    for entry in report:
        name = str(entry.get("name", ""))
        if entry.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        start, end = window(entry)
        args = entry.get("args") or {}
        run = bisect.bisect_right(run_starts, start) - 1  # the last model_run that began before the kernel
        parent = run if run >= 0 and start <= runs[run][1] else None
        attributes = {"node": name.removesuffix("_kernel_time"), "provider": str(args.get("provider", ""))}
        events.append(OperatorEvent(str(args.get("op_name") or name), start, end, parent, attributes))
    return events
