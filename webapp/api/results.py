"""GET /api/v1/results/<job_id> (the merged result) and /outputs (every per-item prediction, as JSON Lines)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy import select

from carml.db.models import Job, JobKind, JobStatus, OutputObject
from carml.db.session import session_scope
from carml.jobs.prediction_io import answer_lines, prediction_answers
from carml.jobs.summary import job_summary
from carml.storage import ObjectStore, open_object_store
from webapp.api.access import owned_job
from webapp.api.errors import ApiError
from webapp.api.params import confusion_text, job_id_param, single_values
from webapp.context import settings

blueprint = Blueprint("results", __name__)

_CHUNK = 256 * 1024


def _not_yet(job: Job, what: str) -> ApiError:
    why = f": {job.error}" if job.error else ""
    return ApiError(f"job {job.id} has no {what}: it is {job.status}{why}", status=404, field="job_id")


@blueprint.get("/results/<job_id>")
def get_result(job_id: str) -> dict[str, Any]:
    """The job's merged result (accuracy, latency, throughput, reproducibility record)."""
    confusion = confusion_text(single_values(request.args, ("confusion",)))
    job = owned_job(job_id_param(job_id))
    summary = job_summary(job, confusion)
    if "result" not in summary:
        raise _not_yet(job, "result yet")
    return {"job_id": job.id, "kind": job.kind, "status": job.status, **summary["result"]}


def _concatenated(store: ObjectStore, keys: list[str]) -> Iterator[bytes]:
    for key in keys:
        with store.open_stream(key) as stream:
            while chunk := stream.read(_CHUNK):
                yield chunk


@blueprint.get("/results/<job_id>/outputs")
def get_outputs(job_id: str) -> Response:
    """Every shard's predictions in shard order, streamed as one JSON Lines file."""
    single_values(request.args, ())
    job = owned_job(job_id_param(job_id))
    if job.status != JobStatus.SUCCEEDED:
        raise _not_yet(job, "outputs yet" if not JobStatus(job.status).final else "outputs")
    with session_scope(settings().database) as session:
        query = select(OutputObject.key).where(OutputObject.job_id == job.id).order_by(OutputObject.shard_index)
        keys = list(session.scalars(query))
    headers = {"Content-Disposition": f'attachment; filename="{job.id}.jsonl"'}
    if not keys and job.kind == JobKind.PREDICT:
        # A prediction keeps its answers in its result row, not as an object (carml.jobs.prediction_io).
        return Response(answer_lines(prediction_answers(job.result)), mimetype="application/x-ndjson", headers=headers)
    store = open_object_store(settings())
    # Checked before answering: a missing object is still a JSON error then, not a stream cut short.
    missing = next((key for key in keys if not store.exists(key)), None)
    if missing is not None:
        raise ApiError(f"the outputs of job {job.id} are missing from the object store ({missing})", status=404)
    return Response(_concatenated(store, keys), mimetype="application/x-ndjson", headers=headers)
