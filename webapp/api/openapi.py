"""GET /api/openapi.json: the OpenAPI 3.1 document of the REST API, built in code next to the routes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from carml.db.models import JobStatus
from carml.evaluation.partial import CONFUSION_VIEWS
from webapp.api import API_PREFIX
from webapp.api.openapi_models import model_publishing_schemas, publish_operation, remove_operation
from webapp.api.openapi_reports import report_paths, report_schemas
from webapp.api.openapi_schemas import INTEGER, STRING, WAIT, Schema, component_schemas, ref
from webapp.api.openapi_security import secure
from webapp.api.openapi_traces import trace_paths, trace_schemas

blueprint = Blueprint("openapi", __name__)

_ERRORS = {
    "400": "The request is malformed; `field` names the field at fault.",
    "404": "No such model, dataset, job, result or report.",
    "405": "The method is not allowed on this path.",
    "409": "The request conflicts with the current state (e.g. no live worker for the hardware tag).",
    "413": "The request body is larger than the upload limit.",
    "415": "The body has the wrong content type.",
    "503": "The database or object store is unavailable or out of date.",
}


def _json(schema: Schema, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _responses(ok: str, schema: Schema, description: str, *errors: str, **headers: Any) -> dict[str, Any]:
    success = _json(schema, description)
    if headers:
        success["headers"] = headers
    return {ok: success, **{code: {"$ref": f"#/components/responses/E{code}"} for code in ("400", *errors, "503")}}


def _param(name: str, where: str, schema: Schema, description: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "schema": schema,
        "description": description,
    }


_LOCATION = {"Location": {"description": "Where the new resource is.", "schema": STRING}}
_JOB_ID = _param("job_id", "path", STRING, "The job's id.")
_NAME = _param("name", "path", STRING, "The name.")
_CONFUSION = _param(
    "confusion",
    "query",
    {"enum": list(CONFUSION_VIEWS), "default": "matrix"},
    "How an evaluation's confusion matrix is shown: `matrix`, in full as `confusion_matrix` (n x n); `cells`, as "
    '`confusion`, {"classes": n, "cells": [[true, predicted, count], ...]} for its non-zero cells (compact for '
    "many classes); `none`, left out.",
)


def _paths() -> dict[str, Any]:
    job_filters = [
        _param(
            "status",
            "query",
            {"enum": [s.value for s in JobStatus]},
            "Only jobs with this status.",
        ),
        _param("model", "query", STRING, "Only jobs of this model."),
        _param("hardware_tag", "query", STRING, "Only jobs routed to this hardware tag."),
        _param("owner", "query", STRING, "Only jobs of this owner."),
        _param("limit", "query", {**INTEGER, "minimum": 1, "maximum": 500, "default": 50}, "Page size."),
        _param("offset", "query", {**INTEGER, "minimum": 0, "default": 0}, "Jobs to skip."),
        _CONFUSION,
    ]
    return {
        "/health": {
            "get": {
                "summary": "Whether the database is reachable and at the schema this CarML needs",
                "operationId": "health",
                "responses": {
                    **_responses("200", ref("Health"), "Healthy."),
                    "503": _json({"oneOf": [ref("Health"), ref("Error")]}, "Schema out of date, or database down."),
                },
            }
        },
        "/models": {
            "get": {
                "summary": "List the model catalog",
                "operationId": "listModels",
                "parameters": [_param("all", "query", {"type": "boolean", "default": False}, "Include hidden models.")],
                "responses": _responses("200", ref("ModelList"), "Models by name, then framework."),
            },
            "post": publish_operation(_LOCATION["Location"]),
        },
        "/models/{name}": {
            "get": {
                "summary": "One model: an entry per framework, each with its full manifest",
                "operationId": "getModel",
                "parameters": [_NAME],
                "responses": _responses("200", ref("ModelDetail"), "The model.", "404"),
            },
            "delete": remove_operation(_NAME),
        },
        "/datasets": {
            "get": {
                "summary": "List catalog and uploaded datasets",
                "operationId": "listDatasets",
                "responses": _responses("200", ref("DatasetList"), "Catalog datasets, then uploads."),
            },
            "post": {
                "summary": "Upload a dataset: checked with the dataset readers, then stored and registered",
                "operationId": "uploadDataset",
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": ref("DatasetUpload")}}},
                "responses": _responses(
                    "201",
                    ref("UploadReport"),
                    "Stored; what was read.",
                    "409",
                    "413",
                    "415",
                    Location=_LOCATION["Location"],
                ),
            },
        },
        "/datasets/{name}": {
            "get": {
                "summary": "One catalog dataset (with its manifest) or uploaded dataset",
                "operationId": "getDataset",
                "parameters": [_NAME],
                "responses": _responses("200", ref("DatasetDetail"), "The dataset.", "404"),
            },
            "delete": {
                "summary": "Remove an upload: a private one by its owner, a shared one by a publisher",
                "operationId": "deleteDataset",
                "parameters": [_NAME],
                "responses": {
                    "204": {"description": "Removed: its rows and its stored file."},
                    **{code: {"$ref": f"#/components/responses/E{code}"} for code in ("400", "404", "409", "503")},
                },
            },
        },
        "/jobs": {
            "get": {
                "summary": "List jobs, newest first",
                "operationId": "listJobs",
                "parameters": job_filters,
                "responses": _responses("200", ref("JobList"), "A page of jobs."),
            },
            "post": {
                "summary": "Submit an evaluation (JSON) or a prediction (multipart with files)",
                "operationId": "createJob",
                "parameters": [_CONFUSION],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": ref("EvaluateRequest")},
                        "multipart/form-data": {"schema": ref("PredictRequest")},
                    },
                },
                "responses": _responses(
                    "201",
                    ref("Job"),
                    "Queued; with `wait`, the job as it is when it ended or the wait ran out.",
                    "404",
                    "409",
                    "413",
                    "415",
                    Location=_LOCATION["Location"],
                ),
            },
        },
        "/jobs/{job_id}": {
            "get": {
                "summary": "One job: status, progress, and its result once there is one",
                "operationId": "getJob",
                "parameters": [_JOB_ID, _param("wait", "query", WAIT, WAIT["description"]), _CONFUSION],
                "responses": _responses("200", ref("Job"), "The job.", "404"),
            }
        },
        "/jobs/{job_id}/cancel": {
            "post": {
                "summary": "Cancel a job (queued: at once; running: after the current batch)",
                "operationId": "cancelJob",
                "parameters": [_JOB_ID],
                "responses": _responses("202", ref("Job"), "Cancelled or cancelling.", "404", "409"),
            }
        },
        "/comparisons": {
            "get": {
                "summary": "List comparisons, newest first, with how many legs have finished",
                "operationId": "listComparisons",
                "parameters": [
                    _param("owner", "query", STRING, "Only comparisons of this owner."),
                    _param("limit", "query", {**INTEGER, "minimum": 1, "maximum": 500}, "Page size (50)."),
                    _param("offset", "query", {**INTEGER, "minimum": 0}, "Comparisons to skip."),
                ],
                "responses": _responses("200", ref("ComparisonList"), "A page of comparisons."),
            },
            "post": {
                "summary": "Run the same dataset over several hardware tags, batch sizes, frameworks or models",
                "operationId": "createComparison",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("ComparisonRequest")}},
                },
                "responses": _responses(
                    "201", ref("Comparison"), "Every leg queued.", "404", "409", "415", Location=_LOCATION["Location"]
                ),
            },
        },
        "/comparisons/{comparison_id}": {
            "get": {
                "summary": "The legs side by side, with partial results while they run",
                "operationId": "getComparison",
                "parameters": [
                    _param("comparison_id", "path", STRING, "The comparison's id."),
                    _param("format", "query", {"enum": ["json", "csv"]}, "csv: the legs as a CSV table."),
                ],
                "responses": {
                    **_responses("200", ref("Comparison"), "The comparison.", "404"),
                    "200": {
                        "description": "The comparison (JSON), or its legs as CSV with format=csv.",
                        "content": {
                            "application/json": {"schema": ref("Comparison")},
                            "text/csv": {"schema": STRING},
                        },
                    },
                },
            }
        },
        "/workers": {
            "get": {
                "summary": "Workers, their hardware and whether they are alive",
                "operationId": "listWorkers",
                "parameters": [
                    _param("alive", "query", {"type": "boolean"}, "Only live (true) or gone (false) workers.")
                ],
                "responses": _responses("200", ref("WorkerList"), "Workers by hardware tag."),
            }
        },
        "/results/{job_id}": {
            "get": {
                "summary": "A finished job's result",
                "operationId": "getResult",
                "parameters": [_JOB_ID, _CONFUSION],
                "responses": _responses("200", ref("JobResult"), "The result.", "404"),
            }
        },
        "/results/{job_id}/outputs": {
            "get": {
                "summary": "Every per-item prediction of a succeeded job, as one JSON Lines download",
                "operationId": "getOutputs",
                "parameters": [_JOB_ID],
                "responses": {
                    "200": {
                        "description": "One JSON object per line, shards in order.",
                        "headers": {
                            "Content-Disposition": {"schema": STRING, "description": "attachment; <job_id>.jsonl"}
                        },
                        "content": {"application/x-ndjson": {"schema": STRING}},
                    },
                    **{code: {"$ref": f"#/components/responses/E{code}"} for code in ("400", "404", "503")},
                },
            }
        },
    }


def openapi_document() -> dict[str, Any]:
    """The whole document; paths are relative to the server URL /api/v1."""
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "CarML API",
            "version": "1.0.0",
            "description": "Evaluate and run ML models across frameworks and hardware through a job queue. "
            "Every error has the Error shape.",
        },
        "servers": [{"url": API_PREFIX}],
        "paths": {**_paths(), **report_paths(), **trace_paths()},
        "components": {
            "schemas": {**component_schemas(), **model_publishing_schemas(), **report_schemas(), **trace_schemas()},
            "responses": {f"E{code}": _json(ref("Error"), text) for code, text in _ERRORS.items()},
        },
    }
    return secure(document)  # a bearer token everywhere but /health, and the 401/403 that says so


@blueprint.get("/openapi.json")
def openapi_json() -> dict[str, Any]:
    return openapi_document()
