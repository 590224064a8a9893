"""LoadGen-style scenarios on the real digits-cnn (ONNX Runtime): metrics, minimums, seeds, warm-up, windows."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from carml.artifacts import ArtifactCache
from carml.catalog import Catalog
from carml.datasets import OpenedDataset
from carml.evaluation.scenario_outcome import split_windows, stability
from carml.evaluation.scenario_server import poisson_arrivals
from carml.evaluation.scenarios import ScenarioError, ScenarioOptions, run_scenario, sample_order, scenario_options
from carml.runs import open_dataset_by_name, open_predictor
from carml.settings import load_settings
from predictors.base import Predictor

QUICK = {"min_duration_s": 0.3, "min_query_count": 32}


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Predictor, OpenedDataset]]:
    settings = load_settings({"CARML_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))})
    catalog, cache = Catalog.load(settings.manifest_dirs), ArtifactCache(settings)
    predictor, _ = open_predictor(catalog.model("digits-cnn", "onnxruntime"), cache, "cpu")
    with predictor:
        yield predictor, open_dataset_by_name("digits", catalog, cache)


def _run(digits, scenario: str, batch_size: int = 1, **options):
    predictor, dataset = digits
    return run_scenario(predictor, dataset, ScenarioOptions(scenario, **options), batch_size=batch_size)


def test_single_stream_reports_p90_query_latency_over_enough_queries(digits) -> None:
    partial = _run(digits, "single-stream", batch_size=32, **QUICK)
    outcome = partial.scenario
    assert outcome["verdict"] == "VALID" and outcome["valid"] and outcome["reasons"] == []
    assert outcome["queries"]["timed"] >= 32 and outcome["duration_s"] >= 0.3
    assert outcome["metric"]["name"] == "p90_latency_ms"
    assert outcome["metric"]["value"] == pytest.approx(outcome["latency_ms"]["p90"]) and outcome["metric"]["value"] > 0
    assert outcome["latency_ms"]["count"] == outcome["queries"]["timed"]
    assert outcome["settings"]["batch_size"] == 1  # one sample per query, whatever the job's batch size
    timed = partial.timed_batches()
    assert timed and all(b["size"] == 1 and b["load"] == 0.0 and b["predict"] > 0 for b in timed)
    assert set(timed[0]["started"]) == {"predict", "postprocess"}
    # Top-1 on the queried samples: every answer is scored, and digits-cnn is right on nearly all of them.
    assert partial.classified == partial.scored == outcome["queries"]["timed"] + outcome["queries"]["warmup"]
    assert np.trace(np.asarray(partial.confusion)) / partial.classified > 0.9


def test_offline_runs_batches_of_the_batch_size_and_reports_throughput(digits) -> None:
    partial = _run(digits, "offline", batch_size=16, min_duration_s=0.3, min_query_count=200)
    outcome = partial.scenario
    assert outcome["valid"] and outcome["metric"]["name"] == "throughput_samples_per_s"
    assert all(b["size"] == 16 for b in partial.batches)
    assert outcome["timed_samples"] == 16 * outcome["queries"]["timed"] >= 200
    assert outcome["metric"]["value"] == pytest.approx(outcome["timed_samples"] / outcome["duration_s"])
    assert partial.timed_items() == outcome["timed_samples"]


def test_the_same_seed_issues_the_same_samples_and_another_seed_others(digits) -> None:
    quick = {"min_duration_s": 0.05, "min_query_count": 20}
    first, again, other = (_run(digits, "single-stream", seed=s, **quick).scenario for s in (7, 7, 8))
    assert first["sample_order"]["first"] == again["sample_order"]["first"] != other["sample_order"]["first"]
    # The digest is of the whole issued sequence, which is the seeded order's prefix.
    issued = first["sample_order"]["issued"]
    expected = sample_order(7, first["samples"]["loaded"], issued)
    assert first["sample_order"]["first"] == expected[:16].tolist()
    import hashlib

    assert first["sample_order"]["sha256"] == hashlib.sha256(expected.astype("<i8").tobytes()).hexdigest()
    # Each pass over the sample set is a fresh shuffle of all of it.
    assert sorted(sample_order(7, 50, 100)[:50]) == list(range(50)) == sorted(sample_order(7, 50, 100)[50:])


def test_a_run_lasts_the_minimum_duration_and_the_minimum_query_count(digits) -> None:
    by_count = _run(digits, "single-stream", min_duration_s=0.01, min_query_count=400).scenario
    assert by_count["queries"]["timed"] >= 400
    by_time = _run(digits, "single-stream", min_duration_s=0.4, min_query_count=1).scenario
    assert by_time["duration_s"] >= 0.4 and by_time["queries"]["timed"] > 1
    offline = _run(digits, "offline", batch_size=32, min_duration_s=0.01, min_query_count=100).scenario
    assert offline["timed_samples"] >= 100  # offline counts samples: four batches of 32


def test_a_run_that_reaches_the_cap_is_invalid(digits) -> None:
    outcome = _run(digits, "single-stream", min_duration_s=0.2, max_duration_s=0.2, min_query_count=10**6).scenario
    assert outcome["verdict"] == "INVALID" and outcome["capped"]
    assert "reached the 0.2 s cap (max_duration_s)" in outcome["reasons"][0]
    assert "at least 1000000 queries" in outcome["reasons"][0]


class _ColdStart:
    """The real predictor's predict, made slow for its first `slow` calls (a model that warms up)."""

    def __init__(self, predictor: Predictor, slow: int, delay_s: float = 0.15):
        self.predictor, self.slow, self.delay_s, self.calls = predictor, slow, delay_s, 0

    def __call__(self, batch):
        self.calls += 1
        if self.calls <= self.slow:
            time.sleep(self.delay_s)
        return self.predictor.predict(batch)


