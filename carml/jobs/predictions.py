"""Prediction jobs: a user's files are kept with the job, one worker predicts them, answers come back.

Where inputs and answers are kept (the job's rows, or the object store for big inputs): `prediction_io`."""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, or_, update
from sqlalchemy.orm.attributes import set_committed_value

from carml.db.base import set_columns, utcnow
from carml.db.driver_statements import DriverStatement, driver_insert, loaded
from carml.db.models import Job, JobKind, JobShard, JobStatus, Result
from carml.db.retry import retried_on_lost_connection
from carml.db.session import session_scope
from carml.evaluation.runner import PredictBatch
from carml.images import oversized_image_reason
from carml.jobs.job_events import announce_job_end
from carml.jobs.model_cache import CachedModel, ModelCache
from carml.jobs.prediction_io import discard_inputs, input_bytes, keep_inputs
from carml.jobs.service import Enqueue, JobRequestError, enqueue_shards, register_model, require_live_tag, resolve_model
from carml.jobs.summary import job_summary
from carml.manifest import LoadedManifest, ModelManifest
from carml.settings import Settings
from carml.storage import open_object_store
from carml.tracing.shard_trace import ShardTrace
from carml.tracing.submission import SubmitTrace, submit_attributes, unknown_level
from predictors.preprocessing import ItemError

MAX_INPUTS = 64
MAX_INPUT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class PredictionRequest:
    model: str
    inputs: list[tuple[str, bytes]] = field(default_factory=list)  # (file name, content)
    framework: str | None = None
    hardware_tag: str = "cpu"
    top_k: int | None = None
    owner: str = "local"
    trace_level: str | None = None  # none, stage or framework; None: the CARML_TRACE_LEVEL default


def submit_prediction(settings: Settings, request: PredictionRequest, enqueue: Enqueue) -> str:
    """Keep the inputs, record the job, commit, enqueue its single shard. Returns the job id."""
    if unknown_level(request.trace_level):
        raise JobRequestError(unknown_level(request.trace_level) or "", field="trace_level")
    trace = SubmitTrace.open(settings, request.trace_level)
    if not request.inputs:
        raise JobRequestError("give at least one input file", field="inputs")
    if len(request.inputs) > MAX_INPUTS:
        raise JobRequestError(f"at most {MAX_INPUTS} input files per job", field="inputs")
    too_big = [name for name, data in request.inputs if len(data) > MAX_INPUT_BYTES]
    if too_big:
        raise JobRequestError(f"{too_big[0]} is larger than {MAX_INPUT_BYTES // 2**20} MiB", field="inputs")
    for name, data in request.inputs:
        # Refused here, before anything is stored: a worker would refuse it anyway, after the job was written.
        bomb = oversized_image_reason(data, settings.image_max_pixels)
        if bomb:
            raise JobRequestError(f"{name}: {bomb}", field="inputs")
    if request.top_k is not None and request.top_k < 1:
        raise JobRequestError("top_k must be at least 1", field="top_k")
    loaded = resolve_model(settings, request.model, request.framework)
    require_live_tag(settings, request.hardware_tag)
    job_id = str(uuid.uuid4())
    store = open_object_store(settings)
    entries = keep_inputs(store, job_id, request.inputs)
    try:
        _record_submission(settings, request, loaded, trace, job_id, entries)
    except JobRequestError:  # refused while recording (the model was replaced meanwhile): nothing is kept
        discard_inputs(store, job_id)
        raise
    enqueue_shards(settings, job_id, 1, request.hardware_tag, enqueue)
    return job_id


def _record_submission(
    settings: Settings,
    request: PredictionRequest,
    loaded: LoadedManifest[ModelManifest],
    trace: SubmitTrace,
    job_id: str,
    entries: list[dict[str, str]],
) -> None:
    """Record a prediction job and its single shard, with the `entries` of its kept inputs."""
    with session_scope(settings.database) as session:
        job = Job(
            id=job_id,
            kind=JobKind.PREDICT,
            status=JobStatus.QUEUED,
            owner=request.owner,
            model_name=loaded.manifest.name,
            framework=loaded.manifest.framework.name,
            model_id=register_model(session, loaded),
            hardware_tag=request.hardware_tag,
            batch_size=1,
            parameters={
                "manifest": str(loaded.source),
                "manifest_sha256": loaded.digest,
                "inputs": entries,
                "top_k": request.top_k,
                **trace.job_parameters(),
            },
            shard_count=1,
            progress_total=len(entries),
            price_per_hour=settings.hardware_prices.get(request.hardware_tag),
            trace_id=trace.trace_id,
        )
        # NB: plain INSERTs run as the driver's SQL, not the ORM's unit of work: this is on every prediction's path,
        # and the ORM's flush of these two rows costs several times their round trips. Columns not set take their
        # defaults.
        insert_job, insert_shard = _submission_statements()
        insert_job.execute(session, set_columns(job))
        insert_shard.execute(session, {"job_id": job_id, "index": 0, "item_start": 0, "item_stop": len(entries)})
        trace.save(session, job_id, submit_attributes(job))


