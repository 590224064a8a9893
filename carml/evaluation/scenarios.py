"""LoadGen-style performance scenarios: single-stream, offline and server runs of a loaded predictor.

The rules are MLPerf LoadGen's. The performance sample set (at most `sample_count` items) is read and
preprocessed into memory before timing starts, and that load is not timed. Warm-up queries are left out
of timing. A run lasts at least `min_duration_s` AND at least `min_query_count` queries (offline: samples),
and is cut at `max_duration_s`. A seed fixes the order samples are issued in (and the server's arrival
schedule): the same seed gives the same sequence of sample indices, recorded as a digest in the outcome.

- single-stream: one sample per query, the next issued when the previous completes; metric: p90 latency.
- offline: every sample available at once, run in batches of the job's batch size; metric: samples/s.
- server: one-sample queries arriving as a Poisson process at `target_qps`; VALID only if every issued
  query completed and the p99 latency (queueing included) is within `latency_bound_ms`.
"""

from __future__ import annotations

import gc
import hashlib
import time
from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np

from carml.datasets import OpenedDataset
from carml.db.models import Scenario
from carml.errors import DatasetError
from carml.evaluation.metrics import ClassificationMetrics
from carml.evaluation.partial import EvaluationPartial
from carml.evaluation.pipeline import PreparedBatch, prepare_batch
from carml.evaluation.runner import OnPrediction, Progress, ShouldStop, class_mapping
from carml.evaluation.scenario_log import EpochClock, PredictBatch, QueryLog, answer
from carml.evaluation.scenario_options import (
    PERFORMANCE_SCENARIOS,
    SCENARIO_OPTION_FIELDS,
    ScenarioError,
    ScenarioOptions,
    scenario_options,
)
from carml.evaluation.scenario_outcome import RunEnd, Timings, invalid_reasons, outcome
from carml.evaluation.scenario_server import ServerRun, poisson_arrivals
from predictors.base import Predictor

__all__ = [
    "PERFORMANCE_SCENARIOS",
    "SCENARIO_OPTION_FIELDS",
    "SampleOrder",
    "ScenarioError",
    "ScenarioOptions",
    "run_scenario",
    "sample_order",
    "scenario_options",
]

ORDER_STREAM = 0  # the seed's first random stream (the second schedules server arrivals)


def sample_order(seed: int, population: int, count: int) -> np.ndarray:
    """The first `count` sample indices a run with `seed` issues over a sample set of `population`."""
    return SampleOrder(seed, population).take(count)


class SampleOrder:
    """The order samples are issued in: one seeded shuffle of the sample set after another, so the same seed
    gives the same sequence and every sample is used as often as the others."""

    def __init__(self, seed: int, population: int):
        self.rng = np.random.default_rng([seed, ORDER_STREAM])
        self.population = population
        self.buffer = np.empty(0, dtype=np.int64)
        self.taken = array("q")

    def take(self, count: int) -> np.ndarray:
        while len(self.buffer) < count:
            self.buffer = np.concatenate([self.buffer, self.rng.permutation(self.population)])
        taken, self.buffer = self.buffer[:count], self.buffer[count:]
        self.taken.extend(taken.tolist())
        return taken

    def record(self, issued: int) -> dict[str, Any]:
        """The first `issued` indices taken, as a digest (and the first few, for people)."""
        indices = np.frombuffer(self.taken, dtype=np.int64)[:issued]
        digest = hashlib.sha256(indices.astype("<i8").tobytes()).hexdigest()
        return {"seed_stream": ORDER_STREAM, "issued": int(issued), "sha256": digest, "first": indices[:16].tolist()}


def load_sample_set(predictor: Predictor, dataset: OpenedDataset, count: int, limit: int | None) -> PreparedBatch:
    """Read and preprocess the performance sample set into memory (not timed): the first `count` items (or
    `limit`, if smaller). Unreadable items are left out and reported."""
    chosen = list(dataset.items)[: min(count, limit or count)]
    loaded = prepare_batch(predictor, chosen)
    loaded.errors = list(dataset.rejected) + loaded.errors
    if not loaded.items:
        why = f"; first refused item: {loaded.errors[0][0]}: {loaded.errors[0][1]}" if loaded.errors else ""
        raise DatasetError(f"dataset {dataset.name} has no readable items{why}")
    return loaded


