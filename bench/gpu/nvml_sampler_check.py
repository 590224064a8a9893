"""Check CarML's hardware sampler against real NVML: a matrix-multiply load on a CUDA GPU, sampled throughout.

Needs only torch with CUDA, psutil and pynvml (nvidia-ml-py): it imports `carml.monitoring.sampler` and
`carml.monitoring.summary`, which use nothing else, so it runs on a bare GPU machine from a checkout.
It warms up for a second, then multiplies two N x N matrices for --seconds (the timed window), and prints
one JSON object: samples, GPU utilization and power, the energy of the timed window read off NVML's
cumulative counter (and, as a cross-check, integrated from sampled power), and joules per matmul. It exits
with 1 when NVML gave no readings or the energy counter did not increase.

Run: python bench/gpu/nvml_sampler_check.py [--seconds 10] [--size 8192] [--interval 0.1] [--device cuda:0]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout, without installing it

import torch  # noqa: E402

from carml.monitoring.sampler import HardwareSampler, gpus_for_device  # noqa: E402
from carml.monitoring.summary import counter_between, power_integral, stats  # noqa: E402


def _nvml_problem() -> str | None:
    """Why NVML cannot be read here, or None when it can."""
    try:
        import pynvml
    except ImportError:
        return "pynvml is not importable: install nvidia-ml-py, or put pynvml.py on PYTHONPATH"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return f"nvmlInit failed: {exc}"
    pynvml.nvmlShutdown()
    return None


def _load(device: torch.device, size: int, seconds: float, batch: int = 20) -> tuple[int, float, float]:
    """Multiply for `seconds` after a one-second warm-up; returns (matmuls, window start, window end) in epoch s."""
    a = torch.randn(size, size, device=device, dtype=torch.float16)
    b = torch.randn(size, size, device=device, dtype=torch.float16)
    warmup_end = time.monotonic() + 1.0
    while time.monotonic() < warmup_end:
        torch.matmul(a, b)
    torch.cuda.synchronize(device)
    started, count = time.time(), 0
    while time.time() - started < seconds:
        for _ in range(batch):
            torch.matmul(a, b)
        torch.cuda.synchronize(device)
        count += batch
    return count, started, time.time()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    selectors = gpus_for_device(args.device, os.environ.get("CUDA_VISIBLE_DEVICES"))
    with HardwareSampler(args.interval, selectors) as sampler:
        matmuls, start, end = _load(device, args.size, args.seconds)
        time.sleep(2 * args.interval)  # a reading after the window, so its end is interpolated, not clamped
    readings = [(s.taken_at, s.gpus[0]) for s in sampler.samples if s.gpus]
    counter = counter_between([(t, r.energy_j) for t, r in readings], start, end)
    from_power = power_integral([(t, r.power_w) for t, r in readings], start, end)
    window = [r for t, r in readings if start <= t <= end]
    return {
        "torch_device": torch.cuda.get_device_name(device),
        "nvml_gpus": sampler.gpus,
        "samples": len(sampler.samples),
        "interval_s": args.interval,
        "window_s": end - start,
        "matmuls": matmuls,
        "tflops": 2 * args.size**3 * matmuls / (end - start) / 1e12,
        "utilization_max": max((r.utilization_percent or 0.0 for r in window), default=None),
        "utilization_percent": stats(r.utilization_percent for r in window),
        "power_mean_w": (stats(r.power_w for r in window) or {}).get("mean"),
        "power_w": stats(r.power_w for r in window),
        "memory_used_mib_max": max((r.memory_used_mib or 0.0 for _, r in readings), default=None),
        "energy_counter_total_j": max((r.energy_j for _, r in readings if r.energy_j is not None), default=None),
        "energy_joules": counter,
        "energy_from_power_joules": from_power,
        "joules_per_matmul": counter / matmuls if counter is not None and matmuls else None,
        "cpu_percent": stats(s.cpu_percent for s in sampler.samples),
        "peak_rss_mib": max(s.rss_mib or 0.0 for s in sampler.samples),
        "process_peak_rss_mib": sampler.process_peak_rss_mib,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the timed window")
    parser.add_argument("--size", type=int, default=8192, help="N of the N x N float16 matrices")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between samples")
    parser.add_argument("--device", default="cuda:0")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(json.dumps({"error": "torch sees no CUDA device"}))
        return 1
    problem = _nvml_problem()
    if problem:
        print(json.dumps({"error": problem}))
        return 1
    report = measure(args)
    failures = []
    if not report["nvml_gpus"]:
        failures.append(
            f"NVML read no GPU for {args.device} (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')})"
        )
    if not (report["energy_joules"] or 0) > 0 or not (report["energy_counter_total_j"] or 0) > 0:
        failures.append("the energy counter did not increase over the run")
    if not (report["utilization_max"] or 0) > 0:
        failures.append("utilization never rose above 0 % under load")
    report["ok"], report["failures"] = not failures, failures
    print(json.dumps(report, indent=2))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
