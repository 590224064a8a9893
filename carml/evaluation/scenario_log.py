"""What a performance scenario's queries did, recorded cheaply enough not to disturb the queries that follow.

Each query's timestamps are kept as raw `perf_counter_ns` readings and turned into the stage records that
`run_partial` produces (`EvaluationPartial.batches`) only after the run, so stage timings, charts and traces
work on scenario jobs as they do on accuracy passes.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from predictors.base import ItemPrediction, Predictor, PreparedItem

# Stage records kept per run: enough for stage breakdowns and traces, bounded however many queries a run has.
MAX_TIMING_RECORDS = 5000
# Error entries kept for failed queries (each failure is counted; these say why).
MAX_FAILURES_KEPT = 100


class EpochClock:
    """Turns `perf_counter_ns` readings into epoch seconds (the records' `started` times)."""

    def __init__(self) -> None:
        self.epoch_s, self.origin_ns = time.time(), time.perf_counter_ns()

    def epoch(self, ns: int) -> float:
        return self.epoch_s + (ns - self.origin_ns) / 1e9


@dataclass
class Query:
    """One query as answered (or failed): its samples, when predict and postprocess began, when it completed."""

    samples: Sequence[int]
    predict_started_ns: int
    postprocess_started_ns: int
    completed_ns: int
    predictions: list[ItemPrediction] = field(default_factory=list)
    failure: str | None = None


PredictBatch = Callable[[Sequence[PreparedItem]], list[dict[str, np.ndarray]]]


def answer(predictor: Predictor, predict: PredictBatch, batch: list[PreparedItem], samples: Sequence[int]) -> Query:
    """Run one query (one sample, or an offline batch) through `predict` (the predictor's, or a profiler's) and
    the predictor's postprocessing, timing both."""
    predict_started = time.perf_counter_ns()
    postprocess_started = predict_started
    try:
        raw = predict(batch)
        postprocess_started = time.perf_counter_ns()
        predictions = [predictor.postprocess(item, output) for item, output in zip(batch, raw, strict=True)]
    except Exception as exc:  # a framework error fails this query, not the run; the outcome counts it
        return Query(samples, predict_started, postprocess_started, time.perf_counter_ns(), [], _reason(exc))
    return Query(samples, predict_started, postprocess_started, time.perf_counter_ns(), predictions)


def _reason(exc: Exception) -> str:
    return f"prediction failed: {type(exc).__name__}: {exc}"


class _EvenlySpaced:
    """Keeps every record, then every 2nd, 4th ... as more arrive, so at most `limit` span the whole run."""

    def __init__(self, limit: int):
        self.limit, self.stride, self.seen = limit, 1, 0
        self.kept: list[tuple[int, int, int, int]] = []

    def add(self, record: tuple[int, int, int, int]) -> None:
        if self.seen % self.stride == 0:
            self.kept.append(record)
            if len(self.kept) > self.limit:
                self.kept, self.stride = self.kept[::2], self.stride * 2
        self.seen += 1


class QueryLog:
    """Latency, completion time and size of every timed query; the answers to score; stage records."""

    def __init__(self, clock: EpochClock | None = None):
        self.clock = clock or EpochClock()
        self.timing_started_ns: int | None = None
        self.latency_ms = array("d")
        self.completed_ns = array("q")
        self.sizes = array("q")
        self.timed_queries = 0  # failed ones included: they were issued and returned
        self.last_completed_ns: int | None = None  # of any timed query: where the timed run ends
        self.timed_samples = 0
        self.failed = 0
        self.failures: list[dict[str, str]] = []
        self.answers: list[tuple[int, np.ndarray | None]] = []  # (sample, class scores) of every answered sample
        self.first_answers: dict[int, ItemPrediction] = {}
        self._warmup: list[tuple[int, int, int, int]] = []
        self._timed = _EvenlySpaced(MAX_TIMING_RECORDS)

    def start_timing(self) -> int:
        """Mark the end of warm-up; returns the timing start (`perf_counter_ns`)."""
        self.timing_started_ns = time.perf_counter_ns()
        return self.timing_started_ns

    def add(self, query: Query, warmup: bool, arrived_ns: int | None = None) -> None:
        """Record a query. Its latency runs from `arrived_ns` (a server query's scheduled arrival) or from issue."""
        if not warmup:
            self.timed_queries += 1
            self.timed_samples += len(query.samples)
            self.last_completed_ns = max(query.completed_ns, self.last_completed_ns or 0)
        if query.failure is not None:
            self.failed += 1
            room = MAX_FAILURES_KEPT - len(self.failures)
            self.failures.extend({"item": f"sample {s}", "reason": query.failure} for s in query.samples[:room])
            return
        record = (len(query.samples), query.predict_started_ns, query.postprocess_started_ns, query.completed_ns)
        if warmup:
            self._warmup.append(record)
        else:
            self._timed.add(record)
            start = query.predict_started_ns if arrived_ns is None else arrived_ns
            self.latency_ms.append((query.completed_ns - start) / 1e6)
            self.completed_ns.append(query.completed_ns)
            self.sizes.append(len(query.samples))
        for sample, prediction in zip(query.samples, query.predictions, strict=True):
            self.answers.append((sample, prediction.class_scores))
            self.first_answers.setdefault(sample, prediction)

    def stage_records(self) -> list[dict[str, Any]]:
        """Warm-up then timed queries as `EvaluationPartial.batches` entries (timed ones evenly thinned).

        Samples were read and preprocessed before timing started, so a query spends no time loading them.
        """
        return [self._record(r, True) for r in self._warmup] + [self._record(r, False) for r in self._timed.kept]

    def _record(self, record: tuple[int, int, int, int], warmup: bool) -> dict[str, Any]:
        size, predict_ns, postprocess_ns, completed_ns = record
        return {
            "size": size,
            "warmup": warmup,
            "load": 0.0,
            "preprocess": 0.0,
            "predict": (postprocess_ns - predict_ns) / 1e6,
            "postprocess": (completed_ns - postprocess_ns) / 1e6,
            "started": {"predict": self.clock.epoch(predict_ns), "postprocess": self.clock.epoch(postprocess_ns)},
        }
