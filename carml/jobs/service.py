"""Submitting, reading and cancelling jobs. Front ends (REST API, CLI, web) all come through here."""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import selectinload

from carml.catalog import Catalog
from carml.datasets import OpenedDataset
from carml.db.base import utcnow
from carml.db.driver_statements import DriverStatement
from carml.db.models import Job, JobKind, JobShard, JobStatus, RegisteredDataset, RegisteredModel, Scenario
from carml.db.session import session_scope
from carml.errors import CarmlError, NotFound
from carml.evaluation.runner import EvaluationOptions
from carml.evaluation.scenario_options import SCENARIO_OPTION_FIELDS, ScenarioError, ScenarioOptions, scenario_options
from carml.jobs.job_events import announce_job_end
from carml.jobs.locking import locked_job, settle
from carml.jobs.summary import job_summary
from carml.jobs.uploads import open_job_dataset
from carml.jobs.workers import live_workers, tag_is_served
from carml.manifest import LoadedManifest, ModelManifest
from carml.publishing import service_catalog, still_published
from carml.settings import Settings
from carml.tracing.submission import SubmitTrace, submit_attributes, unknown_level

#: Sends shard `index` of job `job_id` to the queue of `hardware_tag` (implemented by the worker package).
Enqueue = Callable[[str, int, str], None]

MAX_SHARDS = 64
SCENARIO_PROGRESS_TOTAL = 100  # a performance scenario reports progress as percent of its minimum run


class JobRequestError(CarmlError):
    """A job request that cannot be accepted; `field` names the request field at fault."""

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.field, self.status = field, status


@dataclass(frozen=True)
class EvaluationRequest:
    model: str
    dataset: str
    framework: str | None = None
    hardware_tag: str = "cpu"
    batch_size: int = 32
    limit: int | None = None
    shards: int = 1
    warmup_batches: int = 1
    owner: str = "local"
    trace_level: str | None = None  # none, stage or framework; None: the CARML_TRACE_LEVEL default
    # A LoadGen-style performance scenario instead of an accuracy pass (docs/scenarios.md) and its options;
    # an option left None takes its default. `warmup_batches` counts a scenario's warm-up queries.
    scenario: str = Scenario.ACCURACY
    target_qps: float | None = None
    latency_bound_ms: float | None = None
    min_duration_s: float | None = None
    min_query_count: int | None = None
    max_duration_s: float | None = None
    sample_count: int | None = None
    seed: int | None = None


def require_live_tag(settings: Settings, hardware_tag: str) -> None:
    """Refuse work for a tag no live worker serves, saying how to start one."""
    if not tag_is_served(settings, hardware_tag):
        served = sorted({w.hardware_tag for w in live_workers(settings)})
        now = f"live workers serve: {', '.join(served)}" if served else "no worker is running"
        raise JobRequestError(
            f"no live worker serves hardware tag {hardware_tag!r} ({now}); "
            f"start one with `carml worker --hardware {hardware_tag}`",
            field="hardware_tag",
            status=409,
        )


def resolve_model(settings: Settings, name: str, framework: str | None) -> LoadedManifest[ModelManifest]:
    if framework is not None:
        # A manifest folder's model wins over a published one of the same name and framework: when the folders
        # have it, the published models need not be read.
        for loaded in Catalog.load(settings.manifest_dirs).models:
            if (loaded.manifest.name, loaded.manifest.framework.name) == (name, framework):
                return loaded
    catalog = service_catalog(settings)
    try:
        return catalog.model(name, framework)
    except CarmlError as exc:
        # When the model exists, what is wrong is the framework asked for (or not asked for, among several).
        known = any(m.manifest.name == name for m in catalog.models)
        status = 404 if isinstance(exc, NotFound) else 400
        raise JobRequestError(str(exc), field="framework" if known else "model", status=status) from None


def register_model(session: Any, loaded: LoadedManifest[ModelManifest]) -> int:
    m = loaded.manifest
    if not still_published(session, loaded):
        raise JobRequestError(
            f"{m.key} was replaced or removed while this job was being submitted; submit it again",
            field="model",
            status=409,
        )
    known, _ = _registered_model_id().execute(
        session, {"name": m.name, "framework": m.framework.name, "sha": loaded.digest}
    )
    if known:
        return int(known[0]["id"])
    row = RegisteredModel(
        name=m.name,
        version=m.version,
        framework=m.framework.name,
        task=str(m.task),
        modality=str(m.modality),
        manifest_path=str(loaded.source),
        manifest_sha256=loaded.digest,
        claimed_top1=m.attributes.top1,
    )
    session.add(row)
    session.flush()
    return row.id


