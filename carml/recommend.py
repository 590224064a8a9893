"""Choosing a model and hardware under constraints: measured candidates, their Pareto front, a ranking.

A candidate is one (model, framework, hardware tag, batch size, dataset) with succeeded evaluations. When it
ran several times, each number is the median of the runs that measured it: the typical run. The best run would
reward a lucky one (a quiet machine, a warm cache) that a deployment will not see again, and a mean lets one
disturbed run (a busy host) drag p99 far from what the others measured. Two runs give their mean.

The constraints (`min_top1`, `max_p99_ms`, `max_cost`, `max_joules`) are checked in Python against those
medians; a candidate that lacks a number a constraint needs is excluded, and the reason is counted.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sqlalchemy import or_, select

from carml.accounts.caller import Caller
from carml.accounts.result_visibility import counted_evaluations
from carml.db.models import Job, JobKind, JobStatus, RegisteredModel, Result, Scenario
from carml.db.session import session_scope
from carml.errors import CarmlError
from carml.manifest.common import Task
from carml.pareto import pareto_front
from carml.settings import Settings

CONSTRAINT_FIELDS = ("task", "dataset", "scenario", "min_top1", "max_p99_ms", "max_cost", "max_joules")
_MAX_TEXT = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ConstraintError(CarmlError):
    """A constraint that cannot be read; `field` is its API name (the CLI names the option in the message)."""

    status = 400

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Constraints:
    """What a recommendation must satisfy. `task`, `dataset` and `scenario` choose which runs are candidates;
    the limits exclude candidates. `min_top1` is a fraction (0.95), `max_cost` per 1,000 items."""

    task: str | None = None
    dataset: str | None = None
    scenario: str = Scenario.ACCURACY.value
    min_top1: float | None = None
    max_p99_ms: float | None = None
    max_cost: float | None = None
    max_joules: float | None = None


def _number(text: str, label: str, name: str, example: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConstraintError(f"{label} {text!r} is not a number (e.g. {example})", name) from None
    if not math.isfinite(value):
        raise ConstraintError(f"{label} {text!r} is not a finite number (e.g. {example})", name)
    return value


def parse_top1(text: str, label: str = "min_top1") -> float:
    """A top-1 accuracy as a fraction: `0.95` and `95%` both mean 0.95. A bare number above 1 is refused
    rather than guessed at: 95 could be a typo for 0.95 or a percentage without its sign."""
    raw = text.strip()
    percent = raw.endswith("%")
    value = _number(raw.removesuffix("%").strip(), label, "min_top1", "0.95 or 95%")
    if percent:
        if not 0 <= value <= 100:
            raise ConstraintError(f"{label} {text!r} is out of range: a percentage is from 0% to 100%", "min_top1")
        return value / 100
    if value > 1:
        raise ConstraintError(
            f"{label} {text!r} is above 1: give a fraction from 0 to 1 (0.95) or a percentage ({raw}%)", "min_top1"
        )
    if value < 0:
        raise ConstraintError(f"{label} {text!r} is out of range: a fraction is from 0 to 1 (e.g. 0.95)", "min_top1")
    return value


def parse_limit(text: str, name: str, label: str, *, zero_allowed: bool, example: str) -> float:
    """An upper limit: a finite number above 0 (or at least 0 when `zero_allowed`)."""
    value = _number(text.strip(), label, name, example)
    if value < 0 or (value == 0 and not zero_allowed):
        bound = "at least 0" if zero_allowed else "above 0"
        raise ConstraintError(f"{label} {text!r} is out of range: it must be {bound} (e.g. {example})", name)
    return value


def parse_constraints(values: Mapping[str, str | None], label: Callable[[str], str] = str) -> Constraints:
    """Constraints from text (a query string, CLI options); `label` names a field in messages (CLI: --min-top1).

    Absent or empty values mean no constraint; every problem is a `ConstraintError` naming the field.
    """
    given: dict[str, str] = {}
    for name in CONSTRAINT_FIELDS:
        value = values.get(name)
        if value is None or value.strip() == "":
            continue
        if len(value) > _MAX_TEXT or _CONTROL.search(value):
            raise ConstraintError(f"{label(name)} must be at most {_MAX_TEXT} printable characters", name)
        given[name] = value.strip()
    tasks = [t.value for t in Task]
    if "task" in given and given["task"] not in tasks:
        raise ConstraintError(f"{label('task')} {given['task']!r} is not one of: {', '.join(tasks)}", "task")
    scenarios = [s.value for s in Scenario]
    if "scenario" in given and given["scenario"] not in scenarios:
        raise ConstraintError(
            f"{label('scenario')} {given['scenario']!r} is not one of: {', '.join(scenarios)}", "scenario"
        )

    def limit(name: str, zero_allowed: bool, example: str) -> float | None:
        text = given.get(name)
        return (
            None if text is None else parse_limit(text, name, label(name), zero_allowed=zero_allowed, example=example)
        )

    return Constraints(
        task=given.get("task"),
        dataset=given.get("dataset"),
        scenario=given.get("scenario", Scenario.ACCURACY.value),
        min_top1=parse_top1(given["min_top1"], label("min_top1")) if "min_top1" in given else None,
        max_p99_ms=limit("max_p99_ms", False, "5 for 5 ms"),
        max_cost=limit("max_cost", True, "0.02"),
        max_joules=limit("max_joules", True, "0.5"),
    )


@dataclass(frozen=True)
class Candidate:
    """A measured model+hardware pair: the medians of its succeeded runs, and the newest run's job id."""

    model: str
    framework: str
    hardware_tag: str
    batch_size: int
    dataset: str | None
    task: str | None
    runs: int
    top1: float | None
    p99_ms: float | None
    throughput_items_per_s: float | None
    cost_per_1000_items: float | None
    joules_per_item: float | None
    latest_job_id: str


