"""The Pareto front and the ranking as pure functions: domination, ties, missing values, the cost objective."""

from __future__ import annotations

import math

from carml.pareto import pareto_front
from carml.recommend import Candidate, Constraints, rank_candidates

TOP1_P99 = (True, False)  # higher top-1 is better, lower p99 is better


def test_a_point_is_on_the_front_unless_another_is_as_good_everywhere_and_better_somewhere() -> None:
    points = [(0.90, 5.0), (0.95, 10.0), (0.95, 12.0), (0.80, 4.0), (0.85, 6.0)]
    assert pareto_front(points, TOP1_P99) == [True, True, False, True, False]
    assert pareto_front([], TOP1_P99) == []


def test_equal_points_are_on_the_front_together() -> None:
    assert pareto_front([(0.9, 5.0), (0.9, 5.0), (0.9, 6.0)], TOP1_P99) == [True, True, False]
    # Equal in one objective: the other decides.
    assert pareto_front([(0.9, 5.0), (0.9, 4.0)], TOP1_P99) == [False, True]


def test_a_point_missing_a_value_is_never_on_the_front_and_dominates_nothing() -> None:
    points = [(None, 1.0), (0.99, None), (0.5, 10.0), (math.nan, 0.1)]
    assert pareto_front(points, TOP1_P99) == [False, False, True, False]


def test_a_cheaper_point_survives_when_cost_is_an_objective() -> None:
    dear, cheap = (0.95, 5.0, 1.0), (0.90, 8.0, 0.5)
    assert pareto_front([dear, cheap], (True, False, False)) == [True, True]
    assert pareto_front([dear[:2], cheap[:2]], TOP1_P99) == [True, False]


def _candidate(name: str, top1: float | None, p99: float | None, cost: float | None, **more: object) -> Candidate:
    fields = {
        "model": name,
        "framework": "onnxruntime",
        "hardware_tag": "cpu",
        "batch_size": 1,
        "dataset": "digits",
        "task": "image-classification",
        "runs": 1,
        "top1": top1,
        "p99_ms": p99,
        "throughput_items_per_s": 100.0,
        "cost_per_1000_items": cost,
        "joules_per_item": None,
        "latest_job_id": f"job-{name}",
    }
    return Candidate(**{**fields, **more})  # type: ignore[arg-type]


def test_ranking_puts_the_front_first_then_top1_then_p99() -> None:
    candidates = [
        _candidate("slow-accurate", 0.99, 20.0, 1.0),
        _candidate("dominated", 0.90, 9.0, 1.0),
        _candidate("fast", 0.91, 2.0, 1.0),
        _candidate("also-dominated", 0.90, 9.0, 2.0),
    ]
    found = rank_candidates(candidates, Constraints())
    assert [(r.rank, r.candidate.model, r.pareto) for r in found.ranked] == [
        (1, "slow-accurate", True),
        (2, "fast", True),
        (3, "dominated", False),  # same top-1 and p99 as the next: cheaper first
        (4, "also-dominated", False),
    ]
    assert found.objectives == ("top1", "p99_ms", "cost_per_1000_items") and found.note is None


def test_cost_is_an_objective_only_when_every_candidate_has_one() -> None:
    candidates = [_candidate("priced", 0.95, 5.0, 0.5), _candidate("unpriced", 0.95, 5.0, None)]
    found = rank_candidates(candidates, Constraints())
    assert found.objectives == ("top1", "p99_ms")
    assert found.note is not None and "1 of 2 candidates have no cost" in found.note
    # Tied on both objectives: both on the front; the one with a known cost ranks first.
    assert [(r.candidate.model, r.pareto) for r in found.ranked] == [("priced", True), ("unpriced", True)]
    assert rank_candidates(candidates, Constraints(max_cost=1.0)).objectives == (
        "top1",
        "p99_ms",
        "cost_per_1000_items",
    )


def test_a_candidate_missing_a_value_a_constraint_needs_is_excluded_with_that_reason() -> None:
    candidates = [
        _candidate("no-top1", None, 5.0, 0.5),
        _candidate("no-p99", 0.9, None, None),
        _candidate("ok", 0.9, 5, 0.5),
    ]
    found = rank_candidates(candidates, Constraints(min_top1=0.5, max_p99_ms=10.0, max_cost=1.0))
    assert [r.candidate.model for r in found.ranked] == ["ok"]
    assert found.excluded == {"cost_per_1000_items_unknown": 1, "p99_ms_unknown": 1, "top1_unknown": 1}
    assert found.excluded_total == 2 and found.considered == 3
    # Without constraints nothing is excluded, and the candidates missing a value are simply not on the front.
    loose = rank_candidates(candidates, Constraints())
    assert {r.candidate.model: r.pareto for r in loose.ranked} == {"ok": True, "no-top1": False, "no-p99": False}
