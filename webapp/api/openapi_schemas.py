"""The OpenAPI document's component schemas: the JSON the API reads and writes."""

from __future__ import annotations

from typing import Any

from carml.db.models import JobKind, JobStatus
from carml.jobs.service import MAX_SHARDS
from carml.settings import TRACE_LEVELS
from webapp.api.openapi_scenarios import SCENARIO_JOB_PROPERTY, SCENARIO_REQUEST_PROPERTIES, SCENARIO_RESULT_PROPERTIES

Schema = dict[str, Any]

#: `wait` of a submission and of GET /jobs/{job_id}: how long the request may wait for the job to end.
WAIT = {
    "type": "integer",
    "minimum": 0,
    "maximum": 60,
    "description": "Seconds to wait for the job to end before answering (at most the server's CARML_API_MAX_WAIT_S); "
    "the answer is the job as it is then, ended or not. Absent or 0, or while the server already has "
    "CARML_API_MAX_WAITING requests waiting: answer at once.",
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(kind: str, **extra: Any) -> Schema:
    return {"type": [kind, "null"], **extra}


def obj(properties: dict[str, Schema], required: list[str] | None = None, **extra: Any) -> Schema:
    """An object schema; every property is required unless `required` says otherwise."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        **extra,
    }


STRING, INTEGER, NUMBER, BOOLEAN = ({"type": t} for t in ("string", "integer", "number", "boolean"))
TIME = {"type": "string", "format": "date-time"}
BINARY = {"type": "string", "contentMediaType": "application/octet-stream"}
ANY_OBJECT = {"type": "object", "additionalProperties": True}

_ERROR = obj(
    {
        "error": obj(
            {
                "message": {**STRING, "description": "What went wrong, for people."},
                "field": nullable("string", description="The request field at fault, when there is one."),
                "status": {**INTEGER, "description": "The HTTP status, repeated."},
            }
        )
    }
)

_MODEL = obj(
    {
        "name": STRING,
        "version": STRING,
        "framework": STRING,
        "task": STRING,
        "modality": STRING,
        "claimed_top1": nullable("number"),
        "claimed_top5": nullable("number"),
        "runnable": {**BOOLEAN, "description": "This server has the framework, at a version the manifest accepts."},
        "source": {
            "enum": ["folder", "published"],
            "description": "folder: a manifest file of CARML_MANIFEST_DIRS; published: published through the service.",
        },
        "owner": nullable("string", description="Who published it; null for a manifest file's model."),
        "published_at": nullable("string", format="date-time", description="When it was published (or replaced)."),
    }
)

_DATASET_PROPERTIES: dict[str, Schema] = {
    "name": STRING,
    "source": {"enum": ["catalog", "upload"]},
    "format": STRING,
    "modality": STRING,
    "items": nullable("integer", description="Known for uploads; null for catalog datasets."),
    "version": STRING,
    "task": STRING,
    "split": STRING,
    "description": STRING,
    "digest": STRING,
    "sha256": STRING,
    "filename": STRING,
    "owner": nullable("string"),
    "shared": {"type": "boolean", "description": "Uploads: visible to every user (else to its owner and admins)."},
    "registered_at": TIME,
}
_DATASET = obj(_DATASET_PROPERTIES, ["name", "source", "format", "modality", "items"], additionalProperties=False)

_UPLOAD_REPORT = obj(
    {
        "name": STRING,
        "format": STRING,
        "modality": STRING,
        "items": {**INTEGER, "description": "Usable items."},
        "classes": {"type": "array", "items": STRING},
        "rejected": {
            "type": "array",
            "maxItems": 100,
            "items": obj({"item": STRING, "reason": STRING}),
            "description": "The first 100 files refused while listing, with the reason.",
        },
        "rejected_total": INTEGER,
        "digest": STRING,
        "sha256": {**STRING, "description": "SHA-256 of the uploaded file."},
    }
)

_STATS = nullable("object", properties={"mean": NUMBER, "max": NUMBER, "count": INTEGER})
_HARDWARE_METRICS = nullable(
    "object",
    properties={
        "shards": INTEGER,
        "samples": INTEGER,
        "interval_s": NUMBER,
        "cpu_percent": {**_STATS, "description": "The worker process, 100 per busy core."},
        "peak_rss_mib": nullable("number", description="Highest resident memory sampled during the run."),
        "process_peak_rss_mib": nullable("number", description="The worker process's lifetime high-water mark."),
        "gpus": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "worker": nullable("string"),
                    "index": INTEGER,
                    "name": nullable("string"),
                    "utilization_percent": _STATS,
                    "memory_used_mib_max": nullable("number"),
                    "power_w": _STATS,
                    "energy_j": nullable("number"),
                    "timed_energy_j": nullable("number"),
                    "energy_source": nullable("string"),
                },
            },
        },
        "timed_items": INTEGER,
        "busy_s": nullable("number", description="The shards' timed windows, summed: what cost is counted on."),
        "energy_source": nullable("string", description="nvml-energy-counter, nvml-power, or null: no energy."),
    },
    description="Sampled while the shards ran (NVML on GPUs); null for prediction jobs.",
)

_COUNTS = {"type": "array", "items": INTEGER}
_CONFUSION_CELLS = obj(
    {"classes": INTEGER, "cells": {"type": "array", "items": {**_COUNTS, "minItems": 3, "maxItems": 3}}},
    description="The confusion matrix's non-zero cells, each [true class, predicted class, count] (`confusion=cells`).",
)

_RESULT_PROPERTIES: Schema = {
    "items": INTEGER,
    "errors": INTEGER,
    "error_items": {"type": "array"},
    "top1": nullable("number"),
    "top5": nullable("number"),
    "latency_ms": ANY_OBJECT,
    "stages_ms": ANY_OBJECT,
    "throughput_items_per_s": nullable("number"),
    "model_load_ms": nullable("number"),
    "hardware_metrics": _HARDWARE_METRICS,
    "energy_joules": nullable("number", description="GPU energy over the timed batches (warm-up excluded)."),
    "joules_per_item": nullable("number", description="energy_joules per timed item."),
    "cost_per_1000_items": nullable(
        "number", description="price_per_hour for each shard's timed time, per 1,000 timed items."
    ),
    "price_per_hour": nullable("number", description="The hardware tag's price when the job was submitted."),
    "reproducibility": ANY_OBJECT,
    **SCENARIO_RESULT_PROPERTIES,
}
_RESULT = obj(
    {
        **_RESULT_PROPERTIES,
        "confusion_matrix": {"type": "array", "items": _COUNTS, "description": "Counts, [true class][predicted]."},
        "confusion": _CONFUSION_CELLS,
    },
    required=list(_RESULT_PROPERTIES),
    additionalProperties=True,
    description="Evaluations add labels, per_class, warmup, timed_items and the confusion matrix (confusion_matrix, "
    "or confusion as the `confusion` query parameter asks); predictions add predictions.",
)

_JOB = obj(
    {
        "id": STRING,
        "kind": {"enum": [k.value for k in JobKind]},
        "status": {"enum": [s.value for s in JobStatus]},
        "owner": STRING,
        "model": STRING,
        "framework": STRING,
        "dataset": nullable("string"),
        "hardware_tag": STRING,
        "batch_size": INTEGER,
        "scenario": SCENARIO_JOB_PROPERTY,
        "shards": INTEGER,
        "progress": obj({"done": INTEGER, "total": INTEGER}),
        "error": nullable("string"),
        "created_at": TIME,
        "started_at": nullable("string", format="date-time"),
        "finished_at": nullable("string", format="date-time"),
        "trace_id": nullable("string", description="The job's trace (GET /jobs/{job_id}/trace); null if untraced."),
        "result": ref("Result"),
    },
    required=[
        *("id", "kind", "status", "owner", "model", "framework", "dataset", "hardware_tag", "batch_size"),
        *("shards", "progress", "error", "created_at", "started_at", "finished_at"),
    ],
)

_WORKER = obj(
    {
        "id": STRING,
        "hardware_tag": STRING,
        "alive": {**BOOLEAN, "description": "Its last heartbeat is within the worker_alive_s setting."},
        "host": STRING,
        "pid": INTEGER,
        "cpu_model": STRING,
        "cpu_cores": INTEGER,
        "gpu_name": nullable("string"),
        "gpu_memory_mib": nullable("integer"),
        "gpu_driver": nullable("string"),
        "cuda_version": nullable("string"),
        "frameworks": {"type": "object", "additionalProperties": nullable("string")},
        "threads": nullable("integer", description="Compute threads per model, when the worker was limited."),
        "started_at": TIME,
        "last_heartbeat": TIME,
    }
)

_NAME = {"type": "string", "pattern": r"^[a-z0-9][a-z0-9._-]*$", "maxLength": 100}
_TAG = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", "default": "cpu"}

_EVALUATE = obj(
    {
        "kind": {"const": "evaluate"},
        "model": _NAME,
        "framework": {**_NAME, "type": ["string", "null"]},
        "dataset": {**_NAME, "description": "A catalog or uploaded dataset name."},
        "hardware_tag": _TAG,
        "batch_size": {**INTEGER, "minimum": 1, "maximum": 4096, "default": 32},
        "limit": nullable("integer", minimum=1, description="Evaluate only the first items."),
        "shards": {**INTEGER, "minimum": 1, "maximum": MAX_SHARDS, "default": 1},
        "trace_level": {
            "enum": list(TRACE_LEVELS),
            "description": "Spans kept for this job (default: the server's CARML_TRACE_LEVEL).",
        },
        "wait": WAIT,
        **SCENARIO_REQUEST_PROPERTIES,
    },
    required=["kind", "model", "dataset"],
    additionalProperties=False,
)

_PREDICT = obj(
    {
        "kind": {"const": "predict"},
        "model": _NAME,
        "framework": _NAME,
        "hardware_tag": _TAG,
        "top_k": {**INTEGER, "minimum": 1, "maximum": 1000},
        "files": {"type": "array", "items": BINARY, "minItems": 1, "maxItems": 64},
        "wait": WAIT,
    },
    required=["kind", "model", "files"],
    additionalProperties=False,
)

_UPLOAD = obj(
    {
        "name": {**STRING, "pattern": r"^[a-z0-9][a-z0-9_-]{0,99}$"},
        "file": {**BINARY, "description": "A .zip/.tar(.gz, .bz2, .xz)/.tgz of class folders, a .csv or an .npz."},
        "shared": {
            "enum": ["true", "false"],
            "default": "false",
            "description": "true: visible to every user (needs the publisher role); false: yours (and admins') only.",
        },
    },
    additionalProperties=False,
)


def component_schemas() -> dict[str, Schema]:
    """Every named schema the paths refer to."""
    from webapp.api.openapi_comparisons import comparison_schemas  # it builds on the helpers above

    return {
        "Error": _ERROR,
        "Health": obj(
            {
                "status": {"enum": ["ok", "schema_out_of_date"]},
                "database": {**STRING, "description": "The database backend, e.g. postgresql or sqlite."},
                "schema": obj({"current": nullable("string"), "head": STRING}),
            }
        ),
        "Model": _MODEL,
        "ModelList": obj({"models": {"type": "array", "items": ref("Model")}}),
        "ModelDetail": obj(
            {
                "name": STRING,
                "frameworks": {
                    "type": "array",
                    "items": {
                        "allOf": [ref("Model")],
                        "properties": {"manifest_sha256": STRING, "manifest": ANY_OBJECT},
                        "required": ["manifest_sha256", "manifest"],
                    },
                },
            }
        ),
        "Dataset": _DATASET,
        "DatasetDetail": {**_DATASET, "properties": {**_DATASET_PROPERTIES, "manifest": ANY_OBJECT}},
        "DatasetList": obj({"datasets": {"type": "array", "items": ref("Dataset")}}),
        "DatasetUpload": _UPLOAD,
        "UploadReport": _UPLOAD_REPORT,
        "EvaluateRequest": _EVALUATE,
        "PredictRequest": _PREDICT,
        "Job": _JOB,
        "JobList": obj({"jobs": {"type": "array", "items": ref("Job")}, "limit": INTEGER, "offset": INTEGER}),
        "Result": _RESULT,
        "JobResult": {
            "allOf": [ref("Result")],
            "properties": {"job_id": STRING, "kind": _JOB["properties"]["kind"], "status": {"const": "succeeded"}},
            "required": ["job_id", "kind", "status"],
        },
        "Worker": _WORKER,
        "WorkerList": obj({"workers": {"type": "array", "items": ref("Worker")}}),
        **comparison_schemas(),
    }
