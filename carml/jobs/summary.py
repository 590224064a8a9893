"""A job as the API, the CLI and the end-of-job announcement show it: one JSON shape everywhere."""

from __future__ import annotations

from typing import Any

from carml.db.models import Job
from carml.evaluation.partial import readable_metrics


def job_summary(job: Job, confusion: str = "matrix") -> dict[str, Any]:
    """A job as JSON: routing, status, progress, and its result when there is one, its confusion matrix shown as
    `confusion` asks (`CONFUSION_VIEWS`)."""
    summary: dict[str, Any] = {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "owner": job.owner,
        "model": job.model_name,
        "framework": job.framework,
        "dataset": job.dataset_name,
        "hardware_tag": job.hardware_tag,
        "batch_size": job.batch_size,
        "scenario": job.scenario,
        "shards": job.shard_count,
        "progress": {"done": job.progress_done, "total": job.progress_total},
        "error": job.error,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "trace_id": job.trace_id,
    }
    result = job.result
    if result is not None:
        stages = result.latency
        summary["result"] = {
            "items": result.items,
            "errors": result.errors,
            "error_items": result.error_items,
            "top1": result.top1,
            "top5": result.top5,
            "latency_ms": stages.get("predict", {}),
            "stages_ms": stages,
            "throughput_items_per_s": result.throughput_items_per_s,
            "model_load_ms": result.model_load_ms,
            "hardware_metrics": result.hardware_metrics,
            "energy_joules": result.energy_joules,
            "joules_per_item": result.joules_per_item,
            "cost_per_1000_items": result.cost_per_1000_items,
            "price_per_hour": job.price_per_hour,
            **readable_metrics(result.metrics, confusion),
            "reproducibility": result.reproducibility,
            # A performance scenario's verdict (null for an accuracy pass); latency_ms stays the predict stage.
            "scenario_outcome": result.scenario_outcome,
            "valid": result.valid,
            "stable": result.stable,
        }
    return summary
