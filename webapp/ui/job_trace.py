"""A job's trace on its page: the data of its timeline chart, as JSON."""

from __future__ import annotations

from flask import jsonify
from werkzeug.wrappers import Response as BaseResponse

from carml.db.models import JobStatus
from carml.tracing.store import read_spans
from webapp.context import settings
from webapp.ui import timeline
from webapp.ui.jobs import load_job
from webapp.ui.pages import ui_blueprint

blueprint = ui_blueprint("ui_job_trace", __name__)

# Spans read to draw the timeline: its rows are the first of these in tree order.
SPANS_READ = 5000


@blueprint.get("/jobs/<job_id>/timeline.json")
def timeline_json(job_id: str) -> BaseResponse:
    """The rows of the job's trace timeline (null when it has no spans yet)."""
    job = load_job(job_id)
    total, spans = read_spans(settings(), job.id, SPANS_READ)
    response = jsonify({"job_id": job.id, "trace_id": job.trace_id, "timeline": timeline.timeline(spans, total)})
    response.headers["Cache-Control"] = "no-store" if not JobStatus(job.status).final else "max-age=60"
    return response
