"""Celery tasks: thin, taking ids; the work is in `carml.jobs.execution` so it is testable without a broker."""

from __future__ import annotations

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from carml.db.models import JobStatus
from carml.jobs import execution
from carml.jobs.model_cache import ModelCache
from carml.settings import load_settings

# One cache per worker process: a second job on the same model reuses the loaded predictor.
_models = ModelCache()


@shared_task(name="carml.run_shard", bind=True)
def run_shard(self, job_id: str, shard_index: int) -> str:  # type: ignore[no-untyped-def]
    settings = load_settings()
    try:
        return execution.run_shard(settings, job_id, shard_index, self.request.hostname or "unknown", _models)
    except SoftTimeLimitExceeded:  # a backstop: the shard itself stops at the limit between batches
        limit = settings.job_time_limit_s
        execution.end_shard(settings, job_id, shard_index, JobStatus.TIMED_OUT, f"shard ran past the {limit} s limit")
        return JobStatus.TIMED_OUT
