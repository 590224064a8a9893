"""GET /api/v1/jobs/<id>/trace: a job's trace as the database holds it (the same spans OTLP received)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from carml.tracing.store import read_spans
from webapp.api.access import owned_job
from webapp.api.params import MAX_INT, integer_text, job_id_param, single_values
from webapp.context import settings

blueprint = Blueprint("traces", __name__)

DEFAULT_LIMIT = 10_000
MAX_LIMIT = 100_000


@blueprint.get("/jobs/<job_id>/trace")
def get_trace(job_id: str) -> dict[str, Any]:
    """The job's spans in the order they started, a page at a time; none for jobs traced at level `none`."""
    query = single_values(request.args, ("limit", "offset"))
    limit = integer_text(query, "limit", minimum=1, maximum=MAX_LIMIT) or DEFAULT_LIMIT
    offset = integer_text(query, "offset", minimum=0, maximum=MAX_INT) or 0
    job = owned_job(job_id_param(job_id))
    total, spans = read_spans(settings(), job.id, limit, offset)
    return {
        "job_id": job.id,
        "trace_id": job.trace_id,
        "trace_level": (job.parameters or {}).get("trace_level"),
        "total": total,
        "limit": limit,
        "offset": offset,
        "spans": spans,
    }
