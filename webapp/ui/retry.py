"""Retrying a job: the same request submitted again, as a new job."""

from __future__ import annotations

from carml.db.models import Job, JobKind, JobStatus, RegisteredDataset
from carml.db.session import session_scope
from carml.jobs.prediction_io import input_bytes
from carml.jobs.predictions import PredictionRequest, submit_prediction
from carml.jobs.service import (
    Enqueue,
    EvaluationRequest,
    JobRequestError,
    scenario_request_fields,
    submit_evaluation,
)
from carml.jobs.uploads import get_upload
from carml.settings import Settings
from carml.storage import ObjectNotFound, open_object_store

RETRYABLE = (JobStatus.FAILED, JobStatus.TIMED_OUT)


def _require_same_upload(settings: Settings, job: Job) -> None:
    """An uploaded dataset may have been removed since the job ran and its name taken by another user's upload:
    a retry runs on the very upload the job ran on, still the owner's or shared, or not at all."""
    upload = get_upload(settings, job.dataset_name or "")
    if upload is None:
        return  # a catalog dataset; or gone, which the submission reports
    with session_scope(settings.database) as session:
        original = session.get(RegisteredDataset, job.dataset_id) if job.dataset_id is not None else None
        digest = original.digest if original is not None else None
    if digest != upload["digest"] or not (upload["shared"] or upload["owner"] == job.owner):
        raise JobRequestError(
            f"the dataset {job.dataset_name!r} was removed or replaced since this job ran; submit a new evaluation",
            field="dataset",
            status=409,
        )


def retry_job(settings: Settings, job: Job, enqueue: Enqueue) -> str:
    """Submit `job`'s parameters again (its stored inputs, for a prediction); returns the new job's id."""
    if job.status not in RETRYABLE:
        raise JobRequestError(f"only failed jobs can be retried; job {job.id} is {job.status}", field="job_id")
    parameters = job.parameters or {}
    if job.kind == JobKind.EVALUATE:
        _require_same_upload(settings, job)
        request = EvaluationRequest(
            model=job.model_name,
            dataset=job.dataset_name or "",
            framework=job.framework,
            hardware_tag=job.hardware_tag,
            batch_size=job.batch_size,
            limit=parameters.get("limit"),
            shards=job.shard_count,
            warmup_batches=parameters.get("warmup_batches", 1),
            owner=job.owner,
            trace_level=parameters.get("trace_level"),
            **scenario_request_fields(job),
        )
        return submit_evaluation(settings, request, enqueue)
    store = open_object_store(settings)
    try:
        inputs = [(entry["name"], input_bytes(store, entry)) for entry in parameters.get("inputs", [])]
    except ObjectNotFound:
        raise JobRequestError(f"the inputs of job {job.id} are no longer stored; submit them again") from None
    prediction = PredictionRequest(
        model=job.model_name,
        inputs=inputs,
        framework=job.framework,
        hardware_tag=job.hardware_tag,
        top_k=parameters.get("top_k"),
        owner=job.owner,
        trace_level=parameters.get("trace_level"),
    )
    return submit_prediction(settings, prediction, enqueue)
