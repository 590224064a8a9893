"""Claiming a shard for a worker: once per delivery of its task, idempotent when retried, given up on after too
many deaths (`recovery.gave_up_on`). The job's row is locked first, as everywhere (`locking`)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Update, bindparam, case, make_url, or_, update
from sqlalchemy.orm.attributes import set_committed_value

from carml.db.base import utcnow
from carml.db.driver_statements import DriverStatement, loaded
from carml.db.models import Job, JobShard, JobStatus, RegisteredModel
from carml.db.retry import retried_on_lost_connection
from carml.db.session import session_scope, statement_scope
from carml.errors import CarmlError
from carml.jobs.locking import locked_job, settle
from carml.jobs.recovery import gave_up_on
from carml.settings import Settings


def start_shard(settings: Settings, job_id: str, shard_index: int, worker_id: str) -> tuple[Job, JobShard, str] | None:
    """Claim a shard for this worker, once per delivery of its task; None when there is nothing to run (ended, or
    its job is ending)."""
    # NB: the moment of the claim names this delivery, so a retry of the claim can recognise its own (`claim_shard`).
    return claim_shard(settings, job_id, shard_index, worker_id, utcnow())


@retried_on_lost_connection  # a claim is idempotent: a retry finds its own claim, a redelivery claims afresh
def claim_shard(
    settings: Settings, job_id: str, shard_index: int, worker_id: str, claimed_at: datetime
) -> tuple[Job, JobShard, str] | None:
    first = _claim_first_delivery(settings, job_id, shard_index, worker_id, claimed_at)
    if first is not None:
        return first
    with session_scope(settings.database) as session:
        job = locked_job(session, job_id)
        if job is None:
            raise CarmlError(f"job {job_id} does not exist")
        shard = next(s for s in job.shards if s.index == shard_index)
        if JobStatus(shard.status).final:
            return None
        if JobStatus(job.status).final or job.cancel_requested:
            shard.status, shard.finished_at = JobStatus.CANCELLED, utcnow()
            settle(job)
            return None
        # This delivery's claim was committed but the answer was lost (the connection dropped during COMMIT): it is
        # the same start, not another one, so it counts no attempt (three would fail a healthy shard).
        if (shard.status, shard.worker_id, shard.started_at) == (JobStatus.RUNNING, worker_id, claimed_at):
            return job, shard, _manifest_digest(session, job)
        # The OOM killer takes the pool process, not the worker, which gives the shard back to the broker:
        # without this, a shard that runs out of memory every time would be redelivered forever.
        if gave_up_on(job, shard):
            return None
        # A redelivered shard starts over: what it reported before its worker died no longer counts.
        shard.items_done = 0
        job.progress_done = sum(s.items_done for s in job.shards)
        shard.attempts += 1
        shard.status, shard.worker_id, shard.started_at = JobStatus.RUNNING, worker_id, claimed_at
        if job.status == JobStatus.QUEUED:
            job.status, job.started_at = JobStatus.RUNNING, claimed_at
        return job, shard, _manifest_digest(session, job)


def _claim_first_delivery(
    settings: Settings, job_id: str, shard_index: int, worker_id: str, claimed_at: datetime
) -> tuple[Job, JobShard, str] | None:
    """The common claim: the first delivery of the only shard of a job that is queued or running and not being
    cancelled. None, with nothing changed, for anything else: `claim_shard` then reads the job and decides.

    NB: this is every prediction's claim; the general one loads the job and its shards and flushes them, several
    times the cost of its round trips. What it would do in this case is what these statements do: on PostgreSQL one
    statement that is its own transaction (one round trip instead of four), elsewhere two UPDATEs in a transaction.
    """
    values = {"p_job": job_id, "p_index": shard_index, "p_worker": worker_id, "p_at": claimed_at}
    if make_url(settings.database).get_backend_name() == "postgresql":
        # NB: when the shard is not claimable so, the job's UPDATE may still have matched, and is kept: it then wrote
        # what the job already had (a job is RUNNING, with its start, once any claim was made; while it is QUEUED, its
        # only shard is claimable so), and the general claim decides as if it had not run.
        with statement_scope(settings.database) as session:
            rows, _ = _claim_in_one_statement().execute(session, values)
            if not rows:
                return None
            shard_values = {key: value for key, value in rows[0].items() if not key.startswith(_CLAIMED_JOB)}
            job_values = {
                key[len(_CLAIMED_JOB) :]: value for key, value in rows[0].items() if key.startswith(_CLAIMED_JOB)
            }
            job, shard = loaded(Job, job_values), loaded(JobShard, shard_values)
            set_committed_value(job, "shards", [shard])  # its only shard, as the job's readers expect it
            return job, shard, _manifest_digest(session, job)
    job_update, shard_update = _claim_statements()
    with session_scope(settings.database) as session:
        jobs, _ = job_update.execute(session, values)  # the job's lock, taken first as everywhere
        if not jobs:
            return None
        shards, _ = shard_update.execute(session, values)
        if not shards:
            session.rollback()  # the job's status as it was
            return None
        job, shard = loaded(Job, jobs[0]), loaded(JobShard, shards[0])
        set_committed_value(job, "shards", [shard])
        return job, shard, _manifest_digest(session, job)


_CLAIMED_JOB = "claimed_job__"  # the prefix of the job's columns in what the one-statement claim returns
_CLAIMED_AT = bindparam("p_at", type_=Job.started_at.type)  # the moment of the claim, in both statements


def _job_update() -> Update:
    """The job's side of the claim: RUNNING, started now if it was QUEUED; returns the job's row."""
    jobs = Job.__table__
    return (
        update(jobs)
        .where(
            jobs.c.id == bindparam("p_job"),
            jobs.c.shard_count == 1,
            or_(jobs.c.status == JobStatus.QUEUED, jobs.c.status == JobStatus.RUNNING),
            jobs.c.cancel_requested.is_(False),
        )
        .values(
            status=JobStatus.RUNNING,
            started_at=case((jobs.c.status == JobStatus.QUEUED, _CLAIMED_AT), else_=jobs.c.started_at),
        )
        .returning(*jobs.c)
    )


def _shard_update(job_id: ColumnElement[Any]) -> Update:
    """The shard's side of the claim, for the job whose id is `job_id`: its first delivery, taken by this worker."""
    shards = JobShard.__table__
    return (
        update(shards)
        .where(
            shards.c.job_id == job_id,
            shards.c.index == bindparam("p_index"),
            shards.c.status == JobStatus.QUEUED,
            shards.c.attempts == 0,  # a redelivery may have to be given up on (`gave_up_on`): the general claim
            shards.c.items_done == 0,
        )
        .values(status=JobStatus.RUNNING, worker_id=bindparam("p_worker"), started_at=_CLAIMED_AT, attempts=1)
    )


