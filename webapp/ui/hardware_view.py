"""A finished evaluation's hardware for its page: the sampled summary, energy and cost, and the timeline chart."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select

from carml.db.models import HardwareSample, Job
from carml.db.session import session_scope
from carml.settings import Settings

MAX_POINTS = 400  # per line of the timeline: a six-hour run sampled twice a second is still a light page
# The timeline's lines, in the order they are drawn and listed.
_LABELS = {
    "cpu": "CPU % (shard {s})",
    "gpu_utilization": "GPU {g} util % (shard {s})",
    "gpu_power": "GPU {g} W (shard {s})",
}


def hardware_view(job: Job) -> dict[str, Any]:
    """The Hardware panel: process CPU and memory, each GPU, energy per item and cost per 1,000 items."""
    result = job.result
    assert result is not None
    metrics = result.hardware_metrics or {}
    return {
        "sampled": bool(metrics),
        "samples": metrics.get("samples"),
        "interval_s": metrics.get("interval_s"),
        "cpu": metrics.get("cpu_percent") or {},
        "peak_rss_mib": metrics.get("peak_rss_mib"),
        "process_peak_rss_mib": metrics.get("process_peak_rss_mib"),
        "gpus": metrics.get("gpus") or [],
        "energy_joules": result.energy_joules,
        "joules_per_item": result.joules_per_item,
        "energy_source": metrics.get("energy_source"),
        "busy_s": metrics.get("busy_s"),
        "price_per_hour": job.price_per_hour,
        "cost_per_1000_items": result.cost_per_1000_items,
    }


def _thinned(points: list[dict[str, float]]) -> list[dict[str, float]]:
    step = max(1, math.ceil(len(points) / MAX_POINTS))
    return points[::step]


def hardware_timeline(settings: Settings, job_id: str) -> dict[str, Any] | None:
    """CPU % per shard, and each GPU's utilization and power, against seconds since the job's first sample."""
    query = (
        select(
            HardwareSample.shard_index,
            HardwareSample.taken_at,
            HardwareSample.cpu_percent,
            HardwareSample.gpu_index,
            HardwareSample.gpu_utilization_percent,
            HardwareSample.gpu_power_w,
        )
        .where(HardwareSample.job_id == job_id)
        .order_by(HardwareSample.taken_at, HardwareSample.id)
    )
    with session_scope(settings.database) as session:
        rows = session.execute(query).all()
    if not rows:
        return None
    start = rows[0].taken_at
    series: dict[tuple[str, int, int | None], list[dict[str, float]]] = {}
    for row in rows:
        x = (row.taken_at - start).total_seconds()
        readings = (
            [("cpu", row.cpu_percent)]
            if row.gpu_index is None
            else [("gpu_utilization", row.gpu_utilization_percent), ("gpu_power", row.gpu_power_w)]
        )
        for kind, value in readings:
            if value is not None:
                series.setdefault((kind, row.shard_index, row.gpu_index), []).append({"x": x, "y": value})
    return {
        "unit_x": "s",
        "series": [
            {
                "label": _LABELS[kind].format(s=shard, g=gpu),
                "kind": kind,
                "axis": "watts" if kind == "gpu_power" else "percent",
                "points": _thinned(points),
            }
            for (kind, shard, gpu), points in sorted(
                series.items(), key=lambda item: (list(_LABELS).index(item[0][0]), item[0][1], item[0][2] or 0)
            )
        ],
    }
