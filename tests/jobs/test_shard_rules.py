"""How shards settle a job, run in this process on the embedded default (SQLite): racing shards merge once,
a failed shard ends the job, cancels end it once nothing runs, redelivered shards start their progress over."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from carml.db.migrate import upgrade
from carml.db.models import Job, JobShard, JobStatus, Result
from carml.db.session import session_scope
from carml.jobs import claim, execution
from carml.jobs.model_cache import ModelCache
from carml.jobs.service import EvaluationRequest, JobRequestError, cancel_job, get_job, submit_evaluation
from carml.jobs.workers import register_worker
from carml.settings import load_settings


def _settings(tmp_path: Path, **extra: str):
    settings = load_settings(
        {"CARML_HOME": str(tmp_path / "home"), "CARML_CACHE_DIR": str(tmp_path / "cache"), **extra}
    )
    upgrade(settings.database)
    register_worker(settings, "cpu-test@host", "cpu")
    return settings


@pytest.fixture()
def settings(tmp_path: Path):
    return _settings(tmp_path)


def _job(settings, shards: int, limit: int = 90) -> str:
    request = EvaluationRequest(
        model="digits-cnn", framework="onnxruntime", dataset="digits", shards=shards, limit=limit, batch_size=10
    )
    return submit_evaluation(settings, request, lambda *_: None)


def _results(settings, job_id: str) -> int:
    with session_scope(settings.database) as session:
        return session.scalar(select(func.count()).select_from(Result).where(Result.job_id == job_id))


def test_racing_shards_on_sqlite_merge_exactly_once(settings) -> None:
    job_id = _job(settings, shards=3)
    models = ModelCache()  # shared, as the tasks of one worker process share it
    barrier = threading.Barrier(3)

    def run(index: int) -> None:
        barrier.wait()
        execution.run_shard(settings, job_id, index, "cpu-test@host", models)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    job = get_job(settings, job_id)
    assert job.status == JobStatus.SUCCEEDED and job.shards_finished == 3
    assert job.progress_done == job.progress_total == 90
    assert _results(settings, job_id) == 1 and job.result.items == 90


def test_a_failed_shard_ends_the_job_and_its_queued_siblings(settings) -> None:
    job_id = _job(settings, shards=3)
    models = ModelCache()
    assert execution.run_shard(settings, job_id, 0, "cpu-test@host", models) == JobStatus.SUCCEEDED
    execution.end_shard(settings, job_id, 1, JobStatus.FAILED, "device lost")
    assert execution.run_shard(settings, job_id, 2, "cpu-test@host", models) == "skipped"
    job = get_job(settings, job_id)
    assert job.status == JobStatus.FAILED and job.error == "device lost"
    assert [s.status for s in job.shards] == ["succeeded", "failed", "cancelled"]
    assert _results(settings, job_id) == 0


def test_cancel_with_nothing_running_ends_the_job_at_once(settings) -> None:
    job_id = _job(settings, shards=2)
    execution.run_shard(settings, job_id, 0, "cpu-test@host", ModelCache())
    assert cancel_job(settings, job_id)["status"] == "cancelled"
    assert [s.status for s in get_job(settings, job_id).shards] == ["succeeded", "cancelled"]
    assert execution.run_shard(settings, job_id, 1, "cpu-test@host", ModelCache()) == "skipped"
    assert _results(settings, job_id) == 0
    with pytest.raises(JobRequestError, match="already finished"):
        cancel_job(settings, job_id)


def test_a_redelivered_shard_starts_its_progress_over(settings) -> None:
    job_id = _job(settings, shards=1)
    # The first delivery reported 50 items, then its worker died before finishing.
    with session_scope(settings.database) as session:
        job = session.get(Job, job_id)
        job.status, job.progress_done = JobStatus.RUNNING, 50
        shard = session.scalar(select(JobShard).where(JobShard.job_id == job_id))
        shard.status, shard.items_done = JobStatus.RUNNING, 50
    assert execution.run_shard(settings, job_id, 0, "cpu-test@host", ModelCache()) == JobStatus.SUCCEEDED
    job = get_job(settings, job_id)
    assert job.progress_done == job.progress_total == 90 and _results(settings, job_id) == 1


def test_a_copy_that_lost_its_claim_records_nothing(settings, monkeypatch) -> None:
    from carml.db.models import StageTiming

    job_id = _job(settings, shards=1)
    register_worker(settings, "other@host", "cpu")
    finish = execution.finish_shard

    def redelivered_meanwhile(*args, **kwargs):  # type: ignore[no-untyped-def]
        # While the first copy ran, the broker handed the shard to another worker, which claimed it.
        assert claim.start_shard(settings, job_id, 0, "other@host") is not None
        finish(*args, **kwargs)

    monkeypatch.setattr(execution, "finish_shard", redelivered_meanwhile)
    execution.run_shard(settings, job_id, 0, "cpu-test@host", ModelCache())
    monkeypatch.setattr(execution, "finish_shard", finish)
    with session_scope(settings.database) as session:
        shard = session.scalar(select(JobShard).where(JobShard.job_id == job_id))
        timings = session.scalar(select(func.count()).select_from(StageTiming).where(StageTiming.job_id == job_id))
        assert (shard.status, shard.worker_id, shard.attempts, timings) == (JobStatus.RUNNING, "other@host", 2, 0), (
            shard.error
        )
    assert _results(settings, job_id) == 0
    # The copy that holds the claim finishes the shard: one result, one set of timings.
    assert execution.run_shard(settings, job_id, 0, "cpu-test@host", ModelCache()) == JobStatus.SUCCEEDED
    with session_scope(settings.database) as session:
        timings = session.scalar(select(func.count()).select_from(StageTiming).where(StageTiming.job_id == job_id))
    assert _results(settings, job_id) == 1 and timings == 9 * 4


def test_a_shard_past_the_time_limit_ends_as_timed_out(tmp_path: Path) -> None:
    settings = _settings(tmp_path, CARML_JOB_TIME_LIMIT_S="0")
    job_id = _job(settings, shards=1)
    assert execution.run_shard(settings, job_id, 0, "cpu-test@host", ModelCache()) == JobStatus.TIMED_OUT
    job = get_job(settings, job_id)
    assert job.status == JobStatus.TIMED_OUT and "0 s limit" in job.error and _results(settings, job_id) == 0


def test_an_unreachable_broker_fails_the_job_instead_of_leaving_it_queued(settings) -> None:
    def broken(*_: object) -> None:
        raise ConnectionRefusedError("connection refused")

    request = EvaluationRequest(model="digits-cnn", framework="onnxruntime", dataset="digits", limit=10)
    with pytest.raises(JobRequestError, match="could not enqueue") as caught:
        submit_evaluation(settings, request, broken)
    assert caught.value.status == 503
    with session_scope(settings.database) as session:
        assert session.scalars(select(Job.status)).all() == ["failed"]


def test_shards_of_a_dead_worker_are_queued_again_then_given_up_on(settings) -> None:
    from datetime import timedelta

    from carml.db.base import utcnow
    from carml.db.models import Worker
    from carml.jobs.recovery import MAX_ATTEMPTS, requeue_lost_shards

    job_id = _job(settings, shards=1)
    register_worker(settings, "gone@host", "cpu")

    def strand(attempts: int) -> None:
        """The shard runs on gone@host, which then stops heartbeating."""
        with session_scope(settings.database) as session:
            session.get(Worker, "gone@host").last_heartbeat = utcnow() - timedelta(hours=1)
            job = session.get(Job, job_id)
            job.status, job.progress_done = JobStatus.RUNNING, 30
            shard = job.shards[0]
            shard.status, shard.worker_id, shard.items_done, shard.attempts = (
                JobStatus.RUNNING,
                "gone@host",
                30,
                attempts,
            )

    strand(attempts=1)
    sent: list[tuple] = []
    assert requeue_lost_shards(settings, lambda *args: sent.append(args)) == [(job_id, 0)]
    assert sent == [(job_id, 0, "cpu")]
    job = get_job(settings, job_id)
    assert (job.shards[0].status, job.progress_done) == ("queued", 0)
    assert requeue_lost_shards(settings, lambda *args: sent.append(args)) == []  # nothing left to rescue

    strand(attempts=MAX_ATTEMPTS)
    assert requeue_lost_shards(settings, lambda *args: sent.append(args)) == []
    job = get_job(settings, job_id)
    assert job.status == JobStatus.FAILED and "worker died 3 times" in job.error
