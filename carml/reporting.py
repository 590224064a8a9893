"""Canned reports over the SQL views that migrations create (evaluation_summary, hardware_comparison, ...).

The per-job reports read their view; the aggregate ones run their view's query with the runs the viewer may not
count left out (carml.report_aggregates). Every user value reaches the database as a bound parameter; view and
column names come only from `REPORTS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Boolean, String, column, select, table, type_coerce
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.types import TypeEngine

from carml.accounts.caller import Caller
from carml.accounts.result_visibility import counted_job_ids
from carml.db.base import UTCDateTime
from carml.db.models import Job
from carml.db.session import DatabaseError, engine_for
from carml.errors import CarmlError
from carml.report_aggregates import AGGREGATES
from carml.settings import Settings

# Typed so that SQLite's timestamp text reads back as aware datetimes and its 0/1 as booleans, like PostgreSQL's.
_TYPED: dict[str, TypeEngine[Any]] = {
    "created_at": UTCDateTime(),
    "finished_at": UTCDateTime(),
    "valid": Boolean(),
    "stable": Boolean(),
}


@dataclass(frozen=True)
class Filter:
    """A `run_report` keyword: which view column it restricts, how (`=` or `>=`), and the column's type."""

    column: str
    operator: str
    type: TypeEngine[Any]


MODEL = Filter("model", "=", String())
HARDWARE = Filter("hardware_tag", "=", String())
SINCE = Filter("created_at", ">=", UTCDateTime())


@dataclass(frozen=True)
class Report:
    """A view, its columns in display order, the filters it accepts, and how its rows are ordered."""

    view: str
    description: str
    columns: tuple[str, ...]
    order_by: tuple[str, ...]
    filters: dict[str, Filter] = field(default_factory=dict)


REPORTS: dict[str, Report] = {
    "evaluation_summary": Report(
        "evaluation_summary",
        "one row per finished evaluation job",
        (
            "job_id",
            "model",
            "framework",
            "dataset",
            "hardware_tag",
            "batch_size",
            "scenario",
            "shards",
            "status",
            "items",
            "errors",
            "top1",
            "top5",
            "claimed_top1",
            "latency_p50_ms",
            "latency_p90_ms",
            "latency_p99_ms",
            "latency_trimmed_mean_ms",
            "throughput_items_per_s",
            "model_load_ms",
            "valid",
            "stable",
            "joules_per_item",
            "cost_per_1000_items",
            "comparison_id",
            "created_at",
            "finished_at",
        ),  # fmt: skip
        ("created_at", "job_id"),
        {"model": MODEL, "hardware": HARDWARE, "since": SINCE},
    ),
    "hardware_comparison": Report(
        "hardware_comparison",
        "succeeded runs per model, framework, dataset, hardware and batch size",
        (
            "model",
            "framework",
            "dataset",
            "hardware_tag",
            "batch_size",
            "scenario",
            "runs",
            "best_top1",
            "avg_p50_ms",
            "min_p50_ms",
            "avg_p99_ms",
            "max_throughput_items_per_s",
            "avg_joules_per_item",
            "avg_cost_per_1000_items",
        ),  # fmt: skip
        ("model", "framework", "dataset", "hardware_tag", "batch_size", "scenario"),
        {"model": MODEL, "hardware": HARDWARE},
    ),
    "stage_breakdown": Report(
        "stage_breakdown",
        "per job and stage, warm-up batches excluded",
        (
            "job_id",
            "model",
            "framework",
            "hardware_tag",
            "batch_size",
            "created_at",
            "stage",
            "batches",
            "items",
            "total_ms",
            "mean_ms_per_batch",
            "share",
        ),  # fmt: skip
        ("created_at", "job_id", "stage"),
        {"model": MODEL, "hardware": HARDWARE, "since": SINCE},
    ),
    "model_leaderboard": Report(
        "model_leaderboard",
        "best top-1 per model, framework and dataset, and the hardware that reached it",
        ("model", "framework", "dataset", "runs", "best_top1", "claimed_top1", "best_hardware_tag"),
        ("model", "framework", "dataset"),
        {"model": MODEL},
    ),
}


def report(name: str) -> Report:
    """The report called `name`; a `CarmlError` naming the known ones otherwise."""
    try:
        return REPORTS[name]
    except KeyError:
        raise CarmlError(f"unknown report {name!r}: choose one of {', '.join(REPORTS)}") from None


def parse_since(value: str) -> datetime:
    """An ISO date or datetime as an aware UTC datetime (a date means its midnight, naive means UTC)."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CarmlError(
            f"--since {value!r} is not an ISO date or datetime (e.g. 2026-11-27 or 2026-11-27T18:30:00)"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def run_report(
    settings: Settings,
    name: str,
    *,
    model: str | None = None,
    hardware: str | None = None,
    since: str | date | None = None,
    limit: int = 1000,
    viewer: Caller | None = None,
) -> list[dict[str, Any]]:
    """The rows of report `name` (at most `limit`), restricted by the filters given, as dicts in column order.

    `viewer` is whom the rows are for (None: the operator, every row). A user's per-job reports show their own
    jobs; the aggregate reports (hardware_comparison, model_leaderboard) count the runs on catalog and shared
    datasets, whoever ran them, and the runs on the user's own uploads (see carml.accounts.result_visibility).
    """
    chosen = report(name)
    if limit < 1:
        raise CarmlError(f"limit must be at least 1, not {limit}")
    if isinstance(since, str):
        since = parse_since(since)
    elif isinstance(since, date) and not isinstance(since, datetime):
        since = datetime(since.year, since.month, since.day, tzinfo=UTC)
    wanted = {"model": model, "hardware": hardware, "since": since}
    aggregate = AGGREGATES.get(chosen.view)
    if aggregate is not None:  # grouped after leaving out the runs the viewer may not count
        source: Any = aggregate(counted_job_ids(viewer)).subquery(chosen.view)
    else:
        source = table(chosen.view, *(column(c, _TYPED.get(c)) for c in chosen.columns))
    query = select(*(source.c[c] for c in chosen.columns))
    for option, value in wanted.items():
        if value is None:
            continue
        rule = chosen.filters.get(option)
        if rule is None:
            raise CarmlError(f"report {name} cannot be filtered by --{option}")
        target = type_coerce(source.c[rule.column], rule.type)
        query = query.where(target >= value if rule.operator == ">=" else target == value)
    if viewer is not None and not viewer.is_admin and "job_id" in chosen.columns:
        query = query.where(source.c["job_id"].in_(select(Job.id).where(Job.owner == viewer.name)))
    query = query.order_by(*(source.c[c] for c in chosen.order_by)).limit(limit)
    try:
        with engine_for(settings.database).connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise DatabaseError(
            f"cannot run report {name}: {detail[0] if detail else type(exc).__name__} "
            "(is the database at head? run `carml db upgrade`)"
        ) from exc