_KEY = (Job.model_name, Job.framework, Job.hardware_tag, Job.batch_size, Job.dataset_name, RegisteredModel.task)
_MEASURES = (
    Result.top1,
    Result.latency_p99_ms,
    Result.throughput_items_per_s,
    Result.cost_per_1000_items,
    Result.joules_per_item,
)


def _median(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(known) if known else None


def measured_candidates(settings: Settings, constraints: Constraints, viewer: Caller | None = None) -> list[Candidate]:
    """Every candidate of the constraints' task, dataset and scenario, from succeeded evaluations that `viewer`
    may count: runs on catalog and shared datasets, and on the viewer's own uploads (None: every run, for the
    operator; see carml.accounts.result_visibility).

    A run whose scenario outcome is INVALID (`results.valid` false) measured under conditions its scenario
    refuses, so it is no evidence; accuracy runs have no verdict (null) and count.
    """
    query = (
        select(*_KEY, *_MEASURES, Job.id)
        .join(Result, Result.job_id == Job.id)
        .outerjoin(RegisteredModel, RegisteredModel.id == Job.model_id)
        .where(
            Job.kind == JobKind.EVALUATE,
            Job.status == JobStatus.SUCCEEDED,
            Job.scenario == constraints.scenario,
            or_(Result.valid.is_(None), Result.valid.is_(True)),
        )
        .order_by(Job.finished_at, Job.id)  # oldest first, so the last run of a group is its newest
    )
    if constraints.task is not None:
        query = query.where(RegisteredModel.task == constraints.task)
    if constraints.dataset is not None:
        query = query.where(Job.dataset_name == constraints.dataset)
    counted = counted_evaluations(viewer)
    if counted is not None:
        query = query.where(counted)
    groups: dict[tuple[Any, ...], list[Any]] = {}
    with session_scope(settings.database) as session:
        for row in session.execute(query):
            groups.setdefault(tuple(row[: len(_KEY)]), []).append(row)
    candidates = []
    for key, rows in groups.items():
        medians = [_median(row[len(_KEY) + i] for row in rows) for i in range(len(_MEASURES))]
        candidates.append(Candidate(*key, len(rows), *medians, latest_job_id=rows[-1][-1]))
    return candidates


# --- constraints, the front and the ranking: pure functions of the candidates ----------------------------------


@dataclass(frozen=True)
class Objective:
    """A candidate attribute the front trades off, and whether more of it is better."""

    name: str
    maximize: bool


TOP1 = Objective("top1", maximize=True)
P99 = Objective("p99_ms", maximize=False)
COST = Objective("cost_per_1000_items", maximize=False)


_CHECKS = (
    # (constraint, candidate attribute, whether the value must reach the limit from above)
    ("min_top1", "top1", True),
    ("max_p99_ms", "p99_ms", False),
    ("max_cost", "cost_per_1000_items", False),
    ("max_joules", "joules_per_item", False),
)


def exclusion_reasons(candidate: Candidate, constraints: Constraints) -> list[str]:
    """Why `candidate` fails the constraints (empty: it meets them), as reason keys like `p99_ms_above_max`."""
    reasons = []
    for constraint, attribute, at_least in _CHECKS:
        limit = getattr(constraints, constraint)
        if limit is None:
            continue
        value = getattr(candidate, attribute)
        if value is None:
            reasons.append(f"{attribute}_unknown")
        elif value < limit if at_least else value > limit:
            reasons.append(f"{attribute}_{'below_min' if at_least else 'above_max'}")
    return reasons


def describe_reason(reason: str, constraints: Constraints) -> str:
    """A reason key in words, with the limit it was held to."""
    c = constraints
    descriptions = {
        "top1_below_min": f"top-1 below {_number_text(c.min_top1, 100)}%",
        "top1_unknown": "no top-1 measured (a dataset without labels, or a task without classes)",
        "p99_ms_above_max": f"p99 latency above {_number_text(c.max_p99_ms)} ms",
        "p99_ms_unknown": "no p99 latency measured",
        "cost_per_1000_items_above_max": f"cost per 1,000 items above {_number_text(c.max_cost)}",
        "cost_per_1000_items_unknown": "no cost (CARML_HARDWARE_PRICES had no price for the hardware tag)",
        "joules_per_item_above_max": f"energy per item above {_number_text(c.max_joules)} J",
        "joules_per_item_unknown": "no energy measured (the hardware has no energy counter)",
    }
    return descriptions.get(reason, reason)


def _number_text(value: float | None, scale: float = 1) -> str:
    return "?" if value is None else f"{value * scale:g}"


@dataclass(frozen=True)
class Ranked:
    """A candidate that meets the constraints, its place in the ranking and whether it is on the front."""

    rank: int
    pareto: bool
    candidate: Candidate

    def as_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "pareto": self.pareto, **asdict(self.candidate)}