@functools.cache
def _submission_statements() -> tuple[DriverStatement, DriverStatement]:
    """`_record_submission`'s INSERTs of the job (the columns it sets) and of its shard."""
    job_columns = (
        *("id", "kind", "status", "owner", "model_name", "framework", "model_id", "hardware_tag", "batch_size"),
        *("parameters", "shard_count", "progress_total", "price_per_hour", "trace_id"),
    )
    shard_columns = ("job_id", "index", "item_start", "item_stop")
    return driver_insert(Job.__table__, job_columns), driver_insert(JobShard.__table__, shard_columns)


def _predict_one(
    predictor: Any,
    store: Any,
    entry: dict[str, str],
    top_k: int | None,
    predict: PredictBatch,
    timings: list[dict[str, Any]],
) -> dict[str, Any]:
    """One stored input's answer with its stage timings (fetch, preprocess, predict, postprocess), or its error.

    The input's timings for its trace are appended to `timings`, as a batch of one (see tracing.shard_spans).
    """
    stages: dict[str, float] = {}
    started_at, started = time.time(), time.perf_counter()
    mark = started
    prepared = None

    def lap(stage: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        stages[stage], mark = (now - mark) * 1000, now

    try:
        data = input_bytes(store, entry)
        lap("fetch")
        prepared = predictor.preprocess(entry["name"], data)  # decode and the manifest's preprocessing
        lap("preprocess")
        raw = predict([prepared])[0]
        lap("predict")
        predictor.top_k = top_k
        answer: dict[str, Any] = predictor.postprocess(prepared, raw).to_json()
        lap("postprocess")
    except ItemError as exc:
        return {"item": entry["name"], "error": str(exc)}
    except Exception as exc:  # a framework error on one input: report it with the others
        return {"item": entry["name"], "error": f"prediction failed: {type(exc).__name__}: {exc}"}
    finally:
        predictor.top_k = None
        decode_ms = prepared.context.decode_ms if prepared is not None else None
        timings.append(_input_timing(entry["name"], started_at, stages, decode_ms))
    return {**answer, "latency_ms": (time.perf_counter() - started) * 1000, "stages_ms": stages}


def _input_timing(name: str, started_at: float, stages: dict[str, float], decode_ms: float | None) -> dict[str, Any]:
    """An input's stages in the batch timing format; stages it did not reach are absent."""
    timing: dict[str, Any] = {"size": 1, "warmup": False, "item": name, "started": {"load": started_at}}
    if "fetch" in stages:
        timing["load"] = stages["fetch"]
    if decode_ms is not None:
        timing["decode"] = decode_ms
    timing.update({stage: stages[stage] for stage in ("preprocess", "predict", "postprocess") if stage in stages})
    return timing


def run_prediction(settings: Settings, job: Job, worker_id: str, models: ModelCache, expected_digest: str = "") -> None:
    """Predict every stored input of a prediction job and record the answers (worker side). `expected_digest`: the
    SHA-256 the job's manifest had when it was submitted (its `models` row's)."""
    from carml.artifacts import ArtifactCache
    from carml.publishing import job_manifest

    loaded = job_manifest(settings, job.parameters["manifest"], expected_digest)
    store = open_object_store(settings)
    trace = ShardTrace.begin(settings, job, job.shards[0], worker_id)
    cache = ArtifactCache(settings, shared=store, confine_local_files=True)
    cached = models.get(loaded, cache, settings.device, settings.threads)
    trace.model_loaded(cached)
    predictor = cached.predictor
    top_k = job.parameters.get("top_k")
    try:
        predict = trace.predict_function(predictor) or predictor.predict
        timings: list[dict[str, Any]] = []
        answers = [_predict_one(predictor, store, entry, top_k, predict, timings) for entry in job.parameters["inputs"]]
    finally:
        trace.close()  # stops a framework profiler however the predictions end; what it recorded is kept
    trace.store_started()  # the answers are kept in the result row, with the job's end (see prediction_io)
    reproducibility = {
        "worker": worker_id,
        "device": predictor.device,
        "model_cache_hit": cached.hit,
        "manifest_sha256": loaded.digest,
    }
    summary = _record_prediction(
        settings, job.id, answers, reproducibility, cached, trace, timings, attempt=job.shards[0].attempts
    )
    announce_job_end(settings, job.id, summary)  # after the commit, so that a waiting request reads the ended job


@retried_on_lost_connection  # a rewrite under the job's lock, skipped once the shard has ended: safe to repeat
def _record_prediction(
    settings: Settings,
    job_id: str,
    answers: list[dict[str, Any]],
    reproducibility: dict[str, Any],
    cached: CachedModel,
    trace: ShardTrace,
    timings: list[dict[str, Any]],
    attempt: int,
) -> dict[str, Any] | None:
    """Record a prediction job's answers and end it, unless its shard ended, or was claimed again, meanwhile.
    Returns the ended job's summary as the API shows it (None when this copy recorded nothing).

    NB: a retry after a COMMIT whose answer was lost finds the shard ended and writes nothing: one result.
    """
    errors = [a for a in answers if "error" in a]
    result = Result(
        job_id=job_id,
        items=len(answers) - len(errors),
        errors=len(errors),
        model_load_ms=cached.load_ms if not cached.hit else None,
        metrics={"predictions": answers},
        latency={},
        error_items=errors,
        reproducibility=reproducibility,
    )
    ended_at = utcnow()
    # NB: plain statements, not the ORM's load-and-flush of the job and its shard: this is on every prediction's
    # path. The job's row first (its lock, as everywhere); the shard is only written if this copy still owns it
    # (`owns_shard`), and when it does not, the job's row is left as it was.
    end_job, end_shard, insert_result = _final_statements()
    values = {
        "p_job": job_id,
        "p_at": ended_at,
        "p_done": len(answers),
        "p_attempt": attempt,
        "p_hit": cached.hit,
        "p_load_ms": cached.load_ms,
    }
    with session_scope(settings.database) as session:
        jobs, _ = end_job.execute(session, values)
        _, owned = end_shard.execute(session, values)
        if not jobs or owned != 1:
            session.rollback()
            return None
        # NB: the result row as stored (RETURNING), not `result`: the database keeps JSON in its own key order and
        # number forms, and the announced summary must be what a read of the job returns.
        stored, _ = insert_result.execute(session, set_columns(result))
        # Spans added, none replaced: this shard's spans are only ever written here, in the transaction that ends it.
        trace.save(session, timings, replace=False)
    job = loaded(Job, jobs[0])
    set_committed_value(job, "result", loaded(Result, stored[0]))
    return job_summary(job)


@functools.cache
def _final_statements() -> tuple[DriverStatement, DriverStatement, DriverStatement]:
    """`_record_prediction`'s statements, compiled once and run as the driver's SQL (`DriverStatement`): they run for
    every prediction, and SQLAlchemy's own execution of them cost several times their round trips."""
    jobs, shards, results = Job.__table__, JobShard.__table__, Result.__table__
    ended_at = bindparam("p_at", type_=Job.finished_at.type)
    end_job = (
        update(jobs)
        .where(jobs.c.id == bindparam("p_job"))
        .values(status=JobStatus.SUCCEEDED, finished_at=ended_at, shards_finished=1, progress_done=bindparam("p_done"))
        .returning(*jobs.c)
    )
    end_shard = (
        update(shards)
        .where(
            shards.c.job_id == bindparam("p_job"),
            shards.c.index == 0,
            or_(shards.c.status == JobStatus.QUEUED, shards.c.status == JobStatus.RUNNING),
            shards.c.attempts == bindparam("p_attempt"),
        )
        .values(
            status=JobStatus.SUCCEEDED,
            finished_at=ended_at,
            items_done=bindparam("p_done"),
            model_cache_hit=bindparam("p_hit"),
            model_load_ms=bindparam("p_load_ms"),
        )
    )
    # The columns `_record_prediction`'s Result sets; created_at takes its default, the rest NULL.
    written = ("job_id", "items", "errors", "model_load_ms", "metrics", "latency", "error_items", "reproducibility")
    insert_result = driver_insert(results, written, returning=True)
    return DriverStatement(end_job), DriverStatement(end_shard), insert_result
