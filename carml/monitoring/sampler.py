"""A background thread that reads this process's CPU and memory, and NVIDIA GPUs through NVML, at an interval.

Standalone on purpose: it imports only the standard library, psutil and (when installed) pynvml, so it runs
on a bare GPU machine as well as in a worker. A machine without NVML (no package, no driver, no GPU) is
normal: the GPU part is then a silent no-op. A query the GPU or driver refuses mid-run (power on some
boards, the energy counter before Volta) is recorded as None, never raised: a run is never lost to its
measurement.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

MIB = 1024 * 1024


@dataclass(frozen=True)
class GpuReading:
    """One GPU at one moment. `index` is NVML's (as nvidia-smi numbers devices), not the framework's."""

    index: int
    utilization_percent: float | None
    memory_used_mib: float | None
    power_w: float | None
    energy_j: float | None  # since sampling started, from the device's cumulative energy counter


@dataclass(frozen=True)
class Sample:
    """One reading of the process and of every GPU sampled."""

    taken_at: float  # epoch seconds, comparable with the evaluation's timed window
    elapsed_s: float  # since sampling started
    cpu_percent: float | None  # this process, 100 per busy core; None on the first sample (no interval yet)
    rss_mib: float | None
    gpus: tuple[GpuReading, ...] = ()


def gpus_for_device(device: str | None, visible_devices: str | None) -> list[str]:
    """NVML selectors (an index, or a UUID or its prefix) of the GPU a framework device like "cuda:1" is.

    Frameworks number GPUs among CUDA_VISIBLE_DEVICES; NVML ignores that variable and numbers every GPU,
    so "cuda:1" under CUDA_VISIBLE_DEVICES=2,3 is NVML's device 3. A device that is not CUDA samples no GPU.
    NB: CUDA orders devices fastest first unless CUDA_DEVICE_ORDER=PCI_BUS_ID, NVML by PCI bus; on a machine
    of identical GPUs (the case CarML's one-worker-per-GPU layout is for) the two orders agree.
    """
    if not device or not device.startswith("cuda"):
        return []
    ordinal = device.partition(":")[2]
    position = int(ordinal) if ordinal.isdigit() else 0
    if visible_devices is None:
        return [str(position)]
    usable = []
    for entry in (e.strip() for e in visible_devices.split(",")):
        if not entry or entry.startswith("-"):  # CUDA ignores this entry and every one after it
            break
        usable.append(entry)
    return [usable[position]] if position < len(usable) else []


@dataclass
class _Device:
    index: int
    handle: Any
    name: str | None
    uuid: str | None
    energy_base_mj: int | None = None
    unsupported: set[str] = field(default_factory=set)


class _Nvml:
    """Open handles of the selected GPUs; each field is queried on its own, so one refusal costs only that field."""

    def __init__(self, nvml: Any, devices: list[_Device]):
        self.nvml, self.devices = nvml, devices
        # Queries this GPU or driver will never answer: asked once, then no longer (no error on every sample).
        self.permanent = tuple(
            getattr(nvml, name)
            for name in ("NVMLError_NotSupported", "NVMLError_FunctionNotFound")
            if hasattr(nvml, name)
        )

    @classmethod
    def open(cls, selectors: Sequence[str]) -> _Nvml | None:
        """The GPUs named by `selectors`, or None when there are none or NVML is missing or refuses to start."""
        if not selectors:
            return None
        try:
            import pynvml
        except ImportError:
            return None
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError:
            return None
        try:
            devices = [d for d in (cls._resolve(pynvml, s) for s in selectors) if d is not None]
        except pynvml.NVMLError:
            devices = []
        if not devices:
            cls._shutdown(pynvml)
            return None
        opened = cls(pynvml, devices)
        for device in devices:
            device.energy_base_mj = opened._query(device, "energy", pynvml.nvmlDeviceGetTotalEnergyConsumption)
        return opened

    @staticmethod
    def _resolve(nvml: Any, selector: str) -> _Device | None:
        if selector.isdigit():
            indices = [int(selector)] if int(selector) < nvml.nvmlDeviceGetCount() else []
        else:  # a UUID as CUDA_VISIBLE_DEVICES accepts it: whole, or a prefix with or without "GPU-"
            wanted = (selector, f"GPU-{selector}")
            indices = [
                i
                for i in range(nvml.nvmlDeviceGetCount())
                if (_text(nvml, nvml.nvmlDeviceGetUUID, nvml.nvmlDeviceGetHandleByIndex(i)) or "").startswith(wanted)
            ][:1]
        if not indices:
            return None
        handle = nvml.nvmlDeviceGetHandleByIndex(indices[0])
        return _Device(
            indices[0], handle, _text(nvml, nvml.nvmlDeviceGetName, handle), _text(nvml, nvml.nvmlDeviceGetUUID, handle)
        )

    def _query(self, device: _Device, name: str, query: Callable[[Any], Any]) -> Any:
        if name in device.unsupported:
            return None
        try:
            return query(device.handle)
        except self.permanent:
            device.unsupported.add(name)
        except self.nvml.NVMLError:  # e.g. GPU_IS_LOST or a timeout: this reading only
            pass
        return None

    def read(self) -> tuple[GpuReading, ...]:
        nvml, readings = self.nvml, []
        for device in self.devices:
            utilization = self._query(device, "utilization", nvml.nvmlDeviceGetUtilizationRates)
            memory = self._query(device, "memory", nvml.nvmlDeviceGetMemoryInfo)
            power_mw = self._query(device, "power", nvml.nvmlDeviceGetPowerUsage)
            energy_mj = self._query(device, "energy", nvml.nvmlDeviceGetTotalEnergyConsumption)
            base = device.energy_base_mj
            readings.append(
                GpuReading(
                    index=device.index,
                    utilization_percent=float(utilization.gpu) if utilization is not None else None,
                    memory_used_mib=memory.used / MIB if memory is not None else None,
                    power_w=power_mw / 1000 if power_mw is not None else None,
                    energy_j=(energy_mj - base) / 1000 if energy_mj is not None and base is not None else None,
                )
            )
        return tuple(readings)

    def describe(self) -> list[dict[str, Any]]:
        return [{"index": d.index, "name": d.name, "uuid": d.uuid} for d in self.devices]

    def close(self) -> None:
        self._shutdown(self.nvml)

    @staticmethod
    def _shutdown(nvml: Any) -> None:
        with contextlib.suppress(nvml.NVMLError):
            nvml.nvmlShutdown()


def _text(nvml: Any, query: Callable[[Any], Any], handle: Any) -> str | None:
    try:
        value = query(handle)
    except nvml.NVMLError:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def process_peak_rss_mib() -> float | None:
    """This process's highest resident memory since it started (the kernel's high-water mark)."""
    try:
        import resource
    except ImportError:  # not on Unix
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


class HardwareSampler:
    """Samples every `interval_s` seconds from `start()` to `stop()`, plus once at each end.

    The readings at start and stop bracket whatever ran in between, so a window inside it can be
    interpolated (see `summary.counter_between`). Use as a context manager or call start/stop.
    """

    def __init__(self, interval_s: float = 0.5, gpus: Sequence[str] = ()):
        if not interval_s > 0:
            raise ValueError(f"the sampling interval must be more than 0 s, got {interval_s}")
        self.interval_s = interval_s
        self.gpu_selectors = list(gpus)
        self.samples: list[Sample] = []
        self.gpus: list[dict[str, Any]] = []  # index, name and uuid of each GPU read
        self.process_peak_rss_mib: float | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._process: psutil.Process | None = None
        self._nvml: _Nvml | None = None
        self._started = 0.0

    def start(self) -> HardwareSampler:
        if self._thread is not None:
            raise RuntimeError("this sampler has already been started")
        self._process = psutil.Process(os.getpid())
        self._nvml = _Nvml.open(self.gpu_selectors)
        self.gpus = self._nvml.describe() if self._nvml else []
        self._started = time.monotonic()
        self._take(first=True)
        self._thread = threading.Thread(target=self._loop, name="carml-hardware-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        """Stop sampling (once; later calls change nothing) and return every sample taken."""
        if self._thread is None or self._stopping.is_set():
            return self.samples
        self._stopping.set()
        self._thread.join()
        self._take()
        if self._nvml is not None:
            self._nvml.close()
        self.process_peak_rss_mib = process_peak_rss_mib()
        return self.samples

    def __enter__(self) -> HardwareSampler:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stopping.wait(self.interval_s):
            self._take()

    def _take(self, first: bool = False) -> None:
        taken_at, elapsed = time.time(), time.monotonic() - self._started
        cpu = rss = None
        assert self._process is not None
        try:
            # psutil measures CPU since its previous call: the first call only sets the starting point.
            percent = self._process.cpu_percent(interval=None)
            cpu = None if first else percent
            rss = self._process.memory_info().rss / MIB
        except (psutil.Error, OSError):
            pass
        gpus = self._nvml.read() if self._nvml is not None else ()
        self.samples.append(Sample(taken_at, elapsed, cpu, rss, gpus))