RANKED_COLUMNS = ("rank", "pareto", *(f.name for f in fields(Candidate)))


@dataclass(frozen=True)
class Recommendation:
    """The ranked candidates, what the front was computed over, and how many were excluded and why."""

    constraints: Constraints
    considered: int
    ranked: list[Ranked]
    objectives: tuple[str, ...]
    note: str | None
    excluded: dict[str, int] = field(default_factory=dict)  # reason -> candidates failing it
    excluded_total: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "constraints": asdict(self.constraints),
            "considered": self.considered,
            "objectives": list(self.objectives),
            "note": self.note,
            "candidates": [r.as_dict() for r in self.ranked],
            "excluded": {
                "total": self.excluded_total,
                "reasons": [
                    {"reason": key, "description": describe_reason(key, self.constraints), "candidates": count}
                    for key, count in self.excluded.items()
                ],
            },
        }


def _last(value: float | None, descending: bool = False) -> tuple[bool, float]:
    """A sort key that puts unknown values last, in either direction."""
    return (value is None, 0.0 if value is None else (-value if descending else value))


def ranking_key(ranked: tuple[bool, Candidate]) -> tuple[Any, ...]:
    """Front members first; then top-1 (higher first), p99 (lower first), cost (lower first), throughput
    (higher first), unknown values last in each; names last, so that the order is the same on every run."""
    pareto, c = ranked
    return (
        not pareto,
        _last(c.top1, descending=True),
        _last(c.p99_ms),
        _last(c.cost_per_1000_items),
        _last(c.throughput_items_per_s, descending=True),
        (c.model, c.framework, c.hardware_tag, c.batch_size, c.dataset or ""),
    )


def rank_candidates(candidates: Sequence[Candidate], constraints: Constraints) -> Recommendation:
    """Exclude the candidates that fail the constraints, mark the Pareto front of the rest, and rank them.

    The front trades top-1 against p99, and against cost only when every remaining candidate has one: a
    candidate without a cost could be neither dominated on cost nor dominate others on it.
    """
    excluded: dict[str, int] = {}
    meeting: list[Candidate] = []
    for candidate in candidates:
        reasons = exclusion_reasons(candidate, constraints)
        for reason in reasons:
            excluded[reason] = excluded.get(reason, 0) + 1
        if not reasons:
            meeting.append(candidate)
    objectives = [TOP1, P99]
    note = None
    without_cost = sum(c.cost_per_1000_items is None for c in meeting)
    if not without_cost:
        objectives.append(COST)
    else:
        note = (
            f"cost is left out of the Pareto front: {without_cost} of {len(meeting)} candidates have no cost "
            "(set CARML_HARDWARE_PRICES for their hardware tags)"
        )
    points = [[getattr(c, o.name) for o in objectives] for c in meeting]
    front = pareto_front(points, [o.maximize for o in objectives])
    ordered = sorted(zip(front, meeting, strict=True), key=ranking_key)
    return Recommendation(
        constraints=constraints,
        considered=len(candidates),
        ranked=[Ranked(i, pareto, c) for i, (pareto, c) in enumerate(ordered, start=1)],
        objectives=tuple(o.name for o in objectives),
        note=note,
        excluded=dict(sorted(excluded.items(), key=lambda item: (-item[1], item[0]))),
        excluded_total=len(candidates) - len(meeting),
    )


def recommend(settings: Settings, constraints: Constraints, viewer: Caller | None = None) -> Recommendation:
    """The measured candidates that meet `constraints`, ranked, with the Pareto front marked; from the runs
    `viewer` may count (see `measured_candidates`)."""
    return rank_candidates(measured_candidates(settings, constraints, viewer), constraints)
