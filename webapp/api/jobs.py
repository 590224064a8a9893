"""POST/GET /api/v1/jobs, GET /api/v1/jobs/<id>, POST /api/v1/jobs/<id>/cancel."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request, url_for

from carml.accounts.access import list_owner
from carml.db.models import JobStatus
from carml.jobs.job_events import EndListener, ended_job, wait_for_job_end, waiting_requests
from carml.jobs.predictions import PredictionRequest, submit_prediction
from carml.jobs.service import MAX_SHARDS, Enqueue, EvaluationRequest, cancel_job, get_job, list_jobs, submit_evaluation
from carml.jobs.summary import job_summary
from webapp.api.access import owned_job
from webapp.api.datasets import find_dataset
from webapp.api.errors import ApiError
from webapp.api.params import (
    HARDWARE_TAG,
    MAX_INT,
    NAME,
    confusion_text,
    file_name,
    integer,
    integer_text,
    job_id_param,
    json_object,
    name,
    reject_unknown,
    single_values,
    text,
)
from webapp.api.scenario_params import SCENARIO_FIELDS, scenario_fields
from webapp.callers import current_caller
from webapp.context import enqueue, settings

blueprint = Blueprint("jobs", __name__)

MAX_BATCH_SIZE = 4096
MAX_TOP_K = 1000
MAX_WAIT_S = 60  # what a request may ask for; the server waits at most CARML_API_MAX_WAIT_S of it
EVALUATE_FIELDS = (
    *("kind", "model", "framework", "dataset", "hardware_tag", "batch_size", "limit", "shards"),
    "trace_level",
    "wait",
    *SCENARIO_FIELDS,
)
PREDICT_FIELDS = ("kind", "model", "framework", "hardware_tag", "top_k", "wait")
LIST_FILTERS = ("status", "model", "hardware_tag", "owner", "limit", "offset")
FINAL_STATUSES = frozenset(status.value for status in JobStatus if status.final)


def _kind(values: dict[str, Any], expected: str, other: str) -> None:
    kind = text(values, "kind", required=True, max_length=32)
    if kind == other:
        how = "as JSON" if other == "evaluate" else "as multipart/form-data with one or more files"
        raise ApiError(f"send {other} jobs {how}", field="kind")
    if kind != expected:
        raise ApiError(f"kind must be 'evaluate' (JSON) or 'predict' (multipart/form-data), got {kind!r}", field="kind")


def _summary_once_ended(
    job_id: str, wait_s: int | None, confusion: str, listener: EndListener | None = None
) -> dict[str, Any]:
    """The job's summary once it has ended, or once `wait_s` (capped by CARML_API_MAX_WAIT_S) has passed; at once
    while this process already has CARML_API_MAX_WAITING requests waiting. `confusion`: see `confusion_text`;
    `listener`: what listened for the job's end since it was enqueued, if anything did (`_enqueuer`)."""
    limit = min(wait_s or 0, settings().api_max_wait_s)
    found: list[dict[str, Any]] = []

    def has_ended() -> bool:
        ended, job = ended_job(settings(), job_id)
        found[:] = [job_summary(job, confusion)] if ended and job is not None else []
        return ended

    def announced(summary: dict[str, Any]) -> bool:
        """The summary the job's end was announced with: as the read would find it, without the read."""
        if summary.get("id") != job_id or summary.get("status") not in FINAL_STATUSES:
            return False
        if confusion != "matrix" and "confusion_matrix" in (summary.get("result") or {}):
            return False  # announced as the default shows it: read it as asked
        found[:] = [summary]
        return True

    if limit > 0:
        with waiting_requests.slot(settings().api_max_waiting) as may_wait:
            if may_wait and wait_for_job_end(settings(), job_id, limit, has_ended, announced, listener) and found:
                return found[0]  # from the read that saw the end, or the announcement: no second read
    return job_summary(get_job(settings(), job_id), confusion)


def _enqueuer(wait_s: int | None, listener: EndListener) -> Enqueue:
    """The app's enqueuer; for a request that is to wait for its job, one that listens for the job's end first, so
    that the wait need not read the job before it first sleeps."""
    if wait_s and settings().api_max_wait_s > 0:
        return listener.enqueueing(enqueue())
    return enqueue()


