"""The OpenAPI path and schemas of GET /jobs/{job_id}/trace (merged into the document by openapi.py)."""

from __future__ import annotations

from typing import Any

from carml.settings import TRACE_LEVELS
from webapp.api.openapi_schemas import ANY_OBJECT, INTEGER, NUMBER, STRING, TIME, Schema, nullable, obj, ref
from webapp.api.traces import DEFAULT_LIMIT, MAX_LIMIT

_SPAN = obj(
    {
        "span_id": {**STRING, "description": "16 hex digits."},
        "parent_span_id": nullable("string", description="The enclosing span; null for the trace's root (submit)."),
        "name": {
            **STRING,
            "description": "submit, queue, shard, load_model, batch, fetch, decode, preprocess, predict, "
            "postprocess, store, or an operator's name (trace level framework).",
        },
        "shard_index": nullable("integer"),
        "batch_index": nullable("integer"),
        "started_at": TIME,
        "duration_ms": NUMBER,
        "attributes": {**ANY_OBJECT, "description": "Model, framework, batch size, hardware tag, worker, items ..."},
    }
)

_TRACE = obj(
    {
        "job_id": STRING,
        "trace_id": nullable("string", description="W3C trace id (32 hex digits); null when not traced."),
        "trace_level": {"enum": [*TRACE_LEVELS, None]},
        "total": {**INTEGER, "description": "Spans in the trace, over every page."},
        "limit": INTEGER,
        "offset": INTEGER,
        "spans": {"type": "array", "items": ref("Span")},
    }
)


def trace_paths() -> dict[str, Any]:
    """The path item of the trace route."""

    def query(name: str, schema: Schema, description: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}

    return {
        "/jobs/{job_id}/trace": {
            "get": {
                "summary": "A job's trace: every span (submit, queue, shard, batch, stages, operators) with its "
                "duration",
                "operationId": "getJobTrace",
                "parameters": [
                    {
                        "name": "job_id",
                        "in": "path",
                        "required": True,
                        "schema": STRING,
                        "description": "The job's id.",
                    },
                    query(
                        "limit", {**INTEGER, "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}, "Page size."
                    ),
                    query("offset", {**INTEGER, "minimum": 0, "default": 0}, "Spans to skip."),
                ],
                "responses": {
                    "200": {
                        "description": "The spans in the order they started.",
                        "content": {"application/json": {"schema": ref("Trace")}},
                    },
                    **{code: {"$ref": f"#/components/responses/E{code}"} for code in ("400", "404", "503")},
                },
            }
        }
    }


def trace_schemas() -> dict[str, Schema]:
    return {"Span": _SPAN, "Trace": _TRACE}