class _Control:
    """`should_stop` and progress as percent of the minimum run (reported only when it changes)."""

    def __init__(self, progress: Progress | None, should_stop: ShouldStop | None):
        self.progress, self.stop_check, self.reported = progress, should_stop, -1

    def should_stop(self) -> bool:
        return self.stop_check is not None and self.stop_check()

    def report(self, fraction: float, final: bool = False) -> None:
        percent = 100 if final else min(99, int(fraction * 100))
        if self.progress is not None and percent != self.reported:
            self.reported = percent
            self.progress(percent, 100)


@dataclass
class _Run:
    """One scenario run: the predictor, the samples in memory, their order, the log and the stop/progress hooks."""

    predictor: Predictor
    predict: PredictBatch  # the predictor's, or an operator profiler's (framework traces)
    loaded: PreparedBatch
    order: SampleOrder
    options: ScenarioOptions
    query_size: int  # samples per query: the batch size offline, else 1
    log: QueryLog
    control: _Control

    def query(self, warmup: bool) -> None:
        samples = self.order.take(self.query_size).tolist()
        batch = [self.loaded.items[s] for s in samples]
        self.log.add(answer(self.predictor, self.predict, batch, samples), warmup=warmup)

    def warm_up(self) -> bool:
        """Run the warm-up queries (offline: batches); False when stopped meanwhile."""
        for _ in range(self.options.warmup_queries):
            if self.control.should_stop():
                return False
            self.query(warmup=True)
        return True

    def in_turn(self) -> RunEnd:
        """Single-stream and offline: each query is issued when the previous one completes, until both minimums
        are met, the cap is reached, or the run is stopped."""
        options, log = self.options, self.log
        min_ns, max_ns = options.min_duration_s * 1e9, options.max_duration_s * 1e9
        started = log.start_timing()
        while True:
            if self.control.should_stop():
                return RunEnd(cancelled=True)
            self.query(warmup=False)
            elapsed = (log.last_completed_ns or started) - started  # the clock the reported duration uses
            if log.timed_samples >= options.min_query_count and elapsed >= min_ns:
                return RunEnd()
            if elapsed >= max_ns:
                return RunEnd(capped=True)
            self.control.report(min(log.timed_samples / options.min_query_count, elapsed / min_ns))

    def server(self) -> RunEnd:
        """Poisson arrivals at the target rate, served in turn (see carml.evaluation.scenario_server)."""
        options = self.options
        assert options.target_qps is not None
        arrivals = poisson_arrivals(options.seed, options.target_qps, options.min_duration_s, options.min_query_count)
        server = ServerRun(
            self.predictor, self.predict, self.loaded.items, self.order.take(len(arrivals)), arrivals, self.log
        )
        ending = server.run(options.max_duration_s, self.control.should_stop, self.control.report)
        return RunEnd(ending == "capped", ending == "cancelled", planned=len(arrivals), issued=server.issued)

    def issued_samples(self, end: RunEnd) -> int:
        """Samples actually issued: a server run takes its whole schedule's samples up front."""
        unissued = (end.planned or 0) - (end.issued or 0)
        return len(self.order.taken) - unissued


def _classes(predictor: Predictor, dataset: OpenedDataset) -> tuple[list[str], list[int]] | None:
    """(labels, dataset class -> model class) when the model classifies; None when top-1 cannot be scored."""
    for spec in predictor.manifest.outputs:
        if spec.type in ("class-logits", "class-probabilities"):
            model_labels = predictor.labels.get(spec.name)
            return model_labels or dataset.labels, class_mapping(dataset.labels, model_labels)
    return None


def run_scenario(
    predictor: Predictor,
    dataset: OpenedDataset,
    options: ScenarioOptions,
    *,
    batch_size: int = 1,
    limit: int | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    on_prediction: OnPrediction | None = None,
    predict: PredictBatch | None = None,
) -> EvaluationPartial:
    """Run `options.scenario` and return what it measured; the outcome (verdict, windows ...) is `.scenario`.

    `should_stop` is polled between queries (server: every 20 ms, by the calling thread). `progress` gets
    (percent of the minimum run, 100). `on_prediction` gets each sample's first answer, after the run.
    `predict` runs the model instead of `predictor.predict` (an operator profiler's, for framework traces).
    """
    wall_started = time.perf_counter()
    classes = _classes(predictor, dataset)
    loaded = load_sample_set(predictor, dataset, options.sample_count, limit)
    run = _Run(
        predictor=predictor,
        predict=predict or predictor.predict,
        loaded=loaded,
        order=SampleOrder(options.seed, len(loaded.items)),
        options=options,
        query_size=batch_size if options.scenario == Scenario.OFFLINE else 1,
        log=QueryLog(EpochClock()),
        control=_Control(progress, should_stop),
    )
    gc.collect()  # NB: collect now rather than in the middle of timed queries
    end = RunEnd(cancelled=True)
    if run.warm_up():
        end = run.server() if options.scenario == Scenario.SERVER else run.in_turn()
    if not end.cancelled:
        run.control.report(1.0, final=True)
    partial = _partial(run, end, dataset, classes, on_prediction)
    partial.wall_s = time.perf_counter() - wall_started
    return partial


