"""What one run over some items produced, in a form that merges: shards report these, summaries add them up.

A single in-process evaluation is summarised through the same `summarize`, so a sharded job and a
local run report numbers computed the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from carml.evaluation.metrics import ClassificationMetrics, confusion_cells
from carml.evaluation.timing import latency_summary

STAGES = ("load", "preprocess", "predict", "postprocess")


@dataclass
class EvaluationPartial:
    """Raw counts and per-batch timings of one run (JSON-serialisable with `to_json`)."""

    labels: list[str]
    confusion: np.ndarray | list[list[int]]  # square, in the model's classes; runs give an int64 array
    top5_hits: int
    classified: int  # items with a true class and class scores: the denominator of accuracy
    scored: int  # items the model answered
    items_total: int
    errors: list[dict[str, str]] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)  # batches the model ran on
    failed_batches: int = 0
    timed_window: tuple[float, float] | None = None  # epoch seconds bounding the timed batches
    wall_s: float = 0.0
    cancelled: bool = False
    scenario: dict[str, Any] | None = None  # a performance scenario's outcome (carml.evaluation.scenarios)

    def to_json(self) -> dict[str, Any]:
        """The fields as JSON values; the confusion matrix as its non-zero cells (`sparse_confusion`).

        A 1000-class model's matrix has a million cells, nearly all zero: stored densely (and deep-copied by
        `dataclasses.asdict`) it cost a shard seconds to record, more than the model took on a small job.
        """
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["confusion"] = sparse_confusion(self.confusion)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvaluationPartial:
        window = data.get("timed_window")
        confusion = data["confusion"]
        if isinstance(confusion, dict):  # written by `to_json`; older rows hold the dense matrix
            confusion = dense_confusion(confusion)
        return cls(**{**data, "confusion": confusion, "timed_window": tuple(window) if window else None})

    def timed_batches(self) -> list[dict[str, Any]]:
        """Batches that count for timing: all but warm-up, or every batch if all were warm-up."""
        measured = [b for b in self.batches if not b["warmup"]]
        return measured or list(self.batches)

    def timed_items(self) -> int:
        """Items the timed batches answered. A scenario keeps an evenly spaced sample of its queries' records
        (however long it ran), so its own count is the true one."""
        if self.scenario is not None:
            return int(self.scenario["timed_samples"])
        return sum(b["size"] for b in self.timed_batches())


def sparse_confusion(matrix: list[list[int]] | np.ndarray) -> dict[str, Any]:
    """{"classes": n, "cells": [[true, predicted, count], ...]} for the non-zero cells of an n x n matrix."""
    counts = np.asarray(matrix, dtype=np.int64).reshape(len(matrix), len(matrix))  # no copy of an int64 array
    return confusion_cells(counts)


def dense_confusion(sparse: dict[str, Any]) -> np.ndarray:
    """The n x n matrix `sparse_confusion` describes."""
    counts = np.zeros((sparse["classes"], sparse["classes"]), dtype=np.int64)
    for true_class, predicted, count in sparse["cells"]:
        counts[true_class, predicted] = count
    return counts


def stored_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary's per-class figures as a job's result keeps them: the confusion matrix as its non-zero cells (a
    `summarize(..., confusion="cells")` has them already)."""
    kept = {k: summary[k] for k in ("labels", "per_class", "warmup", "timed_items")}
    cells = summary["confusion"] if "confusion" in summary else sparse_confusion(summary["confusion_matrix"])
    return {**kept, "confusion": cells}


#: How a result's confusion matrix is shown: in full (`confusion_matrix`, n x n), as its non-zero cells
#: (`confusion`, as `sparse_confusion` gives them), or not at all. A 1,000-class model's full matrix is a million
#: cells, ~3 MB of JSON, where its cells are as many as the items evaluated at most.
CONFUSION_VIEWS = ("matrix", "cells", "none")


def readable_metrics(metrics: dict[str, Any] | None, confusion: str = "matrix") -> dict[str, Any]:
    """A result's stored metrics with the confusion matrix shown as `confusion` asks (`CONFUSION_VIEWS`): by
    default `confusion_matrix`, the full matrix, as the pages show it (older results stored it that way already)."""
    shown = dict(metrics or {})
    if "confusion" not in shown and "confusion_matrix" not in shown:
        return shown  # a prediction's, or a result without classification metrics
    if confusion == "matrix":
        if "confusion" in shown:
            shown["confusion_matrix"] = dense_confusion(shown.pop("confusion")).tolist()
        return shown
    # In place of the stored key, so that the other keys keep their order.
    return {
        ("confusion" if key in ("confusion", "confusion_matrix") else key): _cells(key, value)
        for key, value in shown.items()
        if confusion == "cells" or key not in ("confusion", "confusion_matrix")
    }


def _cells(key: str, value: Any) -> Any:
    if key == "confusion_matrix":
        return sparse_confusion(value)
    if key == "confusion":  # as stored; a JSON column may have reordered its keys
        return {"classes": value["classes"], "cells": value["cells"]}
    return value


def summarize(partials: Sequence[EvaluationPartial], confusion: str = "matrix") -> dict[str, Any]:
    """Accuracy, latency and throughput of one or more partials as if they were a single run; the confusion
    matrix in full (`confusion_matrix`), or as its non-zero cells (`confusion`) with `confusion="cells"`."""
    first = partials[0]
    counts = np.sum([np.asarray(p.confusion, dtype=np.int64) for p in partials], axis=0)
    metrics = ClassificationMetrics.from_counts(
        first.labels, counts, sum(p.top5_hits for p in partials), sum(p.classified for p in partials)
    ).summary(confusion)
    timed = [row for p in partials for row in p.timed_batches()]
    stages = {stage: latency_summary([row[stage] for row in timed]) for stage in STAGES}
    windows = [p.timed_window for p in partials if p.timed_window is not None]
    timed_items = sum(p.timed_items() for p in partials)
    span = (max(w[1] for w in windows) - min(w[0] for w in windows)) if windows else 0.0
    warmup_rows = [row for p in partials for row in p.batches if row["warmup"]]
    errors = [e for p in partials for e in p.errors]
    return {
        "items": sum(p.scored for p in partials),
        "items_total": sum(p.items_total for p in partials),
        "errors": len(errors),
        "error_items": errors,
        "top1": metrics["top1"],
        "top5": metrics["top5"],
        "labels": first.labels,
        "per_class": metrics["per_class"],
        **{key: metrics[key] for key in ("confusion_matrix", "confusion") if key in metrics},
        "latency_ms": stages["predict"],
        "stages_ms": stages,
        "throughput_items_per_s": timed_items / span if span > 0 and timed_items else None,
        "timed_items": timed_items,
        "warmup": {
            "batches": len(warmup_rows),
            "items": sum(row["size"] for row in warmup_rows),
            "excluded_from_timing": all(any(not b["warmup"] for b in p.batches) for p in partials),
            "failed_batches": sum(p.failed_batches for p in partials),
            "predict_ms": [row["predict"] for row in warmup_rows],
        },
        "wall_s": max(p.wall_s for p in partials),
        "cancelled": any(p.cancelled for p in partials),
    }
