"""Running one shard of a job inside a worker, and merging the shards' results exactly once.

A shard redelivered after its worker died rewrites the same object and rows and resets its progress,
and a shard that already ended is not run again. Every change of a shard's state happens with its job
row locked (`locking.locked_job`), and the shard that completes the job merges inside that
transaction, so the merge happens once even when shards race.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update

from carml.artifacts import ArtifactCache
from carml.db.base import utcnow
from carml.db.bulk import replace_rows
from carml.db.models import Job, JobKind, JobShard, JobStatus, OutputObject, Result, StageTiming
from carml.db.retry import retried_on_lost_connection, skipped_while_database_away
from carml.db.session import read_scope, session_scope
from carml.errors import CarmlError
from carml.evaluation.partial import STAGES, EvaluationPartial, stored_metrics, summarize
from carml.evaluation.record import reproducibility_record
from carml.jobs.claim import start_shard
from carml.jobs.job_events import announce_job_end
from carml.jobs.locking import lock_job, locked_job, locked_shard, owns_shard, settle
from carml.jobs.model_cache import ModelCache
from carml.jobs.scenario_execution import (
    job_runner,
    output_items,
    progress_done,
    scenario_columns,
    scenario_record,
    scenario_summary,
)
from carml.jobs.service import evaluation_options
from carml.jobs.shard_reporter import BackgroundReporter
from carml.jobs.uploads import open_job_dataset
from carml.monitoring.records import replace_samples
from carml.monitoring.shard import ShardHardware, ShardSampler
from carml.monitoring.summary import job_hardware
from carml.publishing import job_manifest
from carml.settings import Settings
from carml.storage import open_object_store
from carml.tracing.shard_trace import ShardTrace
from predictors.base import ItemPrediction

# Progress and cancellation reach the database at most this often per shard (from a thread beside the model).
POLL_INTERVAL_S = 0.25


class _ShardProgress:
    """Throttled progress writes and cancellation checks for one running shard."""

    def __init__(self, settings: Settings, job_id: str, shard_index: int):
        self.settings, self.job_id, self.shard_index = settings, job_id, shard_index
        self.reported = 0
        self.last_write = self.last_check = 0.0
        self.stopped = self.timed_out = False
        # The time limit is enforced here, between batches, so the shard ends cleanly as TIMED_OUT;
        # Celery's own limits are only a backstop for a batch that never returns.
        self.deadline = time.monotonic() + settings.job_time_limit_s

    def __call__(self, done: int, total: int) -> None:
        if done == total or time.monotonic() - self.last_write >= POLL_INTERVAL_S:
            self.last_write = time.monotonic()
            # A database restarting must not stop the evaluation: the next write catches up (see `_write`).
            with skipped_while_database_away(f"progress of shard {self.shard_index} of job {self.job_id}"):
                self._write(done)

    @retried_on_lost_connection
    def flush(self, done: int) -> None:
        """Write the shard's final count, waiting for a database that is away."""
        self._write(done)

    def _write(self, done: int) -> None:
        # Counts, not increments: a write done again after a COMMIT whose answer was lost changes nothing.
        with session_scope(self.settings.database) as session:
            # NB: the job's lock first, so that the sum below (a statement started after it was granted) sees
            # every sibling shard's committed count, and none is between its own two writes.
            lock_job(session, self.job_id)
            session.execute(
                update(JobShard)
                .where(JobShard.job_id == self.job_id, JobShard.index == self.shard_index)
                .values(items_done=done)
            )
            shards_done = select(func.coalesce(func.sum(JobShard.items_done), 0)).where(JobShard.job_id == self.job_id)
            session.execute(
                update(Job).where(Job.id == self.job_id).values(progress_done=shards_done.scalar_subquery())
            )
        self.reported = done

    def should_stop(self) -> bool:
        """True once the job is cancelled or ended elsewhere (a sibling shard failed), or time is up."""
        if time.monotonic() > self.deadline:
            self.stopped = self.timed_out = True
        if not self.stopped and time.monotonic() - self.last_check >= POLL_INTERVAL_S:
            self.last_check = time.monotonic()
            with (
                skipped_while_database_away(f"cancellation check of job {self.job_id}"),
                read_scope(self.settings.database) as session,
            ):
                cancel, status = session.execute(
                    select(Job.cancel_requested, Job.status).where(Job.id == self.job_id)
                ).one()
                self.stopped = bool(cancel) or JobStatus(status).final
        return self.stopped


