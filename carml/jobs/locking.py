"""Job rows locked for the rest of a transaction, and the rule that settles a job from its shards."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from carml.db.base import utcnow
from carml.db.models import Job, JobShard, JobStatus


def lock_job(session: Any, job_id: str) -> None:
    """Write-lock the job's row until the transaction ends (a row lock on PostgreSQL, the write lock on SQLite).

    NB: a no-op UPDATE takes the lock on both backends. SELECT ... FOR UPDATE is ignored by SQLite, whose
    driver starts the transaction only at the first write, so two shards could both read stale counts.
    """
    session.execute(
        update(Job).where(Job.id == job_id).values(cancel_requested=Job.cancel_requested),
        execution_options={"synchronize_session": False},
    )


def locked_job(session: Any, job_id: str) -> Job | None:
    """The job with its shards, write-locked until the transaction ends (see `lock_job`).

    On PostgreSQL, SELECT ... FOR NO KEY UPDATE takes the same row lock as `lock_job`'s UPDATE (so rows that merely
    reference the job, like its spans, can still be inserted meanwhile) and reads the job as the lock found it.
    NB: the shards are read by a second statement, started once the lock is held: read in the same statement (a
    join), they would be the rows as they were before it waited for the lock, and two shards ending at once would
    each see the other still running, so that neither merged the job.
    """
    query = select(Job).where(Job.id == job_id).options(selectinload(Job.shards))
    query = query.execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        return session.scalars(query.with_for_update(key_share=True)).first()
    lock_job(session, job_id)
    return session.scalars(query).first()


def locked_shard(session: Any, job_id: str, shard_index: int) -> JobShard | None:
    """A shard row, write-locked until the transaction ends (the same no-op UPDATE as `locked_job`)."""
    where = (JobShard.job_id == job_id, JobShard.index == shard_index)
    session.execute(
        update(JobShard).where(*where).values(attempts=JobShard.attempts),
        execution_options={"synchronize_session": False},
    )
    return session.scalar(select(JobShard).where(*where).execution_options(populate_existing=True))


def owns_shard(shard: JobShard | None, attempt: int | None) -> bool:
    """Whether the copy of a shard that claimed it as `attempt` may still record its outcome: the shard is
    running, and no later delivery has claimed it since (None: the caller does not know its attempt)."""
    if shard is None or JobStatus(shard.status).final:
        return False
    return attempt is None or shard.attempts == attempt


def settle(job: Job) -> bool:
    """Bring a locked job's status in line with its shards. Returns True when it is ready to be merged.

    A failed, timed-out or cancelled shard ends the job with that status; a cancel request ends it once
    no shard is running; the job is merged when every shard succeeded.
    """
    statuses = [JobStatus(s.status) for s in job.shards]
    job.shards_finished = statuses.count(JobStatus.SUCCEEDED)
    if JobStatus(job.status).final:
        return False
    running = JobStatus.RUNNING in statuses
    if job.cancel_requested and not running:
        for shard in job.shards:
            if shard.status == JobStatus.QUEUED:
                shard.status, shard.finished_at = JobStatus.CANCELLED, utcnow()
        job.status, job.finished_at = JobStatus.CANCELLED, utcnow()
        return False
    broken = next((s for s in job.shards if s.status in (JobStatus.FAILED, JobStatus.TIMED_OUT)), None)
    if broken is not None:
        job.status, job.error, job.finished_at = broken.status, broken.error, utcnow()
        return False
    return all(status == JobStatus.SUCCEEDED for status in statuses)
