"""From samples to numbers: a shard's summary, the job's merged summary, energy over the timed window, cost.

Energy counts only the timed window (warm-up excluded), read off NVML's cumulative counter by linear
interpolation between the samples around the window's ends; a GPU without the counter falls back to the
integral of its sampled power. Pure functions over plain data (standard library only), so they are
unit-tested without hardware and carried with the sampler to a bare GPU machine.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Any

from carml.monitoring.sampler import Sample

Points = Sequence[tuple[float, float | None]]  # (epoch seconds, value), value None where unreadable


def stats(values: Iterable[float | None]) -> dict[str, float | int] | None:
    """Mean, max and count of the readings that exist; None when there are none."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    return {"mean": sum(present) / len(present), "max": max(present), "count": len(present)}


def _known(points: Points) -> list[tuple[float, float]]:
    return sorted((t, v) for t, v in points if v is not None)


def _value_at(points: list[tuple[float, float]], moment: float) -> float:
    """Linear interpolation between the readings around `moment`; the nearest reading outside them."""
    times = [t for t, _ in points]
    if moment <= times[0]:
        return points[0][1]
    if moment >= times[-1]:
        return points[-1][1]
    after = bisect.bisect_right(times, moment)
    (t0, v0), (t1, v1) = points[after - 1], points[after]
    return v0 + (v1 - v0) * (moment - t0) / (t1 - t0) if t1 > t0 else v1


def counter_between(points: Points, start: float, end: float) -> float | None:
    """How much a cumulative counter (e.g. energy in joules) grew from `start` to `end`.

    Each end is interpolated between the readings around it. A window reaching past the readings is
    clamped to them (the sampler reads at both ends of a run, so a run's windows lie inside). None with
    fewer than two readings or an empty window.
    """
    known = _known(points)
    if len(known) < 2 or end <= start:
        return None
    return max(0.0, _value_at(known, end) - _value_at(known, start))


def power_integral(points: Points, start: float, end: float) -> float | None:
    """Energy (joules) from power readings (watts) over [start, end], by the trapezoid rule."""
    known = _known(points)
    if len(known) < 2 or end <= start:
        return None
    inner = [(t, v) for t, v in known if start < t < end]
    edges = [(start, _value_at(known, start)), *inner, (end, _value_at(known, end))]
    return sum((t1 - t0) * (v0 + v1) / 2 for (t0, v0), (t1, v1) in zip(edges, edges[1:], strict=False))


def _gpu_summary(gpu: dict[str, Any], samples: Sequence[Sample], window: tuple[float, float] | None) -> dict[str, Any]:
    readings = [(s.taken_at, r) for s in samples for r in s.gpus if r.index == gpu["index"]]
    energy = [(t, r.energy_j) for t, r in readings]
    power = [(t, r.power_w) for t, r in readings]
    timed, source = None, None
    if window is not None:
        timed, source = counter_between(energy, *window), "nvml-energy-counter"
        if timed is None:
            timed, source = power_integral(power, *window), "nvml-power"
    return {
        **gpu,
        "utilization_percent": stats(r.utilization_percent for _, r in readings),
        "memory_used_mib_max": max(
            (r.memory_used_mib for _, r in readings if r.memory_used_mib is not None), default=None
        ),
        "power_w": stats(r.power_w for _, r in readings),
        "energy_j": max((v for _, v in energy if v is not None), default=None),  # the whole sampled shard
        "timed_energy_j": timed,
        "energy_source": source if timed is not None else None,
    }


def shard_summary(
    samples: Sequence[Sample],
    gpus: Sequence[dict[str, Any]],
    *,
    timed_window: tuple[float, float] | None,
    timed_items: int,
    interval_s: float,
    worker: str | None = None,
    process_peak_rss_mib: float | None = None,
) -> dict[str, Any]:
    """What one shard's samples say, JSON-ready: carried in the shard's partial result until the merge."""
    gpu_summaries = [_gpu_summary(gpu, samples, timed_window) for gpu in gpus]
    energies = [g["timed_energy_j"] for g in gpu_summaries]
    peak = _max_or_none(s.rss_mib for s in samples)
    return {
        "worker": worker,
        "samples": len(samples),
        "interval_s": interval_s,
        "cpu_percent": stats(s.cpu_percent for s in samples),
        "peak_rss_mib": peak,
        # NB: Linux updates the high-water mark lazily (per-thread RSS counters are folded in now and then),
        # so it can trail a fresh sample by a few pages; the mark is never below what was seen.
        "process_peak_rss_mib": _max_or_none([process_peak_rss_mib, peak]),
        "gpus": gpu_summaries,
        "timed_window_s": timed_window[1] - timed_window[0] if timed_window else None,
        "timed_items": timed_items,
        # The shard's energy needs every GPU it read: a sum missing one would understate it.
        "timed_energy_j": sum(energies) if energies and None not in energies else None,
    }


