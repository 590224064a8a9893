"""The OpenAPI schemas of comparisons: the request, a comparison with its legs, and the list."""

from __future__ import annotations

from carml.db.models import JobStatus
from carml.jobs.comparisons import MAX_LEGS, METRICS
from carml.jobs.service import MAX_SHARDS
from webapp.api.openapi_scenarios import SCENARIO_REQUEST_PROPERTIES
from webapp.api.openapi_schemas import ANY_OBJECT, INTEGER, STRING, TIME, Schema, nullable, obj, ref

_NAME = {"type": "string", "pattern": r"^[a-z0-9][a-z0-9._-]*$", "maxLength": 100}
_TAG = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}


def _list(item: Schema, description: str, default: list[object] | None = None) -> Schema:
    schema = {"type": "array", "items": item, "minItems": 1, "maxItems": 16, "description": description}
    return schema if default is None else {**schema, "default": default}


_REQUEST = obj(
    {
        "models": _list(_NAME, "Models to run."),
        "dataset": {**_NAME, "description": "A catalog or uploaded dataset name; every leg runs on it."},
        "frameworks": _list({**_NAME, "type": ["string", "null"]}, "Frameworks (null: the model's only one).", [None]),
        "hardware_tags": _list(_TAG, "Hardware queues, one leg each.", ["cpu"]),
        "batch_sizes": _list({**INTEGER, "minimum": 1, "maximum": 4096}, "Batch sizes (a sweep).", [32]),
        "limit": nullable("integer", minimum=1, description="Evaluate only the first items."),
        "shards": {**INTEGER, "minimum": 1, "maximum": MAX_SHARDS, "default": 1},
        "title": {**STRING, "maxLength": 200},
        **SCENARIO_REQUEST_PROPERTIES,
    },
    required=["models", "dataset"],
    additionalProperties=False,
    description=f"Legs are every combination of models × frameworks × hardware_tags × batch_sizes (2 to {MAX_LEGS}).",
)

_NUMBER_OR_NULL = nullable("number")
_LEG = obj(
    {
        "leg": INTEGER,
        "job_id": STRING,
        "model": STRING,
        "framework": STRING,
        "hardware_tag": STRING,
        "batch_size": INTEGER,
        "scenario": STRING,
        "status": {"enum": [s.value for s in JobStatus]},
        "error": nullable("string"),
        "progress": obj({"done": INTEGER, "total": INTEGER}),
        "workers": {"type": "array", "items": STRING, "description": "Workers that ran its shards."},
        "worker_threads": {"type": "array", "items": INTEGER, "description": "Their thread limits, when set."},
        "cpu_model": nullable("string"),
        "gpu_name": nullable("string"),
        "price_per_hour": _NUMBER_OR_NULL,
        "items": nullable("integer"),
        "top1": _NUMBER_OR_NULL,
        "top5": _NUMBER_OR_NULL,
        "latency_p50_ms": _NUMBER_OR_NULL,
        "latency_p90_ms": _NUMBER_OR_NULL,
        "latency_p99_ms": _NUMBER_OR_NULL,
        "throughput_items_per_s": _NUMBER_OR_NULL,
        "joules_per_item": _NUMBER_OR_NULL,
        "cost_per_1000_items": _NUMBER_OR_NULL,
        "energy_joules": _NUMBER_OR_NULL,
        "valid": nullable("boolean"),
        "stable": nullable("boolean"),
    }
)

_COMPARISON = obj(
    {
        "id": STRING,
        "title": STRING,
        "owner": STRING,
        "dataset": STRING,
        "created_at": TIME,
        "spec": ANY_OBJECT,
        "varies": {"type": "array", "items": STRING, "description": "The request fields with several values."},
        "status": {"enum": ["queued", "running", "succeeded", "finished_with_errors"]},
        "legs_finished": INTEGER,
        "legs_total": INTEGER,
        "legs": {"type": "array", "items": ref("ComparisonLeg")},
        "best": obj(
            {metric: {"type": "array", "items": INTEGER} for metric in METRICS},
            required=[],
            additionalProperties=False,
            description="Per metric, the legs (numbers) with the best value among succeeded legs.",
        ),
    }
)

_LISTED = obj(
    {
        "id": STRING,
        "title": STRING,
        "owner": STRING,
        "dataset": STRING,
        "created_at": TIME,
        "legs_total": INTEGER,
        "legs_finished": INTEGER,
        "legs_by_status": {"type": "object", "additionalProperties": INTEGER},
    }
)


def comparison_schemas() -> dict[str, Schema]:
    return {
        "ComparisonRequest": _REQUEST,
        "ComparisonLeg": _LEG,
        "Comparison": _COMPARISON,
        "ComparisonList": obj({"comparisons": {"type": "array", "items": ref("ComparisonSummary")}, "limit": INTEGER}),
        "ComparisonSummary": _LISTED,
    }
