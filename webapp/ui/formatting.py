"""Jinja filters and globals the UI templates share: numbers, times, links that keep the query string."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask, request, url_for

from carml.db.base import utcnow
from carml.db.models import Job, JobStatus
from webapp.ui.csrf import FORM_FIELD, csrf_token

NAVIGATION = (
    ("catalog", "Catalog", "ui_catalog.catalog"),
    ("try", "Try it", "ui_try.try_page"),
    ("validate", "Validate", "ui_validate.validate_page"),
    ("compare", "Compare", "ui_compare.compare_page"),
    ("recommend", "Recommend", "ui_recommend.recommend_page"),
    ("jobs", "Jobs", "ui_jobs.jobs_page"),
    ("reports", "Reports", "ui_reports.reports_page"),
    ("workers", "Workers", "ui_workers.workers_page"),
)
# The area each blueprint's pages belong to, for the navigation's current item.
_AREAS = {
    "ui_catalog": "catalog",
    "ui_publishing": "catalog",
    "ui_try": "try",
    "ui_validate": "validate",
    "ui_compare": "compare",
    "ui_jobs": "jobs",
    "ui_job_data": "jobs",
    "ui_recommend": "recommend",
    "ui_reports": "reports",
    "ui_workers": "workers",
}


def milliseconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3g} ms" if value < 10 else f"{value:,.1f} ms"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def number(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def mebibytes(value: int) -> str:
    return f"{value / 2**20:g} MiB"


def timestamp(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def seconds_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def ago(value: datetime | None) -> str:
    return "—" if value is None else f"{seconds_text(max(0.0, (utcnow() - value).total_seconds()))} ago"


def duration(job: Job) -> str:
    """Run time: started to finished, or to now while it runs."""
    if job.started_at is None:
        return "—"
    end = job.finished_at or utcnow()
    return seconds_text(max(0.0, (end - job.started_at).total_seconds()))


def progress_percent(done: int, total: int) -> int:
    return int(100 * done / total) if total else 0


def is_final(status: str) -> bool:
    return JobStatus(status).final


def url_with(**changes: Any) -> str:
    """This page's URL with some query parameters changed (None removes one); for filters and paging."""
    values: dict[str, Any] = {k: v for k, v in request.args.items() if k not in changes}
    values.update({k: v for k, v in changes.items() if v is not None and v != ""})
    values.update(request.view_args or {})
    return url_for(request.endpoint or "ui_catalog.catalog", **values)


def current_area() -> str | None:
    return _AREAS.get(request.blueprint or "")


def register(app: Flask) -> None:
    app.add_template_filter(milliseconds, "ms")
    app.add_template_filter(percent, "pct")
    app.add_template_filter(number, "num")
    app.add_template_filter(mebibytes, "mib")
    app.add_template_filter(timestamp, "ts")
    app.add_template_filter(ago, "ago")
    app.add_template_global(duration)
    app.add_template_global(progress_percent)
    app.add_template_global(is_final)
    app.add_template_global(url_with)
    app.add_template_global(current_area)
    app.add_template_global(csrf_token)
    app.jinja_env.globals.update(csrf_field=FORM_FIELD, navigation=NAVIGATION)