def run_shard(settings: Settings, job_id: str, shard_index: int, worker_id: str, models: ModelCache) -> str:
    """Run one shard and record everything it produced. Returns the shard's final status."""
    claimed = start_shard(settings, job_id, shard_index, worker_id)
    if claimed is None:
        return "skipped"
    job, shard, expected_digest = claimed
    try:
        if job.kind == JobKind.PREDICT:
            from carml.jobs.predictions import run_prediction

            run_prediction(settings, job, worker_id, models, expected_digest)
            return JobStatus.SUCCEEDED
        return _run(settings, job, shard, expected_digest, worker_id, models)
    except CarmlError as exc:
        end_shard(settings, job_id, shard_index, JobStatus.FAILED, str(exc))
        return JobStatus.FAILED
    except Exception as exc:  # any other failure (storage, framework, a bug) must still end the job, not strand it
        end_shard(settings, job_id, shard_index, JobStatus.FAILED, f"{type(exc).__name__}: {exc}")
        raise


def _run(
    settings: Settings, job: Job, shard: JobShard, expected_digest: str, worker_id: str, models: ModelCache
) -> str:
    # A published model's manifest may not be on this machine yet: job_manifest writes it from the database.
    loaded = job_manifest(settings, job.parameters["manifest"], expected_digest)
    cache = ArtifactCache(settings, shared=open_object_store(settings), confine_local_files=True)
    dataset = open_job_dataset(settings, job.dataset_name or "")
    trace = ShardTrace.begin(settings, job, shard, worker_id)
    cached = models.get(loaded, cache, settings.device, settings.threads)
    trace.model_loaded(cached)
    progress = _ShardProgress(settings, job.id, shard.index)
    with tempfile.TemporaryDirectory(prefix="carml-shard-") as folder:
        outputs = Path(folder) / "predictions.jsonl"
        with (
            outputs.open("w", encoding="utf-8") as stream,
            ShardSampler(settings, cached.predictor.device, worker_id) as sampler,
            contextlib.closing(trace),  # stops a framework profiler however the run ends
            BackgroundReporter(progress, POLL_INTERVAL_S) as reporter,  # database round trips beside the model
        ):
            partial = job_runner(job)(  # run_partial, or a performance scenario (carml.jobs.scenario_execution)
                cached.predictor,
                dataset,
                evaluation_options(job),
                item_range=(shard.item_start, shard.item_stop),
                progress=reporter.progress,
                should_stop=reporter.should_stop,
                on_prediction=_jsonl_writer(stream),
                predict=trace.predict_function(cached.predictor),
            )
        hardware = sampler.finish(partial)
        progress.flush(progress_done(job, partial, progress.reported))
        if partial.cancelled:
            if progress.timed_out:
                limit = settings.job_time_limit_s
                end_shard(settings, job.id, shard.index, JobStatus.TIMED_OUT, f"shard ran past the {limit} s limit")
                return JobStatus.TIMED_OUT
            end_shard(settings, job.id, shard.index, JobStatus.CANCELLED, None)
            return JobStatus.CANCELLED
        key = f"jobs/{job.id}/outputs/shard-{shard.index:04d}.jsonl"
        trace.store_started()
        info = open_object_store(settings).put_file(key, outputs, content_type="application/x-ndjson")
    record = reproducibility_record(
        framework=cached.predictor.framework,
        framework_version=cached.predictor.availability().version,
        device=cached.predictor.device,
        manifest_digest=loaded.digest,
        dataset_digest=dataset.digest,
        batch_size=job.batch_size,
        seed=0,
        extra={"worker": worker_id, "model_cache_hit": cached.hit, **scenario_record(partial)},
    )
    finish_shard(
        settings,
        job.id,
        shard.index,
        partial,
        record,
        cached.load_ms,
        cached.hit,
        OutputObject(
            job_id=job.id,
            shard_index=shard.index,
            key=info.key,
            items=output_items(partial),
            size_bytes=info.size,
            sha256=info.sha256,
        ),
        hardware=hardware,
        trace=trace,
        attempt=shard.attempts,
    )
    return JobStatus.SUCCEEDED


def _jsonl_writer(stream: Any) -> Callable[[ItemPrediction, int | None], None]:
    def write(prediction: ItemPrediction, true_class: int | None) -> None:
        stream.write(json.dumps({**prediction.to_json(), "true_class": true_class}) + "\n")

    return write


TIMING_COLUMNS = ("job_id", "shard_index", "batch_index", "stage", "items", "duration_ms", "warmup")


def _timing_rows(job_id: str, shard_index: int, partial: EvaluationPartial) -> Iterator[tuple[Any, ...]]:
    """The shard's `stage_timings` rows, in the order of `TIMING_COLUMNS`."""
    for i, batch in enumerate(partial.batches):
        for stage in STAGES:
            yield job_id, shard_index, i, stage, batch["size"], batch[stage], batch["warmup"]


