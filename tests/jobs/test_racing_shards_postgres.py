"""Shards of one job ending at the same moment on PostgreSQL: whichever records its outcome second sees the first's
and merges the job, once. (tests/jobs/test_shard_rules.py races them on SQLite.)"""

from __future__ import annotations

import threading
import time

import psycopg
from sqlalchemy import func, select

from carml.db.models import JobStatus, Result
from carml.db.session import session_scope
from carml.jobs import execution
from carml.jobs.model_cache import ModelCache
from carml.jobs.service import EvaluationRequest, get_job, submit_evaluation
from carml.settings import Settings

WORKER = "cpu-test@host"  # registered by the `settings` fixture (tests/jobs/conftest.py)


def test_two_shards_whose_outcomes_queue_on_the_job_lock_merge_it_once(settings: Settings, monkeypatch) -> None:
    request = EvaluationRequest(
        model="digits-cnn", framework="onnxruntime", dataset="digits", shards=2, limit=40, batch_size=10
    )
    job_id = submit_evaluation(settings, request, lambda *_: None)
    real_finish = execution.finish_shard
    at_finish, job_held = threading.Barrier(3), threading.Event()

    def finish_when_both_are_there(*args, **kwargs):  # type: ignore[no-untyped-def]
        at_finish.wait(timeout=60)
        assert job_held.wait(timeout=60)
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(execution, "finish_shard", finish_when_both_are_there)
    models = ModelCache()
    shards = [
        threading.Thread(target=execution.run_shard, args=(settings, job_id, index, WORKER, models)) for index in (0, 1)
    ]
    for shard in shards:
        shard.start()
    # Both shards have run; hold the job's row while they go on to record their outcomes, so that both wait for
    # its lock, then let them through one after the other.
    at_finish.wait(timeout=60)
    with psycopg.connect(settings.database.replace("postgresql+psycopg://", "postgresql://", 1)) as holder:
        holder.execute("SELECT 1 FROM jobs WHERE id = %s FOR UPDATE", (job_id,))
        job_held.set()
        time.sleep(1.0)  # both are now waiting for the lock
    for shard in shards:
        shard.join(timeout=60)
    job = get_job(settings, job_id)
    assert [s.status for s in job.shards] == [JobStatus.SUCCEEDED, JobStatus.SUCCEEDED]
    assert job.status == JobStatus.SUCCEEDED and job.shards_finished == 2
    with session_scope(settings.database) as session:
        assert session.scalar(select(func.count()).select_from(Result).where(Result.job_id == job_id)) == 1
    assert job.result is not None and job.result.items == 40