@functools.cache
def _claim_statements() -> tuple[DriverStatement, DriverStatement]:
    """The claim as two UPDATEs, the job's first (its lock, as everywhere), compiled once (`DriverStatement`)."""
    shard_update = _shard_update(bindparam("p_job")).returning(*JobShard.__table__.c)
    return DriverStatement(_job_update()), DriverStatement(shard_update)


@functools.cache
def _claim_in_one_statement() -> DriverStatement:
    """The claim as one UPDATE of the shard with the job's UPDATE in a WITH (PostgreSQL): the shard's row is only
    updated for a row the job's UPDATE returned, so the job's lock is taken first, as everywhere."""
    claimed_job = _job_update().cte("claimed_job")
    job_columns = (column.label(f"{_CLAIMED_JOB}{column.key}") for column in claimed_job.c)
    return DriverStatement(_shard_update(claimed_job.c.id).returning(*JobShard.__table__.c, *job_columns))


def _manifest_digest(session: Any, job: Job) -> str:
    """The SHA-256 the job's model manifest had when it was submitted ('' if its `models` row is gone)."""
    recorded = (job.parameters or {}).get("manifest_sha256")
    if recorded:
        return str(recorded)
    model = session.get(RegisteredModel, job.model_id)  # a job submitted before its parameters recorded it
    return model.manifest_sha256 if model else ""
