"""Performance-scenario jobs inside a worker: what `carml.jobs.execution` calls instead of an accuracy pass.

A scenario job has one shard and runs through the same shard machinery as an accuracy pass (progress,
cancellation, the time limit, hardware sampling, traces, outputs, the merge); only the run itself and the
numbers the result row takes from it differ. The row's latency percentiles are the scenario's *query*
latencies, its throughput the achieved samples per second, and `scenario_outcome` the whole verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from carml.datasets import OpenedDataset
from carml.db.models import Job, Scenario
from carml.evaluation.partial import EvaluationPartial
from carml.evaluation.runner import EvaluationOptions, OnPrediction, Progress, ShouldStop, run_partial
from carml.evaluation.scenario_log import PredictBatch
from carml.evaluation.scenarios import ScenarioOptions, run_scenario
from carml.jobs.service import SCENARIO_PROGRESS_TOTAL
from predictors.base import Predictor

Runner = Callable[..., EvaluationPartial]  # run_partial's signature


def job_runner(job: Job) -> Runner:
    """`run_partial` for an accuracy pass; for a performance scenario, a function called the same way."""
    if job.scenario == Scenario.ACCURACY:
        return run_partial
    scenario = ScenarioOptions.from_json({**job.parameters["scenario_options"], "scenario": job.scenario})

    def run(
        predictor: Predictor,
        dataset: OpenedDataset,
        options: EvaluationOptions,
        *,
        item_range: tuple[int, int] | None = None,  # a scenario job is one shard over every item
        progress: Progress | None = None,
        should_stop: ShouldStop | None = None,
        on_prediction: OnPrediction | None = None,
        predict: PredictBatch | None = None,
    ) -> EvaluationPartial:
        return run_scenario(
            predictor,
            dataset,
            scenario,
            batch_size=options.batch_size,
            limit=options.limit,
            progress=progress,
            should_stop=should_stop,
            on_prediction=on_prediction,
            predict=predict,
        )

    return run


def progress_done(job: Job, partial: EvaluationPartial, reported: int) -> int:
    """The shard's final progress: items for an accuracy pass, percent of the minimum run for a scenario."""
    if job.scenario == Scenario.ACCURACY:
        return partial.scored + len(partial.errors)
    return reported if partial.cancelled else SCENARIO_PROGRESS_TOTAL


def output_items(partial: EvaluationPartial) -> int:
    """Lines in the shard's per-item outputs: every scored item, or each queried sample's first answer."""
    return partial.scored if partial.scenario is None else int(partial.scenario["samples"]["answered"])


def scenario_record(partial: EvaluationPartial) -> dict[str, Any]:
    """What the reproducibility record adds for a scenario: its seed, name and settings."""
    outcome = partial.scenario
    if outcome is None:
        return {}
    return {"seed": outcome["seed"], "scenario": outcome["scenario"], "scenario_settings": outcome["settings"]}


def scenario_summary(outcome: dict[str, Any] | None) -> dict[str, Any]:
    """The `summarize` keys a scenario replaces: query latencies, and the achieved samples per second."""
    if outcome is None:
        return {}
    return {"latency_ms": outcome["latency_ms"], "throughput_items_per_s": outcome["throughput_samples_per_s"]}


def scenario_columns(outcome: dict[str, Any] | None) -> dict[str, Any]:
    """The result row's scenario columns (none for an accuracy pass)."""
    if outcome is None:
        return {}
    return {"scenario_outcome": outcome, "valid": outcome["valid"], "stable": outcome["stable"]}
