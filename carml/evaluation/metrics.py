"""Classification metrics accumulated item by item: top-1, top-5, per-class precision/recall, confusion."""

from __future__ import annotations

from typing import Any

import numpy as np


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` highest scores, highest first, ties by lower index.

    The same as `np.argsort(-scores, kind="stable")[:k]` without sorting all of them: for a 1000-class model
    the full sort was most of each item's scoring time. Only the scores at or above the k-th highest are sorted.
    """
    if k < scores.size:
        kth_highest = np.partition(scores, scores.size - k)[scores.size - k]
        candidates = np.flatnonzero(scores >= kth_highest)
        if candidates.size >= k:  # fewer only with NaN scores, which partition and argsort place differently
            return candidates[np.argsort(-scores[candidates], kind="stable")[:k]]
    return np.argsort(-scores, kind="stable")[:k]


class ClassificationMetrics:
    """Running counts for a dataset with `labels`; call `add` per scored item, `summary` at the end."""

    def __init__(self, labels: list[str]):
        self.labels = labels
        self.confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
        self.top5_hits = 0
        self.count = 0

    @classmethod
    def from_counts(cls, labels: list[str], confusion: np.ndarray, top5_hits: int, count: int) -> ClassificationMetrics:
        """Rebuild from merged counts (e.g. the sum of several shards' confusion matrices)."""
        metrics = cls(labels)
        metrics.confusion = np.asarray(confusion, dtype=np.int64).reshape(len(labels), len(labels))
        metrics.top5_hits, metrics.count = top5_hits, count
        return metrics

    def add(self, true_class: int, class_scores: np.ndarray) -> int:
        """Record one prediction; returns the predicted class."""
        ranked = top_k_indices(class_scores, 5)
        predicted = int(ranked[0])
        self.count += 1
        if true_class in ranked[:5]:
            self.top5_hits += 1
        if predicted < len(self.labels):
            self.confusion[true_class, predicted] += 1
        return predicted

    def summary(self, confusion: str = "matrix") -> dict[str, Any]:
        """Top-1, top-5, per-class figures and the confusion matrix: in full as `confusion_matrix`, or with
        `confusion="cells"` as its non-zero cells under `confusion` (`confusion_cells`), which a
        1,000-class model's million cells need not be turned into Python lists for."""
        shown = self._confusion_shown(confusion)
        if self.count == 0:
            return {"top1": None, "top5": None, "per_class": [], **shown}
        correct = np.diag(self.confusion)
        predicted_totals = self.confusion.sum(axis=0)
        true_totals = self.confusion.sum(axis=1)
        per_class = [
            {
                "label": label,
                "support": int(true_totals[i]),
                "precision": float(correct[i] / predicted_totals[i]) if predicted_totals[i] else None,
                "recall": float(correct[i] / true_totals[i]) if true_totals[i] else None,
            }
            for i, label in enumerate(self.labels)
        ]
        return {
            "top1": float(correct.sum() / self.count),
            # With fewer than five classes every answer is in the top five; report it as such.
            "top5": float(self.top5_hits / self.count),
            "per_class": per_class,
            **shown,
        }

    def _confusion_shown(self, confusion: str) -> dict[str, Any]:
        if confusion == "cells":
            return {"confusion": confusion_cells(self.confusion)}
        return {"confusion_matrix": self.confusion.tolist()}


def confusion_cells(counts: np.ndarray) -> dict[str, Any]:
    """{"classes": n, "cells": [[true, predicted, count], ...]} for the non-zero cells of an n x n matrix."""
    rows, columns = np.nonzero(counts)
    return {"classes": len(counts), "cells": np.stack([rows, columns, counts[rows, columns]], axis=1).tolist()}