@retried_on_lost_connection  # every write below is a rewrite, so it can be done again
def finish_shard(
    settings: Settings,
    job_id: str,
    shard_index: int,
    partial: EvaluationPartial,
    record: dict[str, Any],
    load_ms: float,
    cache_hit: bool,
    output: OutputObject,
    hardware: ShardHardware | None = None,
    trace: ShardTrace | None = None,
    attempt: int | None = None,
) -> None:
    """Record a shard's outcome; the shard that completes the job merges all of them, once.

    `attempt` is the shard's attempt count when this copy claimed it: a copy that was redelivered while it
    still ran (and so lost its claim) records nothing, so rows and result always come from one copy.
    """
    # Timings first, in their own transaction and in bulk: the job-locked one below must stay short. The shard's
    # own row lock keeps two copies from interleaving their delete-and-insert.
    with session_scope(settings.database) as session:
        if not owns_shard(locked_shard(session, job_id, shard_index), attempt):
            return
        rows, of_shard = _timing_rows(job_id, shard_index, partial), {"job_id": job_id, "shard_index": shard_index}
        replace_rows(session, StageTiming.__table__, of_shard, TIMING_COLUMNS, rows)
        replace_samples(session, job_id, shard_index, hardware)
        if trace is not None:
            trace.save(session, partial.batches)  # ends the store span; in the job's trace before the job ends
    with session_scope(settings.database) as session:
        job = locked_job(session, job_id)
        shard = next(s for s in job.shards if s.index == shard_index)
        if not owns_shard(shard, attempt):
            return  # a redelivered copy already ended this shard, or claimed it since
        # Rewrites, not appends: a shard that ran before (and died before this point) leaves no duplicates.
        session.execute(
            delete(OutputObject).where(OutputObject.job_id == job_id, OutputObject.shard_index == shard_index)
        )
        session.add(output)
        shard.partial = {"partial": partial.to_json(), "record": record, "hardware": hardware and hardware.summary}
        shard.status, shard.finished_at = JobStatus.SUCCEEDED, utcnow()
        shard.model_cache_hit, shard.model_load_ms = cache_hit, load_ms
        if settle(job):
            _merge(session, job)
        ended = JobStatus(job.status).final
    if ended:
        announce_job_end(settings, job_id)  # after the commit, so that a waiting request reads the ended job


def _merge(session: Any, job: Job) -> None:
    shards = sorted(job.shards, key=lambda s: s.index)
    summary = summarize([EvaluationPartial.from_json(s.partial["partial"]) for s in shards], confusion="cells")
    outcome = shards[0].partial["partial"].get("scenario")  # a performance scenario (one shard)
    summary.update(scenario_summary(outcome))
    record = dict(shards[0].partial["record"])
    record["shards"] = [
        {
            "index": s.index,
            "worker": s.worker_id,
            "items": s.item_stop - s.item_start,
            "model_cache_hit": s.model_cache_hit,
        }
        for s in shards
    ]
    loads = [s.model_load_ms for s in shards if s.model_cache_hit is False and s.model_load_ms is not None]
    latency = summary["latency_ms"]
    session.add(
        Result(
            job_id=job.id,
            items=summary["items"],
            errors=summary["errors"],
            top1=summary["top1"],
            top5=summary["top5"],
            latency_p50_ms=latency["p50"],
            latency_p90_ms=latency["p90"],
            latency_p99_ms=latency["p99"],
            latency_trimmed_mean_ms=latency["trimmed_mean"],
            throughput_items_per_s=summary["throughput_items_per_s"],
            model_load_ms=max(loads) if loads else None,
            metrics=stored_metrics(summary),  # the confusion matrix as its non-zero cells
            latency=summary["stages_ms"],
            reproducibility=record,
            error_items=summary["error_items"],
            **job_hardware(job.price_per_hour, [s.partial.get("hardware") for s in shards]),
            **scenario_columns(outcome),
        )
    )
    job.status, job.finished_at = JobStatus.SUCCEEDED, utcnow()


@retried_on_lost_connection
def end_shard(settings: Settings, job_id: str, shard_index: int, status: JobStatus, error: str | None) -> None:
    """End a shard as failed, cancelled or timed out; the job then ends too, keeping no partial result."""
    with session_scope(settings.database) as session:
        job = locked_job(session, job_id)
        if job is None:
            return
        shard = next(s for s in job.shards if s.index == shard_index)
        if not JobStatus(shard.status).final:
            shard.status, shard.error, shard.finished_at = status, error, utcnow()
        settle(job)
        ended = JobStatus(job.status).final
    if ended:
        announce_job_end(settings, job_id)
