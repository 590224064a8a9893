"""Retrying a job: the same request submitted again, as a new job."""

from __future__ import annotations

from carml.db.models import Job, JobKind, JobStatus
from carml.jobs.predictions import PredictionRequest, submit_prediction
from carml.jobs.service import (
    Enqueue,
    EvaluationRequest,
    JobRequestError,
    scenario_request_fields,
    submit_evaluation,
)
from carml.settings import Settings
from carml.storage import ObjectNotFound, open_object_store

RETRYABLE = (JobStatus.FAILED, JobStatus.TIMED_OUT)


def retry_job(settings: Settings, job: Job, enqueue: Enqueue) -> str:
    """Submit `job`'s parameters again (its stored inputs, for a prediction); returns the new job's id."""
    if job.status not in RETRYABLE:
        raise JobRequestError(f"only failed jobs can be retried; job {job.id} is {job.status}", field="job_id")
    parameters = job.parameters or {}
    if job.kind == JobKind.EVALUATE:
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
        inputs = [(entry["name"], store.get_bytes(entry["key"])) for entry in parameters.get("inputs", [])]
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
