"""Comparisons: one request fanned out as evaluation jobs over hardware tags, batch sizes, frameworks and models.

Each leg is an ordinary job on its own hardware queue; the comparison only groups them (`jobs.comparison_id`)
and reads their results side by side. Every leg is checked before anything is written, so a request with one
bad leg records nothing.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from carml.db.base import utcnow
from carml.db.models import Comparison, Job, JobStatus, Worker
from carml.db.session import session_scope
from carml.jobs.locking import locked_job
from carml.jobs.service import (
    Enqueue,
    EvaluationRequest,
    JobRequestError,
    enqueue_shards,
    plan_evaluation,
    record_evaluation,
)
from carml.settings import Settings

MAX_LEGS = 48

#: Request field of a leg -> the comparison field that lists its values (errors name the comparison's field).
_LEG_FIELDS = {
    "model": "models",
    "framework": "frameworks",
    "hardware_tag": "hardware_tags",
    "batch_size": "batch_sizes",
}
#: Leg metrics shown side by side, and which way is better.
METRICS: dict[str, str] = {
    "top1": "max",
    "latency_p50_ms": "min",
    "latency_p99_ms": "min",
    "throughput_items_per_s": "max",
    "joules_per_item": "min",
    "cost_per_1000_items": "min",
}


@dataclass(frozen=True)
class ComparisonRequest:
    """The same dataset over every combination of models × frameworks × hardware tags × batch sizes."""

    models: Sequence[str]
    dataset: str
    hardware_tags: Sequence[str] = ("cpu",)
    batch_sizes: Sequence[int] = (32,)
    frameworks: Sequence[str | None] = (None,)  # None: the model's only framework
    limit: int | None = None
    shards: int = 1
    warmup_batches: int = 1
    title: str | None = None
    owner: str = "local"
    #: Further `EvaluationRequest` fields every leg gets (e.g. a performance scenario and its options).
    leg_options: dict[str, Any] = field(default_factory=dict)

    def legs(self) -> list[EvaluationRequest]:
        """One evaluation request per combination, in a stable order (models, frameworks, tags, batch sizes)."""
        return [
            EvaluationRequest(
                model=model,
                dataset=self.dataset,
                framework=framework,
                hardware_tag=tag,
                batch_size=batch_size,
                limit=self.limit,
                shards=self.shards,
                warmup_batches=self.warmup_batches,
                owner=self.owner,
                **self.leg_options,
            )
            for model, framework, tag, batch_size in itertools.product(
                self.models, self.frameworks, self.hardware_tags, self.batch_sizes
            )
        ]

    def check(self) -> None:
        """Refuse empty or repeated dimensions, too many legs and unknown leg options."""
        for name, values in (
            ("models", self.models),
            ("frameworks", self.frameworks),
            ("hardware_tags", self.hardware_tags),
            ("batch_sizes", self.batch_sizes),
        ):
            if not values:
                raise JobRequestError(f"{name} must list at least one value", field=name)
            repeated = sorted({str(v) for v in values if list(values).count(v) > 1})
            if repeated:
                raise JobRequestError(f"{name} lists {repeated[0]!r} more than once", field=name)
        count = len(self.models) * len(self.frameworks) * len(self.hardware_tags) * len(self.batch_sizes)
        if count < 2:
            raise JobRequestError(
                "a comparison needs at least two legs: give two or more models, frameworks, hardware tags or "
                "batch sizes",
                field="hardware_tags",
            )
        if count > MAX_LEGS:
            raise JobRequestError(f"{count} legs is more than the {MAX_LEGS} a comparison may have", field="models")
        known = {f.name for f in dataclasses.fields(EvaluationRequest)}
        taken = {  # the fields `legs` sets itself
            *("model", "dataset", "framework", "hardware_tag", "batch_size"),
            *("limit", "shards", "warmup_batches", "owner"),
        }
        for option in self.leg_options:
            if option not in known or option in taken:
                raise JobRequestError(f"unknown leg option {option!r}", field=option)

    def default_title(self) -> str:
        varied = [
            f"{len(values)} {label}"
            for label, values in (
                ("models", self.models),
                ("frameworks", self.frameworks),
                ("hardware tags", self.hardware_tags),
                ("batch sizes", self.batch_sizes),
            )
            if len(values) > 1
        ]
        return f"{', '.join(self.models)} on {self.dataset}: {' × '.join(varied)}"[:200]


def _leg_label(leg: EvaluationRequest) -> str:
    framework = f"/{leg.framework}" if leg.framework else ""
    return f"{leg.model}{framework} on {leg.hardware_tag}, batch {leg.batch_size}"


def submit_comparison(settings: Settings, request: ComparisonRequest, enqueue: Enqueue) -> str:
    """Check every leg, record the comparison and its jobs in one transaction, then enqueue them."""
    request.check()
    plans = []
    for number, leg in enumerate(request.legs(), start=1):
        try:
            plans.append(plan_evaluation(settings, leg))
        except JobRequestError as exc:
            field_ = _LEG_FIELDS.get(exc.field or "", exc.field)
            raise JobRequestError(f"leg {number} ({_leg_label(leg)}): {exc}", field=field_, status=exc.status) from None
    comparison_id = str(uuid.uuid4())
    with session_scope(settings.database) as session:
        session.add(
            Comparison(
                id=comparison_id,
                owner=request.owner,
                title=request.title or request.default_title(),
                dataset_name=request.dataset,
                spec=_spec(request),
            )
        )
        session.flush()  # the legs refer to it
        jobs = []
        for index, plan in enumerate(plans):
            job = record_evaluation(session, plan, comparison_id=comparison_id, comparison_leg=index)
            jobs.append((job.id, len(plan.ranges), plan.request.hardware_tag))
    for position, (job_id, shard_count, tag) in enumerate(jobs):
        try:
            enqueue_shards(settings, job_id, shard_count, tag, enqueue)
        except JobRequestError:
            # The broker refused: the legs not yet sent would wait forever, so they fail with the same reason.
            _fail_unsent(settings, [later for later, _, _ in jobs[position + 1 :]], "the broker refused an earlier leg")
            raise
    return comparison_id


def _spec(request: ComparisonRequest) -> dict[str, Any]:
    return {
        "models": list(request.models),
        "frameworks": list(request.frameworks),
        "hardware_tags": list(request.hardware_tags),
        "batch_sizes": list(request.batch_sizes),
        "limit": request.limit,
        "shards": request.shards,
        "warmup_batches": request.warmup_batches,
        **request.leg_options,
    }


def _fail_unsent(settings: Settings, job_ids: list[str], reason: str) -> None:
    with session_scope(settings.database) as session:
        for job_id in job_ids:
            job = locked_job(session, job_id)
            if job is not None and not JobStatus(job.status).final:
                job.status, job.error, job.finished_at = JobStatus.FAILED, reason, utcnow()


def get_comparison(settings: Settings, comparison_id: str) -> dict[str, Any]:
    """A comparison with every leg's status and metrics, the best leg per metric marked."""
    with session_scope(settings.database) as session:
        comparison = session.scalar(
            select(Comparison)
            .where(Comparison.id == comparison_id)
            .options(
                selectinload(Comparison.legs).selectinload(Job.result),
                selectinload(Comparison.legs).selectinload(Job.shards),
            )
        )
        if comparison is None:
            raise JobRequestError(f"no comparison {comparison_id!r}", field="comparison_id", status=404)
        worker_ids = {s.worker_id for job in comparison.legs for s in job.shards if s.worker_id}
        workers = {w.id: w for w in session.scalars(select(Worker).where(Worker.id.in_(worker_ids)))}
        return comparison_summary(comparison, workers)


