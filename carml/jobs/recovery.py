"""Shards whose worker died: queued again, or given up on once they have failed too often.

A worker that dies mid-shard (OOM, SIGKILL, a lost machine) stops heartbeating. Brokers redeliver
unacknowledged tasks only after a long visibility timeout, or never (the local filesystem queue), so
live workers look for such shards themselves.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from carml.db.base import utcnow
from carml.db.models import Job, JobShard, JobStatus, Worker
from carml.db.session import session_scope
from carml.jobs.locking import locked_job, settle
from carml.jobs.service import Enqueue
from carml.settings import Settings

#: A shard started this many times without finishing ends its job as failed.
MAX_ATTEMPTS = 3


def gave_up_on(job: Job, shard: JobShard) -> bool:
    """Fail a shard (and so its job) that was started `MAX_ATTEMPTS` times without finishing; True if it was.

    Called on the locked job, before the shard is queued or claimed once more.
    """
    if shard.attempts < MAX_ATTEMPTS:
        return False
    shard.status, shard.finished_at = JobStatus.FAILED, utcnow()
    shard.error = f"its worker died {shard.attempts} times while running it (out of memory?)"
    settle(job)
    return True


def requeue_lost_shards(settings: Settings, enqueue: Enqueue) -> list[tuple[str, int]]:
    """Queue again every running shard whose worker stopped heartbeating; returns (job id, shard index) pairs."""
    silent_since = utcnow() - timedelta(seconds=settings.worker_alive_s)
    with session_scope(settings.database) as session:
        lost = session.execute(
            select(JobShard.job_id, JobShard.index)
            .join(Worker, Worker.id == JobShard.worker_id)
            .where(JobShard.status == JobStatus.RUNNING, Worker.last_heartbeat < silent_since)
        ).all()
    requeued = []
    for job_id, index in lost:
        with session_scope(settings.database) as session:
            job = locked_job(session, job_id)
            shard = next(s for s in job.shards if s.index == index)
            worker = session.get(Worker, shard.worker_id) if shard.worker_id else None
            if shard.status != JobStatus.RUNNING or (worker and worker.last_heartbeat >= silent_since):
                continue  # another worker got here first, or the worker came back
            if gave_up_on(job, shard):
                continue
            job.progress_done -= shard.items_done
            shard.items_done, shard.status, shard.worker_id = 0, JobStatus.QUEUED, None
            tag = job.hardware_tag
        enqueue(job_id, index, tag)
        requeued.append((job_id, index))
    return requeued
