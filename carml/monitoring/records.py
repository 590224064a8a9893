"""A shard's samples as `hardware_samples` rows: one row for the process and one per GPU at each moment."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert

from carml.db.models import HardwareSample
from carml.monitoring.shard import ShardHardware

# Every row names every column: one shape, so the rows go to the database as one batch.
_NO_GPU = dict.fromkeys(("gpu_index", "gpu_utilization_percent", "gpu_memory_used_mib", "gpu_power_w", "gpu_energy_j"))


def sample_rows(job_id: str, shard_index: int, hardware: ShardHardware) -> list[dict[str, Any]]:
    """Process rows have no `gpu_index`; GPU rows have no process fields, so each column averages what it says."""
    rows: list[dict[str, Any]] = []
    for sample in hardware.samples:
        common = {
            "job_id": job_id,
            "shard_index": shard_index,
            "worker_id": hardware.worker_id,
            "taken_at": datetime.fromtimestamp(sample.taken_at, UTC),
            "elapsed_s": sample.elapsed_s,
        }
        rows.append({**common, **_NO_GPU, "cpu_percent": sample.cpu_percent, "rss_mib": sample.rss_mib})
        rows.extend(
            {
                **common,
                "cpu_percent": None,
                "rss_mib": None,
                "gpu_index": gpu.index,
                "gpu_utilization_percent": gpu.utilization_percent,
                "gpu_memory_used_mib": gpu.memory_used_mib,
                "gpu_power_w": gpu.power_w,
                "gpu_energy_j": gpu.energy_j,
            }
            for gpu in sample.gpus
        )
    return rows


def replace_samples(session: Any, job_id: str, shard_index: int, hardware: ShardHardware | None) -> None:
    """Write a shard's samples in bulk, replacing any an earlier delivery of the same shard wrote."""
    session.execute(
        delete(HardwareSample).where(HardwareSample.job_id == job_id, HardwareSample.shard_index == shard_index)
    )
    rows = sample_rows(job_id, shard_index, hardware) if hardware is not None else []
    if rows:
        session.execute(insert(HardwareSample), rows)
