"""A 1000-class model: ranking without a full sort, and a confusion matrix kept as its non-zero cells."""

from __future__ import annotations

import json

import numpy as np
import pytest

from carml.evaluation.metrics import ClassificationMetrics, top_k_indices
from carml.evaluation.partial import (
    EvaluationPartial,
    readable_metrics,
    sparse_confusion,
    stored_metrics,
    summarize,
)


@pytest.mark.parametrize("seed", range(200))
def test_top_k_is_the_stable_full_sort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    size, k = int(rng.integers(1, 40)), int(rng.integers(1, 8))
    scores = rng.integers(0, 4, size).astype(float) if seed % 2 else rng.random(size)  # ties on odd seeds
    if seed % 5 == 0:
        scores[rng.integers(0, size)] = np.nan
    if seed % 7 == 0:
        scores[rng.integers(0, size)] = -np.inf
    assert top_k_indices(scores, k).tolist() == np.argsort(-scores, kind="stable")[:k].tolist()


def _partial(classes: int, cells: dict[tuple[int, int], int]) -> EvaluationPartial:
    confusion = np.zeros((classes, classes), dtype=np.int64)
    for (true_class, predicted), count in cells.items():
        confusion[true_class, predicted] = count
    total = int(confusion.sum())
    return EvaluationPartial(
        labels=[f"c{i}" for i in range(classes)],
        confusion=confusion,
        top5_hits=total,
        classified=total,
        scored=total,
        items_total=total,
        batches=[{"size": total, "warmup": False, "load": 1.0, "preprocess": 1.0, "predict": 2.0, "postprocess": 1.0}],
        timed_window=(10.0, 11.0),
    )


def test_a_partial_stores_its_confusion_as_cells_and_merges_as_before() -> None:
    shards = [_partial(1000, {(3, 3): 5, (3, 7): 1}), _partial(1000, {(3, 3): 2, (999, 0): 4})]
    stored = [json.loads(json.dumps(p.to_json())) for p in shards]
    assert stored[0]["confusion"] == {"classes": 1000, "cells": [[3, 3, 5], [3, 7, 1]]}
    assert len(json.dumps(stored[0])) < 20_000  # labels and cells, not a million zeros
    merged = summarize([EvaluationPartial.from_json(s) for s in stored])
    matrix = np.asarray(merged["confusion_matrix"])
    assert matrix.shape == (1000, 1000) and matrix[3, 3] == 7 and matrix[999, 0] == 4 and matrix.sum() == 12
    assert merged["top1"] == pytest.approx(7 / 12)


def test_older_dense_partials_still_merge() -> None:
    dense = _partial(3, {(0, 0): 2, (1, 2): 1}).to_json() | {"confusion": [[2, 0, 0], [0, 0, 1], [0, 0, 0]]}
    merged = summarize([EvaluationPartial.from_json(json.loads(json.dumps(dense)))])
    assert merged["confusion_matrix"] == [[2, 0, 0], [0, 0, 1], [0, 0, 0]]


def test_a_result_keeps_cells_and_shows_the_full_matrix() -> None:
    summary = summarize([_partial(1000, {(1, 2): 3, (4, 4): 1})])
    kept = json.loads(json.dumps(stored_metrics(summary)))
    assert "confusion_matrix" not in kept and kept["confusion"] == sparse_confusion(summary["confusion_matrix"])
    shown = readable_metrics(kept)
    assert shown["confusion_matrix"] == summary["confusion_matrix"] and "confusion" not in shown
    assert shown["labels"] == summary["labels"] and shown["per_class"] == summary["per_class"]
    older = {"labels": ["a", "b"], "confusion_matrix": [[1, 0], [0, 1]]}
    assert readable_metrics(older) == older and readable_metrics(None) == {}


def test_metrics_rank_like_a_full_sort_with_ties() -> None:
    metrics = ClassificationMetrics([str(i) for i in range(1000)])
    scores = np.zeros(1000)
    scores[[10, 20, 30]] = 1.0  # a three-way tie at the top: the lowest index is the answer
    assert metrics.add(20, scores) == 10
    assert metrics.top5_hits == 1 and metrics.confusion[20, 10] == 1


def test_a_result_shows_its_confusion_as_cells_or_not_at_all_in_place() -> None:
    summary = summarize([_partial(1000, {(1, 2): 3, (4, 4): 1})])
    kept = json.loads(json.dumps(stored_metrics(summary)))
    kept = {"confusion": {"cells": kept["confusion"]["cells"], "classes": 1000}, "labels": kept["labels"]}  # as JSONB
    cells = readable_metrics(kept, "cells")
    assert list(cells) == ["confusion", "labels"]  # where the stored key was
    assert json.dumps(cells["confusion"]) == '{"classes": 1000, "cells": [[1, 2, 3], [4, 4, 1]]}'
    assert readable_metrics(kept, "none") == {"labels": kept["labels"]}
    older = {"labels": ["a", "b"], "confusion_matrix": [[1, 0], [0, 2]], "per_class": []}
    assert readable_metrics(older, "cells") == {
        "labels": ["a", "b"],
        "confusion": {"classes": 2, "cells": [[0, 0, 1], [1, 1, 2]]},
        "per_class": [],
    }
    assert readable_metrics(older, "none") == {"labels": ["a", "b"], "per_class": []}
    assert readable_metrics({"predictions": []}, "cells") == {"predictions": []}


def test_a_merge_straight_to_cells_stores_what_the_full_matrix_would() -> None:
    shards = [_partial(1000, {(3, 3): 5, (3, 7): 1}), _partial(1000, {(3, 3): 2, (999, 0): 4})]
    as_cells = summarize(shards, confusion="cells")
    assert "confusion_matrix" not in as_cells
    assert as_cells["confusion"] == {"classes": 1000, "cells": [[3, 3, 7], [3, 7, 1], [999, 0, 4]]}
    assert stored_metrics(as_cells) == stored_metrics(summarize(shards))
    assert list(as_cells) == [k if k != "confusion_matrix" else "confusion" for k in summarize(shards)]
