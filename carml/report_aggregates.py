"""The aggregate reports (hardware_comparison, model_leaderboard) as queries over `evaluation_summary`, so that they
can count only the runs a viewer may see (see carml.accounts.result_visibility) before grouping them.

Each is the SQL of its view, as migration c5d1e7a90f42 creates it, with that one condition added: filtering the
view's rows afterwards cannot take one run out of a group it was averaged into. tests/reporting checks that they
give exactly the view's rows when nothing is left out, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Select, TableClause, and_, column, func, or_, select, table
from sqlalchemy.sql.selectable import Alias

from carml.db.models import JobStatus, Scenario

_SUMMARY_COLUMNS = (
    "job_id",
    "model",
    "framework",
    "dataset",
    "hardware_tag",
    "batch_size",
    "scenario",
    "status",
    "top1",
    "claimed_top1",
    "latency_p50_ms",
    "latency_p99_ms",
    "throughput_items_per_s",
    "joules_per_item",
    "cost_per_1000_items",
)

#: The runs an aggregate may count: ids from `counted_job_ids`, or None for every run.
CountedIds = Select[tuple[str]] | None


def _summary(alias: str) -> Alias:
    summary: TableClause = table("evaluation_summary", *(column(name) for name in _SUMMARY_COLUMNS))
    return summary.alias(alias)


def _counted(query: Select[Any], runs: Alias, counted: CountedIds) -> Select[Any]:
    return query if counted is None else query.where(runs.c.job_id.in_(counted))


def hardware_comparison(counted: CountedIds) -> Select[Any]:
    """Succeeded runs per model, framework, dataset, hardware tag, batch size and scenario."""
    s = _summary("s")
    keys = (s.c.model, s.c.framework, s.c.dataset, s.c.hardware_tag, s.c.batch_size, s.c.scenario)
    query = (
        select(
            *keys,
            func.count().label("runs"),
            func.max(s.c.top1).label("best_top1"),
            func.avg(s.c.latency_p50_ms).label("avg_p50_ms"),
            func.min(s.c.latency_p50_ms).label("min_p50_ms"),
            func.avg(s.c.latency_p99_ms).label("avg_p99_ms"),
            func.max(s.c.throughput_items_per_s).label("max_throughput_items_per_s"),
            func.avg(s.c.joules_per_item).label("avg_joules_per_item"),
            func.avg(s.c.cost_per_1000_items).label("avg_cost_per_1000_items"),
        )
        .where(s.c.status == JobStatus.SUCCEEDED.value)
        .group_by(*keys)
    )
    return _counted(query, s, counted)


def model_leaderboard(counted: CountedIds) -> Select[Any]:
    """Best top-1 of accuracy passes per model, framework and dataset, and the hardware of the best run (ties go
    to the higher throughput, then the job id). The best run is looked for among the counted runs only."""
    s, b = _summary("s"), _summary("b")
    best = (
        select(b.c.hardware_tag)
        .where(
            b.c.status == JobStatus.SUCCEEDED.value,
            b.c.scenario == Scenario.ACCURACY.value,
            b.c.top1.is_not(None),
            b.c.model == s.c.model,
            b.c.framework == s.c.framework,
            or_(b.c.dataset == s.c.dataset, and_(b.c.dataset.is_(None), s.c.dataset.is_(None))),
        )
        .order_by(b.c.top1.desc(), b.c.throughput_items_per_s.desc(), b.c.job_id)
        .limit(1)
    )
    keys = (s.c.model, s.c.framework, s.c.dataset)
    query = (
        select(
            *keys,
            func.count().label("runs"),
            func.max(s.c.top1).label("best_top1"),
            func.max(s.c.claimed_top1).label("claimed_top1"),
            _counted(best, b, counted).scalar_subquery().label("best_hardware_tag"),
        )
        .where(s.c.status == JobStatus.SUCCEEDED.value, s.c.scenario == Scenario.ACCURACY.value)
        .group_by(*keys)
    )
    return _counted(query, s, counted)


#: The reports that aggregate over runs, by view name.
AGGREGATES: dict[str, Callable[[CountedIds], Select[Any]]] = {
    "hardware_comparison": hardware_comparison,
    "model_leaderboard": model_leaderboard,
}
