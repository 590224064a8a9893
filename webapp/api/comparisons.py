"""POST/GET /api/v1/comparisons and GET /api/v1/comparisons/<id> (JSON, or the legs as CSV)."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from flask import Blueprint, Response, request, url_for

from carml.accounts.access import list_owner
from carml.csv_export import formula_safe
from carml.jobs.comparisons import ComparisonRequest, get_comparison, list_comparisons, submit_comparison
from carml.jobs.service import MAX_SHARDS
from webapp.api.access import owned_comparison
from webapp.api.datasets import find_dataset
from webapp.api.errors import ApiError
from webapp.api.jobs import MAX_BATCH_SIZE
from webapp.api.params import (
    HARDWARE_TAG,
    MAX_INT,
    NAME,
    integer,
    integer_text,
    json_object,
    json_shown,
    name,
    reject_unknown,
    single_values,
    text,
    value_list,
    whole_number,
)
from webapp.api.scenario_params import SCENARIO_FIELDS, scenario_fields
from webapp.callers import current_caller
from webapp.context import enqueue, settings

blueprint = Blueprint("comparisons", __name__)

FIELDS = (
    "models",
    "dataset",
    "frameworks",
    "hardware_tags",
    "batch_sizes",
    "limit",
    "shards",
    "title",
    *SCENARIO_FIELDS,
)
_COMPARISON_ID = re.compile(r"^[0-9a-fA-F-]{1,36}$")
CSV_COLUMNS = (
    "leg",
    "job_id",
    "model",
    "framework",
    "hardware_tag",
    "batch_size",
    "scenario",
    "status",
    "items",
    "top1",
    "top5",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "throughput_items_per_s",
    "joules_per_item",
    "cost_per_1000_items",
    "valid",
    "stable",
)


def _names(body: dict[str, Any], field: str, pattern: re.Pattern[str], default: list[Any]) -> list[Any]:
    values = value_list(body, field, default=default)
    for value in values:
        if value is None and None in default:
            continue
        if not isinstance(value, str) or not pattern.fullmatch(value) or value.endswith((".yaml", ".yml")):
            raise ApiError(f"{field}: {value!r} is not a valid name (allowed: {pattern.pattern})", field=field)
    return values


def _batch_sizes(body: dict[str, Any]) -> list[int]:
    sizes = []
    for value in value_list(body, "batch_sizes", default=[32]):
        size = whole_number(value)  # 32.0 from a JavaScript client is 32
        if size is None or not 1 <= size <= MAX_BATCH_SIZE:
            raise ApiError(
                f"batch_sizes: {json_shown(value)} is not a whole number from 1 to {MAX_BATCH_SIZE}",
                field="batch_sizes",
            )
        sizes.append(size)
    return sizes


@blueprint.post("/comparisons")
def create_comparison() -> tuple[dict[str, Any], int, dict[str, str]]:
    """One evaluation per combination of models × frameworks × hardware tags × batch sizes; 201 with the legs."""
    if not request.is_json:
        raise ApiError("send comparisons as application/json", status=415)
    body = json_object()
    reject_unknown(body, FIELDS)
    dataset = name(body, "dataset", required=True) or ""
    if find_dataset(dataset) is None:
        raise ApiError(f"unknown dataset {dataset!r}; see GET /api/v1/datasets", status=404, field="dataset")
    if body.get("models") is None:
        raise ApiError("models is required: one or more model names", field="models")
    comparison = ComparisonRequest(
        models=_names(body, "models", NAME, []),
        dataset=dataset,
        frameworks=_names(body, "frameworks", NAME, [None]),
        hardware_tags=_names(body, "hardware_tags", HARDWARE_TAG, ["cpu"]),
        batch_sizes=_batch_sizes(body),
        limit=integer(body, "limit", minimum=1),
        shards=integer(body, "shards", default=1, minimum=1, maximum=MAX_SHARDS) or 1,
        title=text(body, "title", max_length=200),
        owner=current_caller().name,
        leg_options=scenario_fields(body),  # every leg runs the same scenario (docs/scenarios.md)
    )
    comparison_id = submit_comparison(settings(), comparison, enqueue())
    location = url_for("comparisons.get_comparison_route", comparison_id=comparison_id)
    return get_comparison(settings(), comparison_id), 201, {"Location": location}


@blueprint.get("/comparisons")
def list_comparisons_route() -> dict[str, Any]:
    """The caller's comparisons (an admin's: everyone's, or one owner's) newest first, with how many legs have
    finished; paged by limit and offset."""
    query = single_values(request.args, ("owner", "limit", "offset"))
    limit = integer_text(query, "limit", minimum=1, maximum=500) or 50
    offset = integer_text(query, "offset", minimum=0, maximum=MAX_INT) or 0
    # User names have the shape of catalog names; a non-admin may only name themselves.
    owner = list_owner(current_caller(), text(query, "owner", pattern=NAME, max_length=100))
    return {"comparisons": list_comparisons(settings(), owner=owner, limit=limit, offset=offset), "limit": limit}


@blueprint.get("/comparisons/<comparison_id>")
def get_comparison_route(comparison_id: str) -> Any:
    """The legs side by side: status, progress and metrics, the best leg per metric; `?format=csv` for a table."""
    query = single_values(request.args, ("format",))
    fmt = text(query, "format", default="json", max_length=8)
    if fmt not in ("json", "csv"):
        raise ApiError(f"format must be json or csv, got {fmt!r}", field="format")
    if not _COMPARISON_ID.fullmatch(comparison_id):
        raise ApiError(f"no comparison {comparison_id[:40]!r}", status=404, field="comparison_id")
    summary = owned_comparison(comparison_id)
    if fmt == "json":
        return summary
    return Response(
        legs_csv(summary["legs"]),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="comparison-{comparison_id}.csv"'},
    )


def legs_csv(legs: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({column: formula_safe(leg.get(column)) for column in CSV_COLUMNS} for leg in legs)
    return buffer.getvalue()
