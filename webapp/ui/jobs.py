"""Jobs (`/jobs`): the paginated, filtered list; a job's page; cancelling and retrying from either."""

from __future__ import annotations

import re

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from carml.accounts.access import list_owner, may_read
from carml.db.models import Job, JobKind, JobStatus
from carml.jobs.service import JobRequestError, cancel_job, get_job
from carml.publishing import service_catalog
from webapp.api.params import HARDWARE_TAG, NAME
from webapp.callers import current_caller
from webapp.context import enqueue, settings
from webapp.ui import queries
from webapp.ui.forms import Form, live_tags, model_choices
from webapp.ui.job_view import evaluation_view, prediction_view
from webapp.ui.pages import ui_blueprint
from webapp.ui.retry import RETRYABLE, retry_job
from webapp.ui.timeline import trace_view

blueprint = ui_blueprint("ui_jobs", __name__)

PER_PAGE = 25
MAX_PER_PAGE = 100
FILTERS = ("status", "model", "hardware_tag", "page", "per_page")
_JOB_ID = re.compile(r"^[0-9a-fA-F-]{1,36}$")  # job ids are UUIDs
STATUSES = tuple(s.value for s in JobStatus)


def load_job(job_id: str) -> Job:
    """The job with its shards and result; a 404 page when there is none, or when it is someone else's."""
    if not _JOB_ID.fullmatch(job_id):
        abort(404, f"There is no job {job_id[:40]!r}.")
    try:
        job = get_job(settings(), job_id)
    except JobRequestError as exc:
        abort(exc.status, str(exc))
    if not may_read(current_caller(), job.owner):
        abort(404, f"no job {job_id!r}")  # the very message of an unknown id: existence is not leaked
    return job


def _back(job_id: str) -> str:
    """Where a cancel or retry button returns to: the page it was on (a path on this site), else the job."""
    target = request.form.get("next", "")
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("ui_jobs.job_page", job_id=job_id)


@blueprint.get("/jobs")
def jobs_page() -> tuple[str, int]:
    """Jobs newest first, filtered by status, model and hardware tag, a page at a time."""
    form = Form.of(request.args, FILTERS)
    status = form.values["status"] or None
    if status is not None and status not in STATUSES:
        form.error("status", f"status must be one of {', '.join(STATUSES)}")
    model = form.text("model", NAME, what="model name")
    tag = form.text("hardware_tag", HARDWARE_TAG, what="hardware tag")
    page = form.whole_number("page", 1, 10**6, default=1) or 1
    per_page = form.whole_number("per_page", 1, MAX_PER_PAGE, default=PER_PAGE) or PER_PAGE
    jobs: list[Job] = []
    total = 0
    if not form.errors:
        owner = list_owner(current_caller(), None)  # the user's own jobs; an admin's: everyone's
        filters = queries.JobFilters(status=status, model=model, hardware_tag=tag, owner=owner)
        found, total = queries.jobs_page(settings(), filters, per_page, (page - 1) * per_page)
        jobs = list(found)
    return (
        render_template(
            "jobs.html",
            form=form,
            jobs=jobs,
            total=total,
            page=page,
            per_page=per_page,
            pages=max(1, -(-total // per_page)),
            statuses=STATUSES,
            models=[c.name for c in model_choices(service_catalog(settings()))],
            tags=sorted(set(live_tags(settings())) | {j.hardware_tag for j in jobs}),
            retryable=RETRYABLE,
        ),
        400 if form.errors else 200,
    )


@blueprint.get("/jobs/<job_id>")
def job_page(job_id: str) -> str:
    """A job: status and progress while it runs; its result, charts and downloads once it is done."""
    job = load_job(job_id)
    workers = queries.workers_by_id(settings(), [s.worker_id for s in job.shards if s.worker_id])
    evaluation = evaluation_view(settings(), job) if job.kind == JobKind.EVALUATE and job.result else None
    predictions = prediction_view(settings(), job) if job.kind == JobKind.PREDICT and job.result else None
    trace = trace_view(settings(), job)
    return render_template(
        "job.html",
        job=job,
        workers=workers,
        evaluation=evaluation,
        predictions=predictions,
        trace=trace,
        retryable=RETRYABLE,
    )


@blueprint.post("/jobs/<job_id>/cancel")
def cancel(job_id: str) -> BaseResponse:
    """Ask the job to stop: queued work ends at once, running shards after their current batch."""
    job = load_job(job_id)
    try:
        summary = cancel_job(settings(), job.id)
    except JobRequestError as exc:
        flash(str(exc), "error")
    else:
        ending = "cancelled" if summary["status"] == JobStatus.CANCELLED else "stopping after the current batch"
        flash(f"Job {job.id[:8]} {ending}.", "success")
    return redirect(_back(job.id), 303)


@blueprint.post("/jobs/<job_id>/retry")
def retry(job_id: str) -> BaseResponse:
    """Submit a failed job's parameters again as a new job, and go to it."""
    job = load_job(job_id)
    try:
        new_id = retry_job(settings(), job, enqueue())
    except JobRequestError as exc:
        flash(f"Could not retry job {job.id[:8]}: {exc}", "error")
        return redirect(_back(job.id), 303)
    flash(f"Job {job.id[:8]} submitted again as {new_id[:8]}.", "success")
    return redirect(url_for("ui_jobs.job_page", job_id=new_id), 303)