def _timings(log: QueryLog) -> tuple[Timings, int]:
    """The timed queries' numbers, and when timing ended (the last completion, or now if none returned)."""
    started = log.timing_started_ns or time.perf_counter_ns()
    completed = np.frombuffer(log.completed_ns, dtype=np.int64) if len(log.completed_ns) else np.empty(0, np.int64)
    ended = log.last_completed_ns or time.perf_counter_ns()
    timings = Timings(
        latency_ms=np.frombuffer(log.latency_ms, dtype=np.float64) if len(log.latency_ms) else np.empty(0),
        completed_s=(completed - started) / 1e9,
        sizes=np.frombuffer(log.sizes, dtype=np.int64) if len(log.sizes) else np.empty(0, np.int64),
        duration_s=max(0.0, (ended - started) / 1e9),
    )
    return timings, ended


def _outcome(run: _Run, end: RunEnd, timings: Timings) -> dict[str, Any]:
    """The verdict plus the facts that reproduce the run: settings, seed, query counts, samples, sample order."""
    options, log = run.options, run.log
    first_failure = log.failures[0]["reason"] if log.failures else None
    reasons = invalid_reasons(options, timings, end, log.timed_queries, log.failed, first_failure)
    return {
        **outcome(options, timings, end, reasons),
        "settings": {**options.to_json(), "batch_size": run.query_size},
        "seed": options.seed,
        "queries": {
            "warmup": options.warmup_queries,
            "timed": log.timed_queries,
            "failed": log.failed,
            "planned": end.planned,
            "issued": end.issued,
        },
        "samples": {
            "loaded": len(run.loaded.items),
            "unreadable": len(run.loaded.errors),
            "answered": len(log.first_answers),  # distinct samples answered: the per-item outputs hold one line each
            "load_ms": run.loaded.load_ms,
            "preprocess_ms": run.loaded.preprocess_ms,
        },
        "sample_order": run.order.record(run.issued_samples(end)),
    }


def _partial(
    run: _Run,
    end: RunEnd,
    dataset: OpenedDataset,
    classes: tuple[list[str], list[int]] | None,
    on_prediction: OnPrediction | None,
) -> EvaluationPartial:
    """Score every answered sample (top-1 on the queried samples), hand out first answers, assemble the partial."""
    log, loaded = run.log, run.loaded
    timings, ended_ns = _timings(log)
    metrics = ClassificationMetrics(classes[0] if classes else dataset.labels)
    for sample, scores in log.answers:
        true_class = loaded.true_classes[sample]
        if classes is not None and true_class is not None and scores is not None:
            metrics.add(classes[1][true_class], scores)
    if on_prediction is not None:
        for sample in sorted(log.first_answers):
            true_class = loaded.true_classes[sample]
            mapped = classes[1][true_class] if classes is not None and true_class is not None else None
            on_prediction(log.first_answers[sample], mapped)
    errors = [{"item": item, "reason": reason} for item, reason in loaded.errors] + log.failures
    started_ns = log.timing_started_ns
    return EvaluationPartial(
        labels=list(metrics.labels),
        confusion=metrics.confusion,
        top5_hits=metrics.top5_hits,
        classified=metrics.count,
        scored=len(log.answers),
        items_total=len(log.answers) + len(errors),
        errors=errors,
        batches=log.stage_records(),
        failed_batches=log.failed,
        timed_window=(log.clock.epoch(started_ns), log.clock.epoch(ended_ns)) if started_ns else None,
        cancelled=end.cancelled,
        scenario=_outcome(run, end, timings),
    )