def comparison_summary(comparison: Comparison, workers: dict[str, Worker] | None = None) -> dict[str, Any]:
    workers = workers or {}
    legs = [_leg_row(job, workers) for job in comparison.legs]
    # An INVALID scenario run measured something, but not what was asked: it is never the best.
    finished = [leg for leg in legs if leg["status"] == JobStatus.SUCCEEDED and leg["valid"] is not False]
    best: dict[str, list[int]] = {}
    for metric, better in METRICS.items():
        values = [leg[metric] for leg in finished if leg[metric] is not None]
        if values:
            target = max(values) if better == "max" else min(values)
            best[metric] = [leg["leg"] for leg in finished if leg[metric] == target]
    final = sum(JobStatus(leg["status"]).final for leg in legs)
    spec = comparison.spec
    return {
        "id": comparison.id,
        "title": comparison.title,
        "owner": comparison.owner,
        "dataset": comparison.dataset_name,
        "created_at": comparison.created_at.isoformat(),
        "spec": spec,
        "varies": [name for name in _LEG_FIELDS.values() if len(spec.get(name) or []) > 1],
        "status": _status(legs),
        "legs_finished": final,
        "legs_total": len(legs),
        "legs": legs,
        "best": best,
    }


def _status(legs: list[dict[str, Any]]) -> str:
    statuses = [JobStatus(leg["status"]) for leg in legs]
    if not all(s.final for s in statuses):
        return "running" if any(s != JobStatus.QUEUED for s in statuses) else "queued"
    return "succeeded" if all(s == JobStatus.SUCCEEDED for s in statuses) else "finished_with_errors"


