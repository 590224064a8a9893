"""GET /api/v1/reports (the SQL reports and their filters) and /reports/<name> as JSON or a CSV download."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, request

from carml.csv_export import to_csv
from carml.errors import CarmlError
from carml.reporting import REPORTS, Report, parse_since, run_report
from webapp.api.errors import ApiError
from webapp.api.params import HARDWARE_TAG, NAME, integer_text, single_values, text
from webapp.callers import current_caller
from webapp.context import settings

blueprint = Blueprint("reports", __name__)

MAX_ROWS = 10_000
FORMATS = ("json", "csv")
# The query names of the filters, as `run_report` calls them.
FILTERS = ("model", "hardware", "since")


def describe(name: str, chosen: Report) -> dict[str, Any]:
    return {
        "name": name,
        "description": chosen.description,
        "columns": list(chosen.columns),
        "filters": [f for f in FILTERS if f in chosen.filters],
    }


@blueprint.get("/reports")
def list_reports() -> dict[str, Any]:
    """Every report: what one row is, its columns and the filters it takes."""
    single_values(request.args, ())
    return {"reports": [describe(name, chosen) for name, chosen in REPORTS.items()]}


def report_filters(name: str, values: dict[str, str]) -> dict[str, Any]:
    """The filters of a query string for report `name`, checked; a 400 names the first bad one."""
    chosen = REPORTS[name]
    filters: dict[str, Any] = {
        "model": text(values, "model", pattern=NAME, max_length=100),
        "hardware": text(values, "hardware", pattern=HARDWARE_TAG, max_length=64),
        "since": text(values, "since", max_length=64),
    }
    for option, value in filters.items():
        if value is not None and option not in chosen.filters:
            takes = ", ".join(f for f in FILTERS if f in chosen.filters) or "nothing"
            raise ApiError(f"report {name} cannot be filtered by {option} (it takes: {takes})", field=option)
    if filters["since"] is not None:
        try:
            filters["since"] = parse_since(filters["since"])
        except CarmlError as exc:
            raise ApiError(str(exc).replace("--since", "since"), field="since") from None
    return filters


@blueprint.get("/reports/<name>")
def get_report(name: str) -> Response | dict[str, Any]:
    """The report's rows (at most `limit`, default 1000) as JSON, or as a CSV attachment with format=csv."""
    if name not in REPORTS:
        raise ApiError(f"no report {name[:60]!r}; the reports are: {', '.join(REPORTS)}", status=404, field="name")
    values = single_values(request.args, (*FILTERS, "limit", "format"))
    output = values.get("format") or "json"
    if output not in FORMATS:
        raise ApiError(f"format must be one of {', '.join(FORMATS)}, got {output[:20]!r}", field="format")
    limit = integer_text(values, "limit", minimum=1, maximum=MAX_ROWS) or 1000
    # A user's per-job rows are their own jobs; the aggregates leave out other users' private uploads.
    rows = run_report(settings(), name, limit=limit, viewer=current_caller(), **report_filters(name, values))
    columns = REPORTS[name].columns
    if output == "csv":
        return Response(
            to_csv(columns, rows),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return {
        "report": name,
        "columns": list(columns),
        "rows": [{c: _json_value(row[c]) for c in columns} for row in rows],
    }


def _json_value(value: Any) -> Any:
    # Timestamps as ISO 8601 like the rest of the API (Flask's default would write an HTTP date).
    return value.isoformat() if isinstance(value, datetime) else value
