"""What the job page's charts draw, computed on the server: a latency histogram, the confusion matrix, stages."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

STAGES = ("load", "preprocess", "predict", "postprocess")
MAX_BINS = 40


def timed_latencies(rows: Sequence[tuple[int, float, bool]]) -> tuple[list[float], int]:
    """Per shard, the batches that count for timing (all but warm-up, or all if every one was warm-up).

    The same rule the merged result's percentiles use; returns (milliseconds, warm-up batches left out).
    """
    by_shard: dict[int, list[tuple[float, bool]]] = {}
    for shard, ms, warmup in rows:
        by_shard.setdefault(shard, []).append((ms, warmup))
    kept: list[float] = []
    excluded = 0
    for batches in by_shard.values():
        measured = [ms for ms, warmup in batches if not warmup]
        kept.extend(measured or [ms for ms, _ in batches])
        excluded += len(batches) - len(measured) if measured else 0
    return kept, excluded


def histogram(values_ms: Sequence[float]) -> dict[str, Any] | None:
    """Bins (edges and counts) of batch latencies, about √n of them, and the p50/p90/p99 to mark on it."""
    if not values_ms:
        return None
    array = np.asarray(values_ms, dtype=np.float64)
    bins = max(1, min(MAX_BINS, math.ceil(math.sqrt(array.size))))
    low, high = float(array.min()), float(array.max())
    if high <= low:  # one distinct value: one bin around it
        bins, low, high = 1, low - max(abs(low) * 0.005, 1e-3), high + max(abs(high) * 0.005, 1e-3)
    counts, edges = np.histogram(array, bins=bins, range=(low, high))
    p50, p90, p99 = (float(v) for v in np.percentile(array, [50, 90, 99]))
    return {
        "unit": "ms",
        "edges": [float(e) for e in edges],
        "counts": [int(c) for c in counts],
        "count": int(array.size),
        "p50": p50,
        "p90": p90,
        "p99": p99,
    }


#: Up to this many classes the matrix chart draws every cell, the empty ones faintly, as a grid; past it only the
#: non-zero ones (a 1,000-class model's full grid is a million cells: tens of MB of JSON no browser draws).
FULL_GRID_CLASSES = 100


def confusion(labels: Sequence[str], counts: dict[str, Any] | None) -> dict[str, Any] | None:
    """The confusion matrix as cells {x: predicted, y: true, v: count} (the matrix chart's data), from its
    non-zero cells as a result keeps them (`readable_metrics(..., "cells")`)."""
    if not labels or not counts:
        return None
    shown = [(t, p, int(v)) for t, p, v in counts["cells"] if t < len(labels) and p < len(labels)]
    if len(labels) <= FULL_GRID_CLASSES:
        dense = {(t, p): v for t, p, v in shown}
        shown = [(t, p, dense.get((t, p), 0)) for t in range(len(labels)) for p in range(len(labels))]
    cells = [{"x": labels[p], "y": labels[t], "v": v} for t, p, v in shown]
    return {"labels": list(labels), "cells": cells, "max": max((c["v"] for c in cells), default=0)}


def top_confusions(labels: Sequence[str], counts: dict[str, Any] | None, limit: int) -> list[dict[str, Any]]:
    """The `limit` most frequent mistakes (true class, predicted class, count), most frequent first: what a page
    shows in place of a matrix too large to read."""
    mistakes = [(t, p, int(v)) for t, p, v in (counts or {}).get("cells", []) if t != p and max(t, p) < len(labels)]
    mistakes.sort(key=lambda cell: (-cell[2], cell[0], cell[1]))
    return [{"true": labels[t], "predicted": labels[p], "count": v} for t, p, v in mistakes[:limit]]


def stages(summaries: dict[str, Any]) -> dict[str, Any] | None:
    """Mean and p50 milliseconds per batch of each stage, in pipeline order."""
    present = [s for s in STAGES if (summaries.get(s) or {}).get("count")]
    if not present:
        return None
    return {
        "stages": present,
        "mean": [summaries[s].get("mean") for s in present],
        "p50": [summaries[s].get("p50") for s in present],
        "p99": [summaries[s].get("p99") for s in present],
    }
