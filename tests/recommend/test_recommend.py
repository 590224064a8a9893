"""Recommendations over real finished evaluations: candidates and their medians, constraints and why candidates
were excluded, the front, and the same on PostgreSQL."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from measured_runs import (
    GPU_JOULES_PER_ITEM,
    PRICED_TAG,
    UNPRICED_TAG,
    MeasuredRuns,
    measured_settings,
    run_evaluations,
)

from carml.recommend import (
    Candidate,
    ConstraintError,
    Constraints,
    Recommendation,
    measured_candidates,
    parse_constraints,
    recommend,
)
from carml.reporting import run_report


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> MeasuredRuns:
    """Real finished evaluations (see measured_runs); the tests here only read them."""
    return run_evaluations(measured_settings(tmp_path_factory.mktemp("recommend")))


def _by_key(found: Recommendation) -> dict[tuple[str, int], Candidate]:
    return {(r.candidate.hardware_tag, r.candidate.batch_size): r.candidate for r in found.ranked}


def _dominates(a: Candidate, b: Candidate, objectives: tuple[str, ...]) -> bool:
    better = {"top1": lambda x, y: x >= y, "p99_ms": lambda x, y: x <= y, "cost_per_1000_items": lambda x, y: x <= y}
    pairs = [(getattr(a, o), getattr(b, o)) for o in objectives]
    return all(better[o](x, y) for o, (x, y) in zip(objectives, pairs, strict=True)) and any(x != y for x, y in pairs)


def _check_front(found: Recommendation) -> None:
    """Every candidate off the front is dominated by one on it; none on it is dominated by any; front first."""
    front = [r.candidate for r in found.ranked if r.pareto]
    rest = [r.candidate for r in found.ranked if not r.pareto]
    assert front, "a non-empty set of candidates with known values always has a front"
    for c in rest:
        assert any(_dominates(f, c, found.objectives) for f in front), c
    for c in front:
        assert not any(_dominates(o, c, found.objectives) for o in front + rest), c
    assert [r.pareto for r in found.ranked] == sorted((r.pareto for r in found.ranked), reverse=True)
    assert [r.rank for r in found.ranked] == list(range(1, len(found.ranked) + 1))


def test_candidates_are_medians_of_their_succeeded_valid_runs(measured: MeasuredRuns) -> None:
    candidates = {(c.hardware_tag, c.batch_size): c for c in measured_candidates(measured.settings, Constraints())}
    assert sorted(candidates) == sorted(measured.jobs)
    rows = {row["job_id"]: row for row in run_report(measured.settings, "evaluation_summary")}
    for key, job_ids in measured.jobs.items():
        candidate, runs = candidates[key], [rows[j] for j in job_ids]
        assert candidate.runs == len(job_ids) and candidate.latest_job_id == job_ids[-1]
        assert candidate.model == "digits-cnn" and candidate.task == "image-classification"
        assert candidate.dataset == "digits" and candidate.framework == "onnxruntime"
        assert candidate.p99_ms == pytest.approx(statistics.median(r["latency_p99_ms"] for r in runs))
        assert candidate.top1 == pytest.approx(statistics.median(r["top1"] for r in runs))
        assert candidate.throughput_items_per_s == pytest.approx(
            statistics.median(r["throughput_items_per_s"] for r in runs)
        )
    # The INVALID run is a row of the report but no run of its candidate.
    assert measured.invalid_job in rows and candidates[(UNPRICED_TAG, 10)].runs == 1
    # Cost comes from CARML_HARDWARE_PRICES: only the priced tag has one.
    assert candidates[(PRICED_TAG, 10)].cost_per_1000_items > 0 and candidates[(PRICED_TAG, 30)].cost_per_1000_items > 0
    assert candidates[(UNPRICED_TAG, 10)].cost_per_1000_items is None
    assert candidates[(PRICED_TAG, 30)].joules_per_item == GPU_JOULES_PER_ITEM
    assert candidates[(PRICED_TAG, 10)].joules_per_item is None


def test_without_constraints_every_candidate_is_ranked_and_cost_is_left_out_of_the_front(measured) -> None:
    found = recommend(measured.settings, Constraints())
    assert found.considered == 3 and found.excluded_total == 0 and len(found.ranked) == 3
    assert found.objectives == ("top1", "p99_ms")
    assert found.note is not None and "1 of 3 candidates have no cost" in found.note
    _check_front(found)


def test_a_cost_limit_excludes_the_unpriced_tag_and_makes_cost_an_objective(measured) -> None:
    found = recommend(measured.settings, Constraints(max_cost=1.0))
    assert sorted(_by_key(found)) == [(PRICED_TAG, 10), (PRICED_TAG, 30)]
    assert found.excluded == {"cost_per_1000_items_unknown": 1} and found.excluded_total == 1
    assert found.objectives == ("top1", "p99_ms", "cost_per_1000_items") and found.note is None
    _check_front(found)
    cheapest = min(c.cost_per_1000_items for c in _by_key(found).values())
    below = recommend(measured.settings, Constraints(max_cost=cheapest / 2))
    assert not below.ranked and below.excluded == {"cost_per_1000_items_above_max": 2, "cost_per_1000_items_unknown": 1}


def test_limits_are_inclusive_and_each_failure_is_counted(measured) -> None:
    everything = _by_key(recommend(measured.settings, Constraints()))
    fastest = min(everything.values(), key=lambda c: c.p99_ms)
    found = recommend(measured.settings, Constraints(max_p99_ms=fastest.p99_ms))
    assert [r.candidate for r in found.ranked] == [fastest] and found.ranked[0].pareto
    assert found.excluded == {"p99_ms_above_max": 2}

    top1 = min(c.top1 for c in everything.values())
    assert top1 < 1.0  # digits-cnn misses at least one of the first 60 digits
    assert len(recommend(measured.settings, Constraints(min_top1=top1)).ranked) == 3
    none = recommend(measured.settings, Constraints(min_top1=1.0, max_cost=1.0))
    # The unpriced candidate fails both constraints and counts under each; the total counts candidates.
    assert none.excluded == {"top1_below_min": 3, "cost_per_1000_items_unknown": 1} and none.excluded_total == 3


def test_energy_limits_need_an_energy_counter(measured) -> None:
    found = recommend(measured.settings, Constraints(max_joules=GPU_JOULES_PER_ITEM))
    assert list(_by_key(found)) == [(PRICED_TAG, 30)]
    assert found.excluded == {"joules_per_item_unknown": 2}
    assert recommend(measured.settings, Constraints(max_joules=GPU_JOULES_PER_ITEM / 2)).excluded == {
        "joules_per_item_above_max": 1,
        "joules_per_item_unknown": 2,
    }


def test_task_dataset_and_scenario_choose_the_candidates_through_bound_parameters(measured) -> None:
    def considered(**choice: str) -> int:
        return recommend(measured.settings, Constraints(**choice)).considered  # type: ignore[arg-type]

    assert considered(task="image-classification") == 3 and considered(dataset="digits") == 3
    assert considered(task="object-detection") == 0 and considered(dataset="digits-png") == 0
    assert considered(scenario="offline") == 0
    assert considered(dataset="digits' OR '1'='1") == 0


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"min_top1": "0.95"}, Constraints(min_top1=0.95)),
        ({"min_top1": " 95% "}, Constraints(min_top1=0.95)),
        ({"min_top1": "0"}, Constraints(min_top1=0.0)),
        (
            {"max_p99_ms": "2.5", "max_cost": "0", "max_joules": "0.1"},
            Constraints(max_p99_ms=2.5, max_cost=0, max_joules=0.1),
        ),
        (
            {"task": "image-classification", "dataset": "digits", "scenario": ""},
            Constraints("image-classification", "digits"),
        ),
        ({"min_top1": "", "max_cost": None}, Constraints()),
    ],
)
def test_constraints_are_read_from_text(values: dict[str, str | None], expected: Constraints) -> None:
    assert parse_constraints(values) == expected


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        (
            {"min_top1": "95"},
            "min_top1",
            "min_top1 '95' is above 1: give a fraction from 0 to 1 (0.95) or a percentage (95%)",
        ),
        ({"min_top1": "101%"}, "min_top1", "a percentage is from 0% to 100%"),
        ({"min_top1": "-0.1"}, "min_top1", "a fraction is from 0 to 1"),
        ({"min_top1": "high"}, "min_top1", "min_top1 'high' is not a number"),
        ({"min_top1": "nan"}, "min_top1", "is not a finite number"),
        ({"max_p99_ms": "0"}, "max_p99_ms", "max_p99_ms '0' is out of range: it must be above 0"),
        ({"max_p99_ms": "inf"}, "max_p99_ms", "is not a finite number"),
        ({"max_cost": "-1"}, "max_cost", "it must be at least 0"),
        ({"max_joules": "1 J"}, "max_joules", "max_joules '1 J' is not a number"),
        ({"task": "vision"}, "task", "task 'vision' is not one of: image-classification, "),
        ({"scenario": "batch"}, "scenario", "scenario 'batch' is not one of: accuracy, single-stream, offline, server"),
        ({"dataset": "a\x00b"}, "dataset", "dataset must be at most 100 printable characters"),
    ],
)
def test_bad_constraints_name_their_field(values: dict[str, str], field: str, message: str) -> None:
    with pytest.raises(ConstraintError) as raised:
        parse_constraints(values)
    assert raised.value.field == field and message in str(raised.value)


def test_the_cli_names_options_as_typed() -> None:
    with pytest.raises(ConstraintError, match="^--max-p99-ms 'x' is not a number"):
        parse_constraints({"max_p99_ms": "x"}, lambda name: "--" + name.replace("_", "-"))


def test_on_postgresql(tmp_path: Path, fresh_postgres_url: str) -> None:
    measured = run_evaluations(measured_settings(tmp_path, fresh_postgres_url))
    found = recommend(measured.settings, Constraints(max_cost=1.0))
    assert sorted(_by_key(found)) == [(PRICED_TAG, 10), (PRICED_TAG, 30)] and found.excluded_total == 1
    assert _by_key(found)[(PRICED_TAG, 10)].runs == 2
    _check_front(found)
    assert recommend(measured.settings, Constraints(task="image-classification", dataset="digits")).considered == 3
