"""Writes done twice on PostgreSQL: a progress write or a shard's claim whose COMMIT was applied but whose answer
was lost is retried (see carml.db.retry), and must not count its items or its attempt a second time."""

from __future__ import annotations

import threading
import time

import pytest
from db_faults import commit_answer_lost_once
from sqlalchemy import text, update

from carml.db.base import utcnow
from carml.db.models import Job, JobShard, JobStatus
from carml.db.session import session_scope
from carml.jobs import claim, execution
from carml.jobs.locking import lock_job
from carml.jobs.recovery import MAX_ATTEMPTS
from carml.jobs.service import EvaluationRequest, get_job, submit_evaluation
from carml.settings import Settings

WORKER = "cpu-test@host"  # registered by the `settings` fixture (tests/jobs/conftest.py)


@pytest.fixture()
def job_id(settings: Settings) -> str:
    """A queued evaluation of 40 digits in two shards of 20 (nothing runs it: the tests claim and report)."""
    request = EvaluationRequest(model="digits-cnn", framework="onnxruntime", dataset="digits", shards=2, limit=40)
    return submit_evaluation(settings, request, lambda *_: None)


def _counts(settings: Settings, job_id: str) -> tuple[int, list[int], list[int]]:
    job = get_job(settings, job_id)
    return job.progress_done, [s.items_done for s in job.shards], [s.attempts for s in job.shards]


def test_a_progress_write_done_twice_counts_once(settings: Settings, job_id: str) -> None:
    first, second = execution._ShardProgress(settings, job_id, 0), execution._ShardProgress(settings, job_id, 1)
    first._write(10)
    first._write(10)
    second._write(5)
    second._write(5)
    assert _counts(settings, job_id)[:2] == (15, [10, 5])

    with commit_answer_lost_once(settings.database) as lost:
        first.flush(20)  # applied, answer lost, retried: the retry writes the same counts again
    assert lost == [True]
    assert _counts(settings, job_id)[:2] == (25, [20, 5])
    second.flush(20)
    assert _counts(settings, job_id)[:2] == (40, [20, 20])


def test_a_claim_done_twice_by_one_delivery_counts_one_attempt(settings: Settings, job_id: str) -> None:
    claimed_at = utcnow()
    for _ in range(2):
        claimed = claim.claim_shard(settings, job_id, 0, WORKER, claimed_at)
        assert claimed is not None and claimed[1].attempts == 1
    assert _counts(settings, job_id)[2] == [1, 0]

    with commit_answer_lost_once(settings.database) as lost:
        claimed = claim.start_shard(settings, job_id, 1, WORKER)
    assert lost == [True] and claimed is not None and claimed[1].attempts == 1
    assert _counts(settings, job_id)[2] == [1, 1]


def test_each_delivery_still_counts_and_a_retried_last_claim_is_not_given_up_on(settings: Settings, job_id) -> None:
    # Progress first, so the claims below must also set the job's count back to the other shard's.
    execution._ShardProgress(settings, job_id, 0)._write(12)
    execution._ShardProgress(settings, job_id, 1)._write(7)
    for attempt in range(1, MAX_ATTEMPTS):  # redeliveries (its process died each time): each is an attempt
        claimed = claim.start_shard(settings, job_id, 0, WORKER)
        assert claimed is not None and claimed[1].attempts == attempt
    assert _counts(settings, job_id) == (7, [0, 7], [MAX_ATTEMPTS - 1, 0])

    with commit_answer_lost_once(settings.database):
        claimed = claim.start_shard(settings, job_id, 0, WORKER)  # the last allowed start, its answer lost
    assert claimed is not None and claimed[1].attempts == MAX_ATTEMPTS
    job = get_job(settings, job_id)
    assert job.status == JobStatus.RUNNING and job.shards[0].status == JobStatus.RUNNING and job.error is None

    assert claim.start_shard(settings, job_id, 0, WORKER) is None  # one more delivery: now it is given up on
    assert get_job(settings, job_id).status == JobStatus.FAILED


def test_a_progress_write_waits_for_a_sibling_shards_write_and_counts_it(settings: Settings, job_id: str) -> None:
    # Shard 1's write is held open after its own count and sum; shard 0's write meanwhile must wait for it and
    # then sum both counts. Summing before the job's lock was granted would miss the sibling's 7 and leave 10.
    def waiting_on_a_lock() -> bool:
        with session_scope(settings.database) as session:
            query = text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            return bool(session.scalar(query))

    writer = threading.Thread(target=execution._ShardProgress(settings, job_id, 0)._write, args=(10,))
    with session_scope(settings.database) as sibling:
        lock_job(sibling, job_id)
        sibling.execute(update(JobShard).where(JobShard.job_id == job_id, JobShard.index == 1).values(items_done=7))
        sibling.execute(update(Job).where(Job.id == job_id).values(progress_done=7))
        writer.start()
        deadline = time.monotonic() + 10
        while not waiting_on_a_lock():
            assert time.monotonic() < deadline, "shard 0's write never waited for the job's lock"
            time.sleep(0.01)
    writer.join(timeout=10)
    assert not writer.is_alive()
    assert _counts(settings, job_id)[:2] == (17, [10, 7])