@functools.cache
def _registered_model_id() -> DriverStatement:
    """`register_model`'s lookup, compiled once and run as the driver's SQL: every submission runs it."""
    return DriverStatement(
        select(RegisteredModel.id).where(
            RegisteredModel.name == bindparam("name"),
            RegisteredModel.framework == bindparam("framework"),
            RegisteredModel.manifest_sha256 == bindparam("sha"),
        )
    )


def _register_dataset(session: Any, name: str, fmt: str, modality: str, digest: str, items: int) -> int:
    row = session.scalar(
        select(RegisteredDataset).where(RegisteredDataset.name == name, RegisteredDataset.digest == digest)
    )
    if row is None:
        row = RegisteredDataset(name=name, format=fmt, modality=modality, digest=digest, items=items)
        session.add(row)
        session.flush()
    return row.id


def shard_ranges(total: int, shards: int) -> list[tuple[int, int]]:
    """Split `total` items into at most `shards` contiguous, nearly equal, non-empty ranges."""
    count = max(1, min(shards, total))
    size = math.ceil(total / count)
    return [(start, min(start + size, total)) for start in range(0, total, size)]


@dataclass(frozen=True)
class EvaluationPlan:
    """A checked evaluation request and what recording it needs; nothing is written until `record_evaluation`."""

    request: EvaluationRequest
    model: LoadedManifest[ModelManifest]
    dataset: OpenedDataset
    total: int  # items to evaluate
    ranges: list[tuple[int, int]]  # the shards' item ranges
    price_per_hour: float | None = None  # the hardware tag's configured price (CARML_HARDWARE_PRICES)
    trace: SubmitTrace | None = None  # the job's trace, opened when the request arrived
    scenario: ScenarioOptions | None = None  # a performance scenario's checked options; None: an accuracy pass


def plan_evaluation(settings: Settings, request: EvaluationRequest) -> EvaluationPlan:
    """Check a request against the catalog, the dataset and the live workers; raises JobRequestError."""
    if unknown_level(request.trace_level):
        raise JobRequestError(unknown_level(request.trace_level) or "", field="trace_level")
    trace = SubmitTrace.open(settings, request.trace_level)
    if request.batch_size < 1:
        raise JobRequestError("batch_size must be at least 1", field="batch_size")
    if request.limit is not None and request.limit < 1:
        raise JobRequestError("limit must be at least 1", field="limit")
    if not 1 <= request.shards <= MAX_SHARDS:
        raise JobRequestError(f"shards must be between 1 and {MAX_SHARDS}", field="shards")
    scenario = check_scenario(request)
    loaded = resolve_model(settings, request.model, request.framework)
    try:
        dataset = open_job_dataset(settings, request.dataset)
    except CarmlError as exc:
        raise JobRequestError(str(exc), field="dataset", status=404) from None
    require_live_tag(settings, request.hardware_tag)
    total = min(len(dataset.items), request.limit or len(dataset.items))
    if total == 0:
        raise JobRequestError(f"dataset {request.dataset} has no readable items", field="dataset")
    price = settings.hardware_prices.get(request.hardware_tag)
    ranges = shard_ranges(total, request.shards)
    return EvaluationPlan(request, loaded, dataset, total, ranges, price, trace, scenario)


def check_scenario(request: EvaluationRequest) -> ScenarioOptions | None:
    """The request's performance-scenario options, checked; None for an accuracy pass."""
    values = {name: getattr(request, name) for name in SCENARIO_OPTION_FIELDS}
    try:
        options = scenario_options(request.scenario, values, warmup_queries=request.warmup_batches)
    except ScenarioError as exc:
        field = "warmup_batches" if exc.field == "warmup_queries" else exc.field
        raise JobRequestError(str(exc), field=field) from None
    if options is not None and request.shards != 1:
        raise JobRequestError(
            f"a {request.scenario} scenario is measured by one worker in one shard; shards must be 1, "
            f"got {request.shards}",
            field="shards",
        )
    return options


def scenario_request_fields(job: Job) -> dict[str, Any]:
    """The request fields of `job`'s performance scenario (none for an accuracy pass), to submit it again."""
    options = (job.parameters or {}).get("scenario_options")
    if job.scenario == Scenario.ACCURACY or not options:
        return {}
    return {"scenario": job.scenario, **{name: options.get(name) for name in SCENARIO_OPTION_FIELDS}}