def _submit_evaluation(listener: EndListener) -> tuple[str, int | None]:
    body = json_object()
    reject_unknown(body, EVALUATE_FIELDS)
    _kind(body, "evaluate", "predict")
    model = name(body, "model", required=True) or ""
    framework = name(body, "framework")
    dataset = name(body, "dataset", required=True) or ""
    hardware_tag = text(body, "hardware_tag", default="cpu", pattern=HARDWARE_TAG, max_length=64) or "cpu"
    batch_size = integer(body, "batch_size", default=32, minimum=1, maximum=MAX_BATCH_SIZE) or 32
    limit = integer(body, "limit", minimum=1)
    shards = integer(body, "shards", default=1, minimum=1, maximum=MAX_SHARDS) or 1
    # Only names the server publishes: `dataset` must not reach files on the server by path.
    if find_dataset(dataset) is None:
        raise ApiError(f"unknown dataset {dataset!r}; see GET /api/v1/datasets", status=404, field="dataset")
    trace_level = text(body, "trace_level", max_length=32)  # checked by the service: none, stage or framework
    wait_s = integer(body, "wait", minimum=0, maximum=MAX_WAIT_S)
    request_ = EvaluationRequest(
        model,
        dataset,
        framework,
        hardware_tag,
        batch_size,
        limit,
        shards,
        owner=current_caller().name,
        trace_level=trace_level,
        **scenario_fields(body),  # a performance scenario and its options (docs/scenarios.md)
    )
    return submit_evaluation(settings(), request_, _enqueuer(wait_s, listener)), wait_s


def _submit_prediction(listener: EndListener) -> tuple[str, int | None]:
    form = single_values(request.form, PREDICT_FIELDS)
    reject_unknown(request.files.keys(), ("files",))
    _kind(form, "predict", "evaluate")
    files = [f for f in request.files.getlist("files") if f.filename]
    if not files:
        raise ApiError("give one or more input files in the field 'files'", field="files")
    request_ = PredictionRequest(
        model=name(form, "model", required=True) or "",
        inputs=[(file_name(f.filename, "input"), f.read()) for f in files],
        framework=name(form, "framework"),
        hardware_tag=text(form, "hardware_tag", default="cpu", pattern=HARDWARE_TAG, max_length=64) or "cpu",
        top_k=integer_text(form, "top_k", minimum=1, maximum=MAX_TOP_K),
        owner=current_caller().name,
    )
    wait_s = integer_text(form, "wait", minimum=0, maximum=MAX_WAIT_S)
    return submit_prediction(settings(), request_, _enqueuer(wait_s, listener)), wait_s


@blueprint.post("/jobs")
def create_job() -> tuple[dict[str, Any], int, dict[str, str]]:
    """An evaluation (JSON body) or a prediction (multipart with files); 201 with the job, as it is when it ended if
    the request asked to `wait` (seconds) and it ended within them. The query string may say how to show the
    result's confusion matrix (`confusion`)."""
    confusion = confusion_text(single_values(request.args, ("confusion",)))
    with EndListener(settings()) as listener:
        if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
            job_id, wait_s = _submit_prediction(listener)  # a urlencoded form has no files: it gets the 400 saying so
        elif request.is_json:
            job_id, wait_s = _submit_evaluation(listener)
        else:
            raise ApiError("send evaluate jobs as application/json, predict jobs as multipart/form-data", status=415)
        summary = _summary_once_ended(job_id, wait_s, confusion, listener)
    return summary, 201, {"Location": url_for("jobs.get_job_route", job_id=job_id)}


@blueprint.get("/jobs")
def list_jobs_route() -> dict[str, Any]:
    """The caller's jobs (an admin's: everyone's, or one owner's) newest first, filtered by status, model and
    hardware tag; paged by limit and offset."""
    query = single_values(request.args, (*LIST_FILTERS, "confusion"))
    status = query.get("status")
    if status is not None and status not in {s.value for s in JobStatus}:
        raise ApiError(f"status must be one of {', '.join(s.value for s in JobStatus)}", field="status")
    limit = integer_text(query, "limit", minimum=1, maximum=500) or 50
    offset = integer_text(query, "offset", minimum=0, maximum=MAX_INT) or 0
    jobs = list_jobs(
        settings(),
        status=status,
        # Filters have the shape of what they match: anything else is a 400 naming it, not an empty page.
        model=text(query, "model", pattern=NAME, max_length=100),
        hardware_tag=text(query, "hardware_tag", pattern=HARDWARE_TAG, max_length=64),
        owner=list_owner(current_caller(), text(query, "owner", pattern=NAME, max_length=100)),
        limit=limit,
        offset=offset,
    )
    confusion = confusion_text(query)
    return {"jobs": [job_summary(j, confusion) for j in jobs], "limit": limit, "offset": offset}


@blueprint.get("/jobs/<job_id>")
def get_job_route(job_id: str) -> dict[str, Any]:
    """The job now, or with `wait` (seconds) once it has ended, if it ends within them (a long poll)."""
    query = single_values(request.args, ("wait", "confusion"))
    wait_s = integer_text(query, "wait", minimum=0, maximum=MAX_WAIT_S)
    confusion = confusion_text(query)
    job = owned_job(job_id_param(job_id))  # the caller's own job (or any, for an admin), else a 404
    if not wait_s or JobStatus(job.status).final:
        return job_summary(job, confusion)
    return _summary_once_ended(job.id, wait_s, confusion)


@blueprint.post("/jobs/<job_id>/cancel")
def cancel_job_route(job_id: str) -> tuple[dict[str, Any], int]:
    """202: queued work is cancelled at once, running shards stop after their current batch; 409 if final."""
    return cancel_job(settings(), owned_job(job_id_param(job_id)).id), 202
