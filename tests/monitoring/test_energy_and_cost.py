"""Energy over the timed window, shard summaries, the job's merge and cost per 1,000 items: pure functions."""

from __future__ import annotations

import pytest

from carml.monitoring.sampler import GpuReading, Sample
from carml.monitoring.summary import (
    cost_per_1000_items,
    counter_between,
    job_hardware,
    power_integral,
    shard_summary,
)


def test_a_cumulative_counter_is_interpolated_at_both_ends_of_the_window() -> None:
    points = [(100.0, 0.0), (101.0, 10.0), (102.0, 30.0), (103.0, 30.0)]
    assert counter_between(points, 100.5, 101.5) == pytest.approx(20.0 - 5.0)
    assert counter_between(points, 101.0, 102.0) == pytest.approx(20.0)
    assert counter_between(points, 102.0, 103.0) == 0.0
    # Unreadable moments are skipped, and a window past the readings is clamped to them.
    assert counter_between([(100.0, 0.0), (100.5, None), (101.0, 10.0)], 99.0, 100.5) == pytest.approx(5.0)
    assert counter_between([(100.0, 5.0)], 100.0, 101.0) is None
    assert counter_between(points, 101.0, 101.0) is None


def test_power_is_integrated_by_the_trapezoid_rule() -> None:
    assert power_integral([(0.0, 100.0), (2.0, 100.0)], 0.25, 0.75) == pytest.approx(50.0)
    ramp = [(0.0, 0.0), (1.0, 100.0), (2.0, 200.0)]
    assert power_integral(ramp, 0.0, 2.0) == pytest.approx(200.0)
    assert power_integral(ramp, 0.5, 1.5) == pytest.approx(100.0)
    assert power_integral([(0.0, None), (1.0, 50.0)], 0.0, 1.0) is None


def _gpu_samples(energy: bool = True) -> list[Sample]:
    """A GPU drawing 100 W from t=1000: its counter climbs 100 J a second; warm-up ends at 1001."""
    samples = []
    for step in range(5):
        t = 1000.0 + step
        reading = GpuReading(0, 90.0 + step, 500.0 + step, 100.0, 100.0 * step if energy else None)
        samples.append(Sample(t, float(step), None if step == 0 else 150.0, 200.0 + step, (reading,)))
    return samples


GPU = [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-1"}]


def test_a_shard_summary_counts_energy_over_the_timed_window_only() -> None:
    summary = shard_summary(
        _gpu_samples(), GPU, timed_window=(1001.0, 1003.5), timed_items=250, interval_s=1.0, worker="w1"
    )
    gpu = summary["gpus"][0]
    assert gpu["timed_energy_j"] == pytest.approx(250.0) and gpu["energy_source"] == "nvml-energy-counter"
    assert gpu["energy_j"] == 400.0  # the whole sampled shard, warm-up included
    assert gpu["utilization_percent"] == {"mean": 92.0, "max": 94.0, "count": 5}
    assert gpu["memory_used_mib_max"] == 504.0 and gpu["power_w"]["mean"] == 100.0
    assert summary["timed_energy_j"] == pytest.approx(250.0) and summary["timed_window_s"] == 2.5
    assert summary["cpu_percent"] == {"mean": 150.0, "max": 150.0, "count": 4} and summary["peak_rss_mib"] == 204.0


def test_without_the_energy_counter_sampled_power_is_integrated() -> None:
    summary = shard_summary(
        _gpu_samples(energy=False), GPU, timed_window=(1001.0, 1003.5), timed_items=250, interval_s=1.0
    )
    assert summary["gpus"][0]["energy_source"] == "nvml-power"
    assert summary["timed_energy_j"] == pytest.approx(250.0)


def _shard(worker: str, energy: float | None, window_s: float, items: int) -> dict:
    return {
        "worker": worker,
        "samples": 10,
        "interval_s": 0.5,
        "cpu_percent": {"mean": 100.0, "max": 180.0, "count": 9},
        "peak_rss_mib": 300.0,
        "process_peak_rss_mib": 320.0,
        "gpus": [
            {
                "index": 0,
                "name": "H100",
                "uuid": None,
                "utilization_percent": {"mean": 50.0, "max": 99.0, "count": 10},
                "memory_used_mib_max": 1000.0,
                "power_w": {"mean": 300.0, "max": 400.0, "count": 10},
                "energy_j": energy,
                "timed_energy_j": energy,
                "energy_source": "nvml-energy-counter" if energy is not None else None,
            }
        ],
        "timed_window_s": window_s,
        "timed_items": items,
        "timed_energy_j": energy,
    }


def test_the_merge_sums_energy_and_busy_time_over_shards() -> None:
    columns = job_hardware(3.6, [_shard("w1", 600.0, 2.0, 300), _shard("w2", 300.0, 1.0, 100)])
    assert columns["energy_joules"] == 900.0 and columns["joules_per_item"] == pytest.approx(900.0 / 400)
    # 3.6 per hour is 0.001 per second; 3 device-seconds for 400 items.
    assert columns["cost_per_1000_items"] == pytest.approx(0.001 * 3 / 400 * 1000)
    metrics = columns["hardware_metrics"]
    assert metrics["busy_s"] == 3.0 and metrics["timed_items"] == 400 and metrics["shards"] == 2
    assert [(g["worker"], g["index"]) for g in metrics["gpus"]] == [("w1", 0), ("w2", 0)]
    assert metrics["cpu_percent"] == {"mean": 100.0, "max": 180.0, "count": 18}


def test_energy_needs_every_shard_and_cost_needs_a_price() -> None:
    columns = job_hardware(None, [_shard("w1", 600.0, 2.0, 300), _shard("w1", None, 1.0, 100)])
    assert columns["energy_joules"] is None and columns["joules_per_item"] is None
    assert columns["cost_per_1000_items"] is None
    assert job_hardware(1.0, [None])["hardware_metrics"] is None  # shards run before sampling existed


def test_cost_of_one_shard_is_price_over_throughput() -> None:
    throughput = 500.0  # items per second
    assert cost_per_1000_items(3.6, 2.0, 1000) == pytest.approx(3.6 / 3600 / throughput * 1000)
    assert cost_per_1000_items(0.0, 2.0, 1000) == 0.0  # a free tag costs nothing, which is not unknown
    assert cost_per_1000_items(3.6, 0.0, 1000) is None and cost_per_1000_items(3.6, 2.0, 0) is None