def _leg_row(job: Job, workers: dict[str, Worker]) -> dict[str, Any]:
    result = job.result
    served_by = sorted({s.worker_id for s in job.shards if s.worker_id})
    threads = sorted({workers[w].threads for w in served_by if w in workers and workers[w].threads})
    row: dict[str, Any] = {
        "leg": job.comparison_leg,
        "job_id": job.id,
        "model": job.model_name,
        "framework": job.framework,
        "hardware_tag": job.hardware_tag,
        "batch_size": job.batch_size,
        "scenario": job.scenario,
        "status": job.status,
        "error": job.error,
        "progress": {"done": job.progress_done, "total": job.progress_total},
        "workers": served_by,
        "worker_threads": threads,
        "cpu_model": next((workers[w].cpu_model for w in served_by if w in workers), None),
        "gpu_name": next((workers[w].gpu_name for w in served_by if w in workers), None),
        "price_per_hour": job.price_per_hour,
    }
    for metric in ("top1", "top5", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "throughput_items_per_s"):
        row[metric] = getattr(result, metric) if result is not None else None
    for metric in ("joules_per_item", "cost_per_1000_items", "energy_joules", "valid", "stable"):
        row[metric] = getattr(result, metric) if result is not None else None
    row["items"] = result.items if result is not None else None
    return row


def list_comparisons(
    settings: Settings, *, owner: str | None = None, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """Comparisons newest first, each with its leg counts (not the legs' metrics)."""
    query = (
        select(Comparison).order_by(Comparison.created_at.desc(), Comparison.id).limit(min(limit, 500)).offset(offset)
    )
    if owner is not None:
        query = query.where(Comparison.owner == owner)
    with session_scope(settings.database) as session:
        comparisons = list(session.scalars(query))
        ids = [c.id for c in comparisons]
        counts: dict[tuple[str, str], int] = {
            (cid, status): n
            for cid, status, n in session.execute(
                select(Job.comparison_id, Job.status, func.count())
                .where(Job.comparison_id.in_(ids))
                .group_by(Job.comparison_id, Job.status)
            )
        }
        rows = []
        for c in comparisons:
            legs = {status: n for (cid, status), n in counts.items() if cid == c.id}
            final = sum(n for status, n in legs.items() if JobStatus(status).final)
            rows.append(
                {
                    "id": c.id,
                    "title": c.title,
                    "owner": c.owner,
                    "dataset": c.dataset_name,
                    "created_at": c.created_at.isoformat(),
                    "legs_total": sum(legs.values()),
                    "legs_finished": final,
                    "legs_by_status": legs,
                }
            )
        return rows
