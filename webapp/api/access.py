"""Reading what the caller owns: someone else's job or comparison answers 404, as if it did not exist."""

from __future__ import annotations

from typing import Any

from carml.accounts.access import may_read
from carml.db.models import Job
from carml.jobs.comparisons import get_comparison
from carml.jobs.service import JobRequestError, get_job
from webapp.callers import current_caller
from webapp.context import settings


def owned_job(job_id: str) -> Job:
    """The job, if the caller may read it; otherwise the very 404 an unknown id gets (existence is not leaked)."""
    job = get_job(settings(), job_id)
    if not may_read(current_caller(), job.owner):
        raise JobRequestError(f"no job {job_id!r}", field="job_id", status=404)
    return job


def owned_comparison(comparison_id: str) -> dict[str, Any]:
    """The comparison's summary, if the caller may read it; otherwise the 404 an unknown id gets."""
    summary = get_comparison(settings(), comparison_id)
    if not may_read(current_caller(), summary.get("owner")):
        raise JobRequestError(f"no comparison {comparison_id!r}", field="comparison_id", status=404)
    return summary
