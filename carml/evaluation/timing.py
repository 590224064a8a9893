"""Latency summaries as MLModelScope and MLPerf report them: percentiles, a trimmed mean, throughput."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def trimmed_mean(values: Sequence[float], proportion: float = 0.2) -> float:
    """Mean after dropping `proportion` of the values from each end (MLModelScope's 20 % default)."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    cut = int(len(ordered) * proportion)
    kept = ordered[cut : len(ordered) - cut] if len(ordered) > 2 * cut else ordered
    return float(kept.mean())


def latency_summary(values_ms: Sequence[float]) -> dict[str, Any]:
    """p50/p90/p99, 20 % trimmed mean, mean, min, max and count of a list of milliseconds."""
    if not values_ms:
        return {
            "count": 0,
            "p50": None,
            "p90": None,
            "p99": None,
            "trimmed_mean": None,
            "mean": None,
            "min": None,
            "max": None,
        }
    array = np.asarray(values_ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(array, [50, 90, 99])
    return {
        "count": int(array.size),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "trimmed_mean": trimmed_mean(array),
        "mean": float(array.mean()),
        "min": float(array.min()),
        "max": float(array.max()),
    }