def record_evaluation(
    session: Any, plan: EvaluationPlan, *, comparison_id: str | None = None, comparison_leg: int | None = None
) -> Job:
    """Add the job and its shards to `session` (the caller commits, then enqueues)."""
    request, loaded, dataset = plan.request, plan.model, plan.dataset
    job = Job(
        id=str(uuid.uuid4()),
        kind=JobKind.EVALUATE,
        status=JobStatus.QUEUED,
        owner=request.owner,
        model_name=loaded.manifest.name,
        framework=loaded.manifest.framework.name,
        model_id=register_model(session, loaded),
        dataset_name=request.dataset,
        dataset_id=_register_dataset(
            session, dataset.name, dataset.format, dataset.modality, dataset.digest, len(dataset.items)
        ),
        hardware_tag=request.hardware_tag,
        batch_size=request.batch_size,
        parameters={
            "limit": request.limit,
            "warmup_batches": request.warmup_batches,
            "manifest": str(loaded.source),
            "manifest_sha256": loaded.digest,
            **(plan.trace.job_parameters() if plan.trace else {}),
            **({"scenario_options": plan.scenario.to_json()} if plan.scenario else {}),
        },
        shard_count=len(plan.ranges),
        # Items refused while listing the dataset are reported (as errors) by the first shard.
        progress_total=SCENARIO_PROGRESS_TOTAL if plan.scenario else plan.total + len(dataset.rejected),
        scenario=plan.scenario.scenario if plan.scenario else Scenario.ACCURACY,
        comparison_id=comparison_id,
        comparison_leg=comparison_leg,
        price_per_hour=plan.price_per_hour,
        trace_id=plan.trace.trace_id if plan.trace else None,
    )
    session.add(job)
    for index, (start, stop) in enumerate(plan.ranges):
        session.add(JobShard(job_id=job.id, index=index, item_start=start, item_stop=stop))
    if plan.trace is not None:
        plan.trace.save(session, job.id, submit_attributes(job))
    return job


def submit_evaluation(settings: Settings, request: EvaluationRequest, enqueue: Enqueue) -> str:
    """Validate, record the job and its shards, commit, then enqueue every shard. Returns the job id."""
    plan = plan_evaluation(settings, request)
    with session_scope(settings.database) as session:
        job_id = record_evaluation(session, plan).id
    # NB: enqueue only after the rows the tasks read are committed.
    enqueue_shards(settings, job_id, len(plan.ranges), request.hardware_tag, enqueue)
    return job_id


def evaluation_options(job: Job) -> EvaluationOptions:
    """The options a shard of `job` runs with."""
    return EvaluationOptions(
        batch_size=job.batch_size,
        limit=job.parameters.get("limit"),
        warmup_batches=job.parameters.get("warmup_batches", 1),
    )


def get_job(settings: Settings, job_id: str) -> Job:
    with session_scope(settings.database) as session:
        job = session.get(Job, job_id)
        if job is None:
            raise JobRequestError(f"no job {job_id!r}", field="job_id", status=404)
        session.refresh(job, ["shards", "result"])
        return job


def list_jobs(
    settings: Settings,
    *,
    status: str | None = None,
    model: str | None = None,
    hardware_tag: str | None = None,
    owner: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Sequence[Job]:
    """Jobs newest first, filtered; every filter reaches SQL as a bound parameter."""
    query = (
        select(Job)
        .options(selectinload(Job.result))
        .order_by(Job.created_at.desc(), Job.id)
        .limit(min(limit, 500))
        .offset(offset)
    )
    for column, value in (
        (Job.status, status),
        (Job.model_name, model),
        (Job.hardware_tag, hardware_tag),
        (Job.owner, owner),
    ):
        if value is not None:
            query = query.where(column == value)
    with session_scope(settings.database) as session:
        return list(session.scalars(query))


def cancel_job(settings: Settings, job_id: str) -> dict[str, Any]:
    """Ask a job to stop and return its summary. With no shard running it ends at once; running shards stop
    after their current batch, and the last of them ends the job."""
    with session_scope(settings.database) as session:
        job = locked_job(session, job_id)
        if job is None:
            raise JobRequestError(f"no job {job_id!r}", field="job_id", status=404)
        if JobStatus(job.status).final:
            raise JobRequestError(f"job {job_id} has already finished ({job.status})", field="job_id", status=409)
        job.cancel_requested = True
        settle(job)
        session.flush()
        summary = job_summary(job)
    if JobStatus(summary["status"]).final:
        announce_job_end(settings, job_id)  # after the commit, so that a waiting request reads the ended job
    return summary


def enqueue_shards(settings: Settings, job_id: str, shard_count: int, hardware_tag: str, enqueue: Enqueue) -> None:
    """Send every shard to its queue; if the broker refuses, the job fails at once rather than wait forever."""
    try:
        for index in range(shard_count):
            enqueue(job_id, index, hardware_tag)
    except Exception as exc:  # kombu/redis/amqp raise many types when the broker is unreachable
        reason = f"could not enqueue the job: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        with session_scope(settings.database) as session:
            job = locked_job(session, job_id)
            if job is not None and not JobStatus(job.status).final:
                job.status, job.error, job.finished_at = JobStatus.FAILED, reason, utcnow()
        raise JobRequestError(f"{reason} (is the broker at {settings.broker} running?)", status=503) from None
