"""What machine we run on: CPU model and cores, NVIDIA GPUs (through NVML when it is installed).

A machine without NVIDIA's library is normal here, never an error: GPU fields are then empty.
"""

from __future__ import annotations

import os
import platform
from functools import cache
from pathlib import Path
from typing import Any


@cache
def cpu_model() -> str:
    """The CPU's marketing name, from /proc/cpuinfo where there is one."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_cores() -> int:
    """Cores this process may use (the affinity mask, not the whole machine)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def gpus() -> list[dict[str, Any]]:
    """NVIDIA GPUs seen by NVML: name, memory, driver, CUDA version. Empty without NVML or GPUs."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return []
    found: list[dict[str, Any]] = []
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            found.append(
                {
                    "index": index,
                    "name": pynvml.nvmlDeviceGetName(handle),
                    "memory_mib": pynvml.nvmlDeviceGetMemoryInfo(handle).total // (1024 * 1024),
                    "driver": driver,
                    "cuda": f"{cuda // 1000}.{cuda % 1000 // 10}",
                }
            )
    except (pynvml.NVMLError, AttributeError):
        # A query this driver or binding lacks: what was read so far is still true, and a finished
        # run must never be lost to its hardware description.
        pass
    finally:
        pynvml.nvmlShutdown()
    return found


_TAG_NOISE = {"nvidia", "geforce", "tesla", "quadro", "pcie", "hbm", "hbm2", "hbm2e", "hbm3", "hbm3e", "nvl"}


def tag_for_gpu(name: str) -> str:
    """A hardware tag from an NVIDIA device name: 'NVIDIA H100 80GB HBM3' -> 'nvidia-h100'."""
    tokens = [t for t in name.lower().replace("-", " ").replace("_", " ").split() if t]
    kept = [
        t
        for t in tokens
        if t not in _TAG_NOISE and not t.startswith("sxm") and not (t.endswith("gb") and t[:-2].isdigit())
    ]
    return "nvidia-" + "-".join(kept) if kept else "nvidia-gpu"


def detect_hardware_tag() -> str:
    """The tag this machine's work should be routed by: its first NVIDIA GPU's model, else `cpu`."""
    found = gpus()
    return tag_for_gpu(found[0]["name"]) if found else "cpu"


def framework_versions() -> dict[str, str | None]:
    """Installed version of every known predictor's framework (None where it is not installed)."""
    from predictors.registry import predictor_classes

    return {name: cls.availability().version for name, cls in predictor_classes().items()}
