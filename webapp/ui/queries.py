"""The UI's read-only database queries: aggregates for the catalog and workers pages, pages of jobs.

Each selects only the columns a page shows; per-item outputs live in the object store and are never read here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from carml.accounts.caller import Caller
from carml.accounts.result_visibility import counted_evaluations
from carml.db.base import utcnow
from carml.db.models import Job, JobKind, JobShard, JobStatus, OutputObject, Result, StageTiming, Worker
from carml.db.session import session_scope
from carml.settings import Settings

_FINISHED_EVALUATIONS = (Job.kind == JobKind.EVALUATE, Job.status == JobStatus.SUCCEEDED)


@dataclass(frozen=True)
class JobFilters:
    status: str | None = None
    model: str | None = None
    hardware_tag: str | None = None
    owner: str | None = None  # None: every owner's (what an admin sees)

    def conditions(self) -> list[Any]:
        pairs = (
            (Job.status, self.status),
            (Job.model_name, self.model),
            (Job.hardware_tag, self.hardware_tag),
            (Job.owner, self.owner),
        )
        return [column == value for column, value in pairs if value is not None]


def _counted_for(viewer: Caller) -> list[Any]:
    """Conditions keeping the evaluations `viewer` may count: other users' private uploads are left out."""
    counted = counted_evaluations(viewer)
    return [] if counted is None else [counted]


def best_measured(settings: Settings, viewer: Caller) -> dict[str, dict[str, dict[str, Any]]]:
    """Model name -> hardware tag -> best top-1, best p50 latency and run count over finished evaluations that
    `viewer` may count."""
    query = (
        select(Job.model_name, Job.hardware_tag, func.max(Result.top1), func.min(Result.latency_p50_ms), func.count())
        .join(Result, Result.job_id == Job.id)
        .where(*_FINISHED_EVALUATIONS, *_counted_for(viewer))
        .group_by(Job.model_name, Job.hardware_tag)
    )
    best: dict[str, dict[str, dict[str, Any]]] = {}
    with session_scope(settings.database) as session:
        for model, tag, top1, p50, runs in session.execute(query):
            best.setdefault(model, {})[tag] = {"top1": top1, "p50_ms": p50, "runs": runs}
    return best


def model_results(settings: Settings, model: str, viewer: Caller) -> list[dict[str, Any]]:
    """A model's finished evaluations that `viewer` may count, grouped by framework, dataset, hardware tag and
    batch size."""
    keys = (Job.framework, Job.dataset_name, Job.hardware_tag, Job.batch_size)
    query = (
        select(
            *keys,
            func.count(),
            func.max(Result.top1),
            func.max(Result.top5),
            func.min(Result.latency_p50_ms),
            func.min(Result.latency_p99_ms),
            func.max(Result.throughput_items_per_s),
            func.max(Job.finished_at),
        )
        .join(Result, Result.job_id == Job.id)
        .where(*_FINISHED_EVALUATIONS, Job.model_name == model, *_counted_for(viewer))
        .group_by(*keys)
        .order_by(*keys)
    )
    names = ("framework", "dataset", "hardware_tag", "batch_size", "runs", "top1", "top5", "p50_ms", "p99_ms")
    with session_scope(settings.database) as session:
        rows = session.execute(query).all()
    return [{**dict(zip(names, row[:9], strict=True)), "throughput": row[9], "last": row[10]} for row in rows]


def jobs_page(settings: Settings, filters: JobFilters, limit: int, offset: int) -> tuple[Sequence[Job], int]:
    """One page of jobs, newest first, and how many match in all (job rows only: no results, no outputs)."""
    conditions = filters.conditions()
    query = select(Job).where(*conditions).order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
    with session_scope(settings.database) as session:
        total = session.scalar(select(func.count()).select_from(Job).where(*conditions)) or 0
        return list(session.scalars(query)), total


def workers_by_id(settings: Settings, ids: Sequence[str]) -> dict[str, Worker]:
    if not ids:
        return {}
    with session_scope(settings.database) as session:
        return {w.id: w for w in session.scalars(select(Worker).where(Worker.id.in_(set(ids))))}


def offline_workers(settings: Settings, limit: int = 50) -> list[Worker]:
    """Workers whose heartbeat stopped, most recently seen first."""
    since = utcnow() - timedelta(seconds=settings.worker_alive_s)
    query = select(Worker).where(Worker.last_heartbeat < since).order_by(Worker.last_heartbeat.desc()).limit(limit)
    with session_scope(settings.database) as session:
        return list(session.scalars(query))


def shard_counts(settings: Settings) -> dict[str, dict[str, int]]:
    """Hardware tag -> {"queued": shards waiting, "running": shards running}, over jobs not yet final."""
    query = (
        select(Job.hardware_tag, JobShard.status, func.count())
        .join(Job, Job.id == JobShard.job_id)
        .where(
            JobShard.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)),
            Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)),
            Job.cancel_requested.is_(False),
        )
        .group_by(Job.hardware_tag, JobShard.status)
    )
    counts: dict[str, dict[str, int]] = {}
    with session_scope(settings.database) as session:
        for tag, status, count in session.execute(query):
            counts.setdefault(tag, {"queued": 0, "running": 0})[str(status)] = count
    return counts


def predict_timings(settings: Settings, job_id: str) -> list[tuple[int, float, bool]]:
    """(shard, milliseconds, warm-up) of every batch's predict stage of a job."""
    query = (
        select(StageTiming.shard_index, StageTiming.duration_ms, StageTiming.warmup)
        .where(StageTiming.job_id == job_id, StageTiming.stage == "predict")
        .order_by(StageTiming.shard_index, StageTiming.batch_index)
    )
    with session_scope(settings.database) as session:
        return [(shard, float(ms), bool(warmup)) for shard, ms, warmup in session.execute(query)]


def output_keys(settings: Settings, job_id: str) -> list[str]:
    query = select(OutputObject.key).where(OutputObject.job_id == job_id).order_by(OutputObject.shard_index)
    with session_scope(settings.database) as session:
        return list(session.scalars(query))
