"""Reports (`/reports`): the SQL reports with their filters, a preview of one, and CSV/JSON download links.

The downloads are the API's routes (GET /api/v1/reports/<name>), so the page and the API export the same file.
"""

from __future__ import annotations

from typing import Any

from flask import render_template, request, url_for

from carml.errors import CarmlError
from carml.reporting import REPORTS, parse_since, run_report
from webapp.api.params import HARDWARE_TAG, NAME
from webapp.api.reports import FILTERS
from webapp.callers import current_caller
from webapp.context import settings
from webapp.ui.forms import Form
from webapp.ui.pages import ui_blueprint

blueprint = ui_blueprint("ui_reports", __name__)

PREVIEW_ROWS = 20


def _links(name: str, filters: dict[str, str]) -> dict[str, Any]:
    """A report's download links with the filters it accepts, and the filters it had to leave out."""
    accepted = {k: v for k, v in filters.items() if v and k in REPORTS[name].filters}
    return {
        "name": name,
        "report": REPORTS[name],
        "filters": [f for f in FILTERS if f in REPORTS[name].filters],
        "ignored": [k for k, v in filters.items() if v and k not in accepted],
        "csv": url_for("reports.get_report", name=name, format="csv", **accepted),
        "json": url_for("reports.get_report", name=name, **accepted),
        "preview": url_for("ui_reports.reports_page", **{k: v for k, v in filters.items() if v}, show=name),
    }


@blueprint.get("/reports")
def reports_page() -> tuple[str, int]:
    """Every report with its download links under the filters chosen; ?show=NAME previews its first rows."""
    form = Form.of(request.args, (*FILTERS, "show"))
    form.text("model", NAME, what="model name")
    form.text("hardware", HARDWARE_TAG, what="hardware tag")
    if form.values["since"]:
        try:
            parse_since(form.values["since"])
        except CarmlError:
            form.error("since", f"{form.values['since'][:40]!r} is not an ISO date or datetime (e.g. 2026-11-27)")
    shown = form.values["show"] or None
    if shown is not None and shown not in REPORTS:
        form.error("show", f"there is no report {shown[:40]!r}")
    filters = {k: form.values[k] for k in FILTERS if k not in form.errors}
    preview: list[dict[str, Any]] | None = None
    if shown in REPORTS and not form.errors:
        accepted = {k: v for k, v in filters.items() if v and k in REPORTS[shown].filters}
        # As the API's downloads: a user's own jobs, aggregates without other users' private uploads.
        preview = run_report(settings(), shown, limit=PREVIEW_ROWS, viewer=current_caller(), **accepted)
    return (
        render_template(
            "reports.html",
            form=form,
            reports=[_links(name, filters) for name in REPORTS],
            shown=shown if preview is not None else None,
            preview=preview,
            columns=REPORTS[shown].columns if preview is not None and shown else (),
            preview_rows=PREVIEW_ROWS,
        ),
        400 if form.errors else 200,
    )
