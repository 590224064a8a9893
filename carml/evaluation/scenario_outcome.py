"""A performance scenario's verdict: its metric, the metric in three time windows, VALID/INVALID with reasons.

Validity and stability are separate answers. VALID says the run met the scenario's rules (long enough, every
query answered, the server's latency bound held); `stable` says whether three equal time windows of the run
agree on the metric within 5 %. An unstable run is reported as UNSTABLE rather than as a fact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from carml.db.models import Scenario
from carml.evaluation.scenario_options import ScenarioOptions
from carml.evaluation.timing import latency_summary

WINDOWS = 3
STABILITY_TOLERANCE = 0.05  # windows may differ by this much (max/min - 1) and still count as agreeing


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    unit: str


METRICS = {
    Scenario.SINGLE_STREAM: Metric("p90_latency_ms", "p90 latency", "ms"),
    Scenario.OFFLINE: Metric("throughput_samples_per_s", "throughput", "samples/s"),
    Scenario.SERVER: Metric("p99_latency_ms", "p99 latency", "ms"),
}


@dataclass(frozen=True)
class Timings:
    """The timed queries of a run: latency, completion time since timing started, samples per query."""

    latency_ms: np.ndarray
    completed_s: np.ndarray
    sizes: np.ndarray
    duration_s: float


@dataclass(frozen=True)
class RunEnd:
    """How the timed part of a run ended, and (server) how many queries the schedule held and issued."""

    capped: bool = False  # stopped by max_duration_s
    cancelled: bool = False
    planned: int | None = None
    issued: int | None = None


def scenario_metric(scenario: str, latency_ms: np.ndarray, sizes: np.ndarray, duration_s: float) -> float | None:
    """The scenario's metric over some queries: p90 latency, offline throughput, or server p99 latency."""
    if len(latency_ms) == 0 or duration_s <= 0:
        return None
    if scenario == Scenario.OFFLINE:
        return float(np.sum(sizes) / duration_s)
    return float(np.percentile(latency_ms, 90 if scenario == Scenario.SINGLE_STREAM else 99))


def split_windows(completed_s: np.ndarray, duration_s: float, count: int = WINDOWS) -> list[np.ndarray]:
    """Indices of the queries completing in each of `count` equal slices of [0, duration_s]."""
    edges = np.linspace(0.0, duration_s, count + 1)
    slot = np.clip(np.searchsorted(edges, completed_s, side="right") - 1, 0, count - 1)
    return [np.flatnonzero(slot == k) for k in range(count)]


def stability(
    values: Sequence[float | None], tolerance: float = STABILITY_TOLERANCE
) -> tuple[bool | None, float | None]:
    """(stable, spread) of the windows' values, spread = max/min - 1; (None, None) when a window has no value."""
    if not values or any(v is None or v <= 0 for v in values):
        return None, None
    known = [float(v) for v in values if v is not None]
    spread = max(known) / min(known) - 1
    return spread <= tolerance, spread


def windows(scenario: str, timings: Timings) -> list[dict[str, Any]]:
    """The metric in each of three equal time windows of the timed run."""
    length = timings.duration_s / WINDOWS
    return [
        {
            "start_s": k * length,
            "end_s": (k + 1) * length,
            "queries": int(len(picked)),
            "value": scenario_metric(scenario, timings.latency_ms[picked], timings.sizes[picked], length),
        }
        for k, picked in enumerate(split_windows(timings.completed_s, timings.duration_s))
    ]


def _number(value: float) -> str:
    return f"{value:.3g}" if value < 1000 else f"{value:,.0f}"


def invalid_reasons(
    options: ScenarioOptions, timings: Timings, end: RunEnd, timed_queries: int, failed: int, first_failure: str | None
) -> list[str]:
    """Why a run is INVALID (empty when it is VALID)."""
    reasons = []
    samples = int(np.sum(timings.sizes))
    bound, qps = options.latency_bound_ms, options.target_qps
    if end.planned is not None and end.issued is not None and bound is not None and qps is not None:  # server
        unanswered = end.issued - timed_queries
        if unanswered:
            cap = f" before the {options.max_duration_s:g} s cap (max_duration_s)" if end.capped else ""
            reasons.append(f"{unanswered} of {end.issued} issued queries did not complete{cap}")
        if end.issued < end.planned:
            reasons.append(f"{end.planned - end.issued} of the {end.planned} scheduled queries were never issued")
        p99 = float(np.percentile(timings.latency_ms, 99)) if len(timings.latency_ms) else None
        if p99 is not None and p99 > bound:
            achieved = len(timings.latency_ms) / timings.duration_s if timings.duration_s > 0 else 0.0
            reasons.append(
                f"p99 latency {p99:.1f} ms exceeds the {bound:g} ms bound at {qps:g} queries/s target "
                f"(achieved {achieved:.0f}/s)"
            )
    elif end.capped:
        counted = "samples" if options.scenario == Scenario.OFFLINE else "queries"
        reasons.append(
            f"the run reached the {options.max_duration_s:g} s cap (max_duration_s) after {samples} {counted} in "
            f"{timings.duration_s:.2f} s; a valid run needs at least {options.min_query_count} {counted} and "
            f"{options.min_duration_s:g} s"
        )
    if failed:
        reasons.append(f"{failed} queries failed (first: {first_failure})")
    if timed_queries == 0:
        reasons.append("no query was answered after warm-up")
    return reasons


def _stability_note(metric: Metric, values: list[float | None], spread: float | None) -> str:
    if spread is None:
        return f"too few queries to compare the {metric.label} of {WINDOWS} windows"
    shown = ", ".join(_number(v) for v in values if v is not None)
    if spread > STABILITY_TOLERANCE:
        return (
            f"the {metric.label} of {WINDOWS} windows ({shown} {metric.unit}) differ by {spread:.1%}, "
            f"more than {STABILITY_TOLERANCE:.0%}"
        )
    return f"the {metric.label} of {WINDOWS} windows ({shown} {metric.unit}) agree within {STABILITY_TOLERANCE:.0%}"


def outcome(options: ScenarioOptions, timings: Timings, end: RunEnd, reasons: list[str]) -> dict[str, Any]:
    """The JSON-ready verdict of a run (without the sample and settings facts the caller adds)."""
    scenario = options.scenario
    metric = METRICS[Scenario(scenario)]
    value = scenario_metric(scenario, timings.latency_ms, timings.sizes, timings.duration_s)
    parts = windows(scenario, timings)
    stable, spread = stability([w["value"] for w in parts])
    samples = int(np.sum(timings.sizes))
    return {
        "scenario": scenario,
        "verdict": "INVALID" if reasons else "VALID",
        "valid": not reasons,
        "reasons": reasons,
        "stable": stable,
        "stability": {None: "unknown", True: "stable", False: "UNSTABLE"}[stable],
        "stability_note": _stability_note(metric, [w["value"] for w in parts], spread),
        "spread": spread,
        "metric": {"name": metric.name, "label": metric.label, "unit": metric.unit, "value": value},
        "windows": parts,
        "duration_s": timings.duration_s,
        "timed_samples": samples,
        "latency_ms": latency_summary(list(timings.latency_ms)),
        "throughput_samples_per_s": samples / timings.duration_s if timings.duration_s > 0 else None,
        "achieved_qps": len(timings.latency_ms) / timings.duration_s if timings.duration_s > 0 else None,
        "capped": end.capped,
    }
