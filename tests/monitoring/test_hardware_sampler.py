"""The sampler on this machine's real process counters, and NVML: read when it works, a clean no-op when not."""

from __future__ import annotations

import logging
import sys
import threading
import time
import warnings

import numpy as np
import pytest

from carml.monitoring.sampler import HardwareSampler, gpus_for_device
from carml.monitoring.summary import shard_summary


def _nvml_works() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no package, no driver library, or no GPU
        return False
    try:
        return pynvml.nvmlDeviceGetCount() > 0
    finally:
        pynvml.nvmlShutdown()


def test_a_busy_thread_shows_in_the_process_cpu() -> None:
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(1000))

    with HardwareSampler(interval_s=0.05) as sampler:
        busy = threading.Thread(target=spin)
        busy.start()
        time.sleep(0.5)
        stop.set()
        busy.join()
    samples = sampler.samples
    assert len(samples) >= 5
    assert samples[0].cpu_percent is None  # psutil needs an interval before its first reading
    assert max(s.cpu_percent for s in samples[1:]) > 50  # one core kept busy reads near 100
    assert all(s.rss_mib > 10 for s in samples)
    assert [s.elapsed_s for s in samples] == sorted(s.elapsed_s for s in samples)
    assert sampler.stop() is samples  # stopping again changes nothing


def test_peak_resident_memory_grows_when_allocating() -> None:
    with HardwareSampler(interval_s=0.02) as sampler:
        time.sleep(0.05)
        block = np.ones(256 * 2**20 // 8)  # 256 MiB, every page written
        time.sleep(0.2)
        del block
    before = sampler.samples[0].rss_mib
    peak = max(s.rss_mib for s in sampler.samples)
    assert peak - before > 200
    assert sampler.process_peak_rss_mib is not None and sampler.process_peak_rss_mib >= peak - 1


@pytest.mark.parametrize(
    ("device", "visible", "expected"),
    [
        ("cpu", None, []),
        (None, "0", []),
        ("cuda:1", None, ["1"]),
        ("cuda", None, ["0"]),
        ("cuda:1", "2,3", ["3"]),  # frameworks count among the visible devices, NVML counts them all
        ("cuda:0", "GPU-5f3c", ["GPU-5f3c"]),
        ("cuda:0", "", []),
        ("cuda:1", "0,-1,2", []),  # CUDA ignores everything from an invalid entry on
    ],
)
def test_the_gpu_sampled_is_the_one_the_model_runs_on(device, visible, expected) -> None:
    assert gpus_for_device(device, visible) == expected


def _assert_cpu_only(sampler: HardwareSampler) -> None:
    assert sampler.gpus == []
    assert sampler.samples and all(s.gpus == () for s in sampler.samples)
    summary = shard_summary(
        sampler.samples, sampler.gpus, timed_window=None, timed_items=0, interval_s=sampler.interval_s
    )
    assert summary["gpus"] == [] and summary["timed_energy_j"] is None


@pytest.mark.skipif(_nvml_works(), reason="NVML works here: the GPU path is tested instead")
def test_without_nvml_gpu_sampling_is_a_clean_no_op(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with HardwareSampler(interval_s=0.02, gpus=["0"]) as sampler:
            time.sleep(0.05)
    _assert_cpu_only(sampler)
    assert caplog.records == []


def test_without_the_nvml_package_gpu_sampling_is_a_clean_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` now fails, as without nvidia-ml-py
    with HardwareSampler(interval_s=0.02, gpus=["0"]) as sampler:
        time.sleep(0.05)
    _assert_cpu_only(sampler)


@pytest.mark.skipif(not _nvml_works(), reason="needs NVML and an NVIDIA GPU")
def test_real_nvml_readings_of_gpu_0() -> None:
    with HardwareSampler(interval_s=0.05, gpus=["0"]) as sampler:
        time.sleep(0.5)
    assert [g["index"] for g in sampler.gpus] == [0] and sampler.gpus[0]["name"]
    readings = [s.gpus[0] for s in sampler.samples]
    assert all(r.index == 0 for r in readings)
    assert all(r.memory_used_mib is not None and r.memory_used_mib > 0 for r in readings)
    energies = [r.energy_j for r in readings if r.energy_j is not None]
    assert energies == sorted(energies)  # a cumulative counter, from 0 at the start
