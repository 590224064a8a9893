"""The OpenAPI paths and schemas of /recommendations and /reports (merged into the document by openapi.py)."""

from __future__ import annotations

from typing import Any

from carml.db.models import Scenario
from carml.manifest.common import Task
from carml.recommend import CONSTRAINT_FIELDS
from carml.reporting import REPORTS
from webapp.api.openapi_schemas import ANY_OBJECT, BOOLEAN, INTEGER, NUMBER, STRING, Schema, nullable, obj, ref
from webapp.api.reports import FILTERS, FORMATS, MAX_ROWS


def _query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: {"$ref": f"#/components/responses/E{code}"} for code in ("400", *codes, "503")}


_CONSTRAINT_PARAMETERS = {
    "task": _query("task", {"enum": [t.value for t in Task]}, "Only models of this task."),
    "dataset": _query("dataset", STRING, "Only runs on this dataset."),
    "scenario": _query(
        "scenario", {"enum": [s.value for s in Scenario], "default": "accuracy"}, "Only runs of this scenario."
    ),
    "min_top1": _query(
        "min_top1", {**STRING, "examples": ["0.95", "95%"]}, "Lowest top-1: a fraction from 0 to 1, or a percentage."
    ),
    "max_p99_ms": _query("max_p99_ms", {**NUMBER, "exclusiveMinimum": 0}, "Highest p99 latency per batch (ms)."),
    "max_cost": _query("max_cost", {**NUMBER, "minimum": 0}, "Highest cost per 1,000 items (needs prices)."),
    "max_joules": _query("max_joules", {**NUMBER, "minimum": 0}, "Highest energy per item in joules."),
}
assert tuple(_CONSTRAINT_PARAMETERS) == CONSTRAINT_FIELDS  # the document lists what the route reads

_REPORT_FILTERS = {
    "model": _query("model", STRING, "Only this model."),
    "hardware": _query("hardware", STRING, "Only this hardware tag."),
    "since": _query("since", STRING, "Only jobs created at or after this ISO date or datetime (UTC unless zoned)."),
}
assert tuple(_REPORT_FILTERS) == FILTERS


_COUNTED_RUNS = (
    "Runs on catalog and shared datasets count for every caller, whoever ran them; runs on a private upload only "
    "for its owner and admins (docs/reporting.md, whose runs count)."
)


def report_paths() -> dict[str, Any]:
    """The path items of the recommendation and report routes."""
    return {
        "/recommendations": {
            "get": {
                "summary": "Measured model+hardware pairs that meet the constraints, ranked, Pareto front first",
                "description": _COUNTED_RUNS,
                "operationId": "getRecommendations",
                "parameters": list(_CONSTRAINT_PARAMETERS.values()),
                "responses": {
                    "200": {
                        "description": "The ranking (possibly empty: `excluded` says why).",
                        "content": {"application/json": {"schema": ref("Recommendation")}},
                    },
                    **_errors(),
                },
            }
        },
        "/reports": {
            "get": {
                "summary": "The SQL reports, their columns and the filters each takes",
                "operationId": "listReports",
                "responses": {
                    "200": {
                        "description": "Every report.",
                        "content": {"application/json": {"schema": ref("ReportList")}},
                    },
                    **_errors(),
                },
            }
        },
        "/reports/{name}": {
            "get": {
                "summary": "One report's rows, as JSON or as a CSV download",
                "description": "Per-job reports (evaluation_summary, stage_breakdown) show the caller's own jobs (an "
                "admin's: everyone's). Aggregate reports: " + _COUNTED_RUNS,
                "operationId": "getReport",
                "parameters": [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"enum": list(REPORTS)},
                        "description": "The report.",
                    },
                    *_REPORT_FILTERS.values(),
                    _query(
                        "limit",
                        {**INTEGER, "minimum": 1, "maximum": MAX_ROWS, "default": 1000},
                        "At most this many rows.",
                    ),
                    _query("format", {"enum": list(FORMATS), "default": "json"}, "csv: a download with a header row."),
                ],
                "responses": {
                    "200": {
                        "description": "The rows (JSON), or a CSV attachment named after the report with format=csv.",
                        "headers": {
                            "Content-Disposition": {"schema": STRING, "description": "With csv: attachment; <name>.csv"}
                        },
                        "content": {
                            "application/json": {"schema": ref("ReportRows")},
                            "text/csv": {"schema": STRING},
                        },
                    },
                    **_errors("404"),
                },
            }
        },
    }


_NUMBER_OR_NULL = nullable("number")

_CANDIDATE = obj(
    {
        "rank": {**INTEGER, "minimum": 1},
        "pareto": {**BOOLEAN, "description": "On the Pareto front over `objectives`."},
        "model": STRING,
        "framework": STRING,
        "hardware_tag": STRING,
        "batch_size": INTEGER,
        "dataset": nullable("string"),
        "task": nullable("string"),
        "runs": {**INTEGER, "description": "Succeeded evaluations; every number is their median."},
        "top1": _NUMBER_OR_NULL,
        "p99_ms": _NUMBER_OR_NULL,
        "throughput_items_per_s": _NUMBER_OR_NULL,
        "cost_per_1000_items": _NUMBER_OR_NULL,
        "joules_per_item": _NUMBER_OR_NULL,
        "latest_job_id": STRING,
    },
    additionalProperties=False,
)

_RECOMMENDATION = obj(
    {
        "constraints": obj(
            {
                "task": nullable("string"),
                "dataset": nullable("string"),
                "scenario": {"enum": [s.value for s in Scenario]},
                "min_top1": nullable("number", description="As a fraction."),
                "max_p99_ms": _NUMBER_OR_NULL,
                "max_cost": _NUMBER_OR_NULL,
                "max_joules": _NUMBER_OR_NULL,
            }
        ),
        "considered": {**INTEGER, "description": "Measured candidates of the task, dataset and scenario."},
        "objectives": {"type": "array", "items": {"enum": ["top1", "p99_ms", "cost_per_1000_items"]}},
        "note": nullable("string", description="Why cost is not an objective, when it is not."),
        "candidates": {"type": "array", "items": ref("RankedCandidate")},
        "excluded": obj(
            {
                "total": INTEGER,
                "reasons": {
                    "type": "array",
                    "items": obj({"reason": STRING, "description": STRING, "candidates": INTEGER}),
                    "description": "A candidate failing several constraints counts under each.",
                },
            }
        ),
    }
)

_REPORT = obj(
    {
        "name": STRING,
        "description": STRING,
        "columns": {"type": "array", "items": STRING},
        "filters": {"type": "array", "items": {"enum": list(FILTERS)}},
    }
)


def report_schemas() -> dict[str, Schema]:
    """The component schemas the paths above refer to."""
    return {
        "RankedCandidate": _CANDIDATE,
        "Recommendation": _RECOMMENDATION,
        "ReportInfo": _REPORT,
        "ReportList": obj({"reports": {"type": "array", "items": ref("ReportInfo")}}),
        "ReportRows": obj(
            {
                "report": STRING,
                "columns": {"type": "array", "items": STRING},
                "rows": {"type": "array", "items": ANY_OBJECT},
            }
        ),
    }
