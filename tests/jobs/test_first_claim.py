"""The first delivery's claim of a one-shard job, on each backend (on PostgreSQL one statement that is its own
transaction): what it changes when it claims, and that it changes nothing when it does not."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from db_faults import answer_lost_once
from sqlalchemy import select

from carml.db.migrate import upgrade
from carml.db.models import Job, JobShard, JobStatus
from carml.db.session import session_scope
from carml.jobs import claim
from carml.jobs.service import EvaluationRequest, submit_evaluation
from carml.jobs.workers import register_worker
from carml.settings import Settings, load_settings

WORKER = "cpu-test@host"
EARLIER = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    env = {"CARML_HOME": str(tmp_path / "home"), "CARML_CACHE_DIR": str(tmp_path / "cache")}
    if request.param == "postgresql":
        env["CARML_DATABASE_URL"] = request.getfixturevalue("fresh_postgres_url")
    settings = load_settings(env)
    upgrade(settings.database)
    register_worker(settings, WORKER, "cpu")
    return settings


def _job(settings: Settings) -> str:
    request = EvaluationRequest(model="digits-cnn", framework="onnxruntime", dataset="digits", limit=20, batch_size=10)
    return submit_evaluation(settings, request, lambda *_: None)


def _rows(settings: Settings, job_id: str) -> tuple[tuple, tuple]:
    with session_scope(settings.database) as session:
        job = session.get(Job, job_id)
        shard = session.scalars(select(JobShard).where(JobShard.job_id == job_id)).one()
        assert job is not None
        return (
            (job.status, job.started_at, job.progress_done, job.cancel_requested),
            (shard.status, shard.worker_id, shard.attempts, shard.started_at, shard.items_done),
        )


def test_a_first_delivery_claims_the_job_and_its_shard_and_returns_them_as_stored(settings: Settings) -> None:
    job_id = _job(settings)
    now = datetime.now(UTC)
    claimed = claim.claim_shard(settings, job_id, 0, WORKER, now)
    assert claimed is not None
    job, shard, digest = claimed
    stored_job, stored_shard = _rows(settings, job_id)
    assert stored_job == (JobStatus.RUNNING, now, 0, False)
    assert stored_shard == (JobStatus.RUNNING, WORKER, 1, now, 0)
    assert (job.status, job.started_at, job.progress_done, job.cancel_requested) == stored_job
    assert (shard.status, shard.worker_id, shard.attempts, shard.started_at, shard.items_done) == stored_shard
    assert job.shards == [shard] and len(digest) == 64
    assert job.parameters["manifest_sha256"] == digest


def test_a_shard_already_claimed_once_is_left_to_the_general_claim_and_its_job_is_unchanged(
    settings: Settings,
) -> None:
    job_id = _job(settings)
    with session_scope(settings.database) as session:  # a first delivery ran, then its worker died
        job = session.get(Job, job_id)
        assert job is not None
        job.status, job.started_at = JobStatus.RUNNING, EARLIER
        shard = session.scalars(select(JobShard).where(JobShard.job_id == job_id)).one()
        shard.status, shard.worker_id, shard.attempts, shard.started_at = JobStatus.RUNNING, WORKER, 1, EARLIER
    before = _rows(settings, job_id)
    later = datetime.now(UTC)
    assert claim._claim_first_delivery(settings, job_id, 0, WORKER, later) is None
    assert _rows(settings, job_id) == before  # the job keeps its start: nothing changed
    claimed = claim.claim_shard(settings, job_id, 0, WORKER, later)  # the redelivery, by the general claim
    assert claimed is not None
    assert _rows(settings, job_id) == (
        (JobStatus.RUNNING, EARLIER, 0, False),
        (JobStatus.RUNNING, WORKER, 2, later, 0),
    )


def test_a_job_being_cancelled_is_not_claimed(settings: Settings) -> None:
    job_id = _job(settings)
    with session_scope(settings.database) as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.cancel_requested = True
    before = _rows(settings, job_id)
    assert claim._claim_first_delivery(settings, job_id, 0, WORKER, datetime.now(UTC)) is None
    assert _rows(settings, job_id) == before


@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)  # where the claim is one statement
def test_a_one_statement_claim_whose_answer_was_lost_is_recognised_by_its_retry(settings: Settings) -> None:
    job_id = _job(settings)
    now = datetime.now(UTC)
    with answer_lost_once("WITH claimed_job") as lost:
        claimed = claim.claim_shard(settings, job_id, 0, WORKER, now)  # applied, answer lost, retried
    assert len(lost) == 1 and claimed is not None
    assert claimed[1].attempts == 1  # the retry found its own claim: the same start, no second attempt
    assert _rows(settings, job_id) == ((JobStatus.RUNNING, now, 0, False), (JobStatus.RUNNING, WORKER, 1, now, 0))