def test_warm_up_queries_are_left_out_of_timing(digits) -> None:
    predictor, dataset = digits
    options = {"min_duration_s": 0.1, "min_query_count": 20}
    warmed = run_scenario(
        predictor,
        dataset,
        ScenarioOptions("single-stream", warmup_queries=3, **options),
        predict=_ColdStart(predictor, 3),
    )
    assert warmed.scenario["latency_ms"]["max"] < 150  # the three slow queries were warm-up
    assert [b["warmup"] for b in warmed.batches[:4]] == [True, True, True, False]
    assert warmed.scenario["queries"]["warmup"] == 3 and all(b["predict"] >= 150 for b in warmed.batches[:3])
    cold = run_scenario(
        predictor,
        dataset,
        ScenarioOptions("single-stream", warmup_queries=0, **options),
        predict=_ColdStart(predictor, 3),
    )
    assert cold.scenario["latency_ms"]["max"] >= 150  # without warm-up they are timed


class _SlowsDown:
    """The real predictor's predict, 2 ms slower per call from `after_s` after its first call: a run that drifts."""

    def __init__(self, predictor: Predictor, after_s: float):
        self.predictor, self.after_s, self.slow_from = predictor, after_s, None

    def __call__(self, batch):
        self.slow_from = self.slow_from or time.monotonic() + self.after_s
        if time.monotonic() > self.slow_from:
            time.sleep(0.002)
        return self.predictor.predict(batch)


def test_windows_that_disagree_make_the_run_unstable_but_not_invalid(digits) -> None:
    predictor, dataset = digits
    options = ScenarioOptions("single-stream", min_duration_s=0.6, min_query_count=10)
    outcome = run_scenario(predictor, dataset, options, predict=_SlowsDown(predictor, after_s=0.3)).scenario
    windows = outcome["windows"]
    assert len(windows) == 3 and sum(w["queries"] for w in windows) == outcome["queries"]["timed"]
    assert windows[2]["value"] > 2 and windows[0]["value"] < 2  # p90 latency before and after the slow-down
    assert outcome["stable"] is False and outcome["stability"] == "UNSTABLE" and outcome["valid"]
    values = [w["value"] for w in windows]
    assert outcome["spread"] == pytest.approx(max(values) / min(values) - 1)
    assert "differ by" in outcome["stability_note"] and "more than 5%" in outcome["stability_note"]