def _merge_stats(parts: Iterable[dict[str, Any] | None]) -> dict[str, float | int] | None:
    present = [p for p in parts if p]
    count = sum(p["count"] for p in present)
    if not count:
        return None
    return {
        "mean": sum(p["mean"] * p["count"] for p in present) / count,
        "max": max(p["max"] for p in present),
        "count": count,
    }


def _sum_or_none(values: Sequence[float | None]) -> float | None:
    return sum(v for v in values if v is not None) if values and None not in values else None


def _max_or_none(values: Iterable[float | None]) -> float | None:
    return max((v for v in values if v is not None), default=None)


def _merge_gpus(shards: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per GPU (per worker and NVML index), over every shard that read it."""
    groups: dict[tuple[str | None, int], list[dict[str, Any]]] = {}
    for shard in shards:
        for gpu in shard["gpus"]:
            groups.setdefault((shard["worker"], gpu["index"]), []).append(gpu)
    merged = []
    for (worker, index), parts in groups.items():
        merged.append(
            {
                "worker": worker,
                "index": index,
                "name": parts[0].get("name"),
                "uuid": parts[0].get("uuid"),
                "utilization_percent": _merge_stats(p["utilization_percent"] for p in parts),
                "memory_used_mib_max": _max_or_none(p["memory_used_mib_max"] for p in parts),
                "power_w": _merge_stats(p["power_w"] for p in parts),
                "energy_j": _sum_or_none([p["energy_j"] for p in parts]),
                "timed_energy_j": _sum_or_none([p["timed_energy_j"] for p in parts]),
                "energy_source": next((p["energy_source"] for p in parts if p["energy_source"]), None),
            }
        )
    return merged


def cost_per_1000_items(price_per_hour: float | None, busy_s: float | None, items: int | None) -> float | None:
    """What 1,000 items cost at `price_per_hour` for each device busy `busy_s` seconds (summed over shards).

    For one shard this is price / 3600 / throughput * 1000; summing the shards' own timed windows keeps
    the cost of a job split over several workers what each of them was paid for, not divided among them.
    """
    if price_per_hour is None or not busy_s or not items:
        return None
    return price_per_hour / 3600 * busy_s / items * 1000


def job_hardware(price_per_hour: float | None, shards: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """The `results` columns a job's shard summaries give: hardware_metrics, energy, energy per item, cost."""
    present = [s for s in shards if s]
    if not present:
        return {"hardware_metrics": None, "energy_joules": None, "joules_per_item": None, "cost_per_1000_items": None}
    complete = len(present) == len(shards)
    timed_items = sum(s["timed_items"] for s in present)
    busy = _sum_or_none([s["timed_window_s"] for s in present]) if complete else None
    energy = _sum_or_none([s["timed_energy_j"] for s in present]) if complete else None
    gpus = _merge_gpus(present)
    metrics = {
        "shards": len(present),
        "samples": sum(s["samples"] for s in present),
        "interval_s": present[0]["interval_s"],
        "cpu_percent": _merge_stats(s["cpu_percent"] for s in present),
        "peak_rss_mib": _max_or_none(s["peak_rss_mib"] for s in present),
        "process_peak_rss_mib": _max_or_none(s["process_peak_rss_mib"] for s in present),
        "gpus": gpus,
        "timed_items": timed_items,
        "busy_s": busy,
        "energy_source": next((g["energy_source"] for g in gpus if g["energy_source"]), None),
    }
    return {
        "hardware_metrics": metrics,
        "energy_joules": energy,
        "joules_per_item": energy / timed_items if energy is not None and timed_items else None,
        "cost_per_1000_items": cost_per_1000_items(price_per_hour, busy, timed_items),
    }