def test_stability_compares_the_windows_max_over_min() -> None:
    assert stability([100.0, 104.0, 102.0]) == (True, pytest.approx(0.04))
    assert stability([100.0, 106.0, 100.0]) == (False, pytest.approx(0.06))
    assert stability([100.0, None, 100.0]) == (None, None)  # a window without queries cannot be judged
    windows = split_windows(np.array([0.1, 0.5, 0.9, 1.0, 2.5, 2.99, 3.0]), 3.0)
    assert [w.tolist() for w in windows] == [[0, 1, 2], [3], [4, 5, 6]]


def test_a_server_at_a_low_rate_answers_every_query_within_the_bound(digits) -> None:
    options = {"target_qps": 200, "latency_bound_ms": 1000, "min_duration_s": 0.3, "min_query_count": 20}
    partial = _run(digits, "server", **options)
    outcome = partial.scenario
    assert outcome["verdict"] == "VALID", outcome["reasons"]
    queries = outcome["queries"]
    assert queries["planned"] == queries["issued"] == queries["timed"] >= 20
    # The schedule is seeded: the same options give the same arrivals, spanning the minimum duration.
    arrivals = poisson_arrivals(0, 200, 0.3, 20)
    assert len(arrivals) == queries["planned"] and arrivals[-1] >= 0.3e9 > arrivals[-2]
    assert outcome["duration_s"] >= arrivals[-1] / 1e9
    assert outcome["metric"]["name"] == "p99_latency_ms" and outcome["metric"]["value"] <= 1000


class _StopAfter:
    """A `should_stop` that says stop after some polls (as a cancel arriving mid-run would)."""

    def __init__(self, polls: int):
        self.polls = polls

    def __call__(self) -> bool:
        self.polls -= 1
        return self.polls < 0


def test_a_stopped_run_says_it_was_cancelled(digits) -> None:
    predictor, dataset = digits
    for scenario, extra in (("single-stream", {}), ("server", {"target_qps": 100, "latency_bound_ms": 100})):
        options = ScenarioOptions(scenario, min_duration_s=30, **extra)
        started = time.monotonic()
        partial = run_scenario(predictor, dataset, options, should_stop=_StopAfter(3))
        assert partial.cancelled and time.monotonic() - started < 5, scenario


@pytest.mark.parametrize(
    ("scenario", "values", "field", "message"),
    [
        ("bogus", {}, "scenario", "scenario must be one of accuracy, single-stream, offline, server"),
        ("server", {"latency_bound_ms": 50}, "target_qps", "needs target_qps"),
        ("server", {"target_qps": 10}, "latency_bound_ms", "needs latency_bound_ms"),
        ("server", {"target_qps": 0, "latency_bound_ms": 5}, "target_qps", "greater than 0"),
        ("server", {"target_qps": 10**6, "latency_bound_ms": 5, "min_duration_s": 60}, "target_qps", "at most"),
        ("offline", {"min_duration_s": -1}, "min_duration_s", "greater than 0"),
        ("offline", {"min_query_count": 2.5}, "min_query_count", "whole number"),
        ("offline", {"sample_count": 0}, "sample_count", "greater than 0"),
        ("offline", {"seed": -3}, "seed", "at least 0"),
        ("offline", {"max_duration_s": 1, "min_duration_s": 2}, "max_duration_s", "at least min_duration_s"),
        ("single-stream", {"target_qps": 10}, "target_qps", "server scenario only"),
        ("accuracy", {"latency_bound_ms": 10}, "latency_bound_ms", "not accuracy"),
    ],
)
def test_bad_options_name_their_field(scenario: str, values: dict, field: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message) as caught:
        scenario_options(scenario, values)
    assert caught.value.field == field


def test_unset_options_take_the_documented_defaults() -> None:
    options = scenario_options("offline", {"seed": 3})
    assert options is not None and options.to_json() == {
        "scenario": "offline",
        "target_qps": None,
        "latency_bound_ms": None,
        "min_duration_s": 2.0,
        "min_query_count": 64,
        "max_duration_s": 60.0,
        "sample_count": 1024,
        "warmup_queries": 1,
        "seed": 3,
    }
    assert scenario_options("accuracy", {}) is None
    docs = (Path(__file__).resolve().parents[2] / "docs" / "scenarios.md").read_text()
    for default in ("`min_duration_s` | 2", "`min_query_count` | 64", "`max_duration_s` | 60", "`sample_count` | 1024"):
        assert default in docs
