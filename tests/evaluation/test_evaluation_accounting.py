"""How the evaluation engine counts: metrics, trimmed means, failed batches, warm-up and throughput.

Uses a tiny real predictor plugin (NumPy arithmetic, no framework) whose answers are known exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from carml.datasets import DatasetItem, OpenedDataset
from carml.evaluation.metrics import ClassificationMetrics
from carml.evaluation.runner import EvaluationOptions, evaluate
from carml.evaluation.timing import latency_summary, trimmed_mean
from carml.manifest import LoadedManifest, ModelManifest
from predictors.base import Predictor


class ArgmaxPredictor(Predictor):
    """Logits are the input itself; every `fail_every`-th call raises, as a crashing framework would."""

    framework = "test-argmax"
    module = "numpy"
    distributions = ("numpy",)
    fail_every = 0

    def _load(self, device: str) -> str:
        self.calls = 0
        return "cpu"

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            raise RuntimeError("device lost")
        return {"logits": feeds["x"]}


MANIFEST = ModelManifest.model_validate(
    {
        "name": "argmax",
        "version": "1.0.0",
        "license": "MIT",
        "task": "classification",
        "modality": "tensor",
        "framework": {"name": "test-argmax"},
        "inputs": [{"name": "x", "type": "tensor", "shape": [3]}],
        "outputs": [{"name": "logits", "type": "class-probabilities", "labels": {"names": ["a", "b", "c"]}}],
        "artifacts": [{"url": "unused.bin"}],
    }
)


def _dataset(count: int) -> OpenedDataset:
    """Item i is one-hot on class i % 3 and labelled i % 3, except every 4th item is labelled wrong."""
    items = []
    for i in range(count):
        vector = np.eye(3, dtype=np.float32)[i % 3]
        label = (i + 1) % 3 if i % 4 == 3 else i % 3
        items.append(DatasetItem(str(i), label, lambda v=vector: v))
    return OpenedDataset("synthetic", ["a", "b", "c"], items, "digest")


def _run(count: int, fail_every: int = 0, **options) -> dict:
    predictor = ArgmaxPredictor(MANIFEST, Path("unused.bin"))
    predictor.fail_every = fail_every
    predictor.load({"logits": ["a", "b", "c"]})
    loaded = LoadedManifest(MANIFEST, Path("argmax.yaml"), "0" * 64)
    return evaluate(loaded, predictor, _dataset(count), EvaluationOptions(**options))


def test_metrics_are_exact() -> None:
    result = _run(40, batch_size=8)
    assert result["items"] == 40 and result["errors"] == 0
    assert result["top1"] == pytest.approx(30 / 40)  # every 4th item is mislabelled
    assert result["top5"] == 1.0  # three classes: everything is in the top five
    matrix = np.array(result["confusion_matrix"])
    assert matrix.sum() == 40 and np.trace(matrix) == 30
    recall = {c["label"]: c["recall"] for c in result["per_class"]}
    assert recall["a"] == pytest.approx(np.trace(matrix[:1, :1]) / matrix[0].sum())


def test_failed_batches_are_errors_and_stay_out_of_timing() -> None:
    result = _run(40, fail_every=2, batch_size=8, warmup_batches=1)
    # Calls 2 and 4 of 5 fail: 16 items are errors with the framework's reason.
    assert result["items"] == 24 and result["errors"] == 16
    assert {e["reason"] for e in result["error_items"]} == {"prediction failed: RuntimeError: device lost"}
    assert result["warmup"]["failed_batches"] == 2
    # Timed batches: calls 3 and 5 (call 1 is warm-up), and throughput counts only their 16 items.
    assert result["latency_ms"]["count"] == 2
    assert result["timed_items"] == 16


def test_all_warmup_is_reported_as_such() -> None:
    result = _run(8, batch_size=8, warmup_batches=3)
    assert result["warmup"]["excluded_from_timing"] is False
    assert result["latency_ms"]["count"] == 1


def test_trimmed_mean_and_percentiles() -> None:
    values = [1.0] * 8 + [100.0, 1000.0]  # two outliers in ten: a 20 % trim removes both ends
    assert trimmed_mean(values) == 1.0
    summary = latency_summary(values)
    assert summary["p50"] == 1.0 and summary["max"] == 1000.0 and summary["count"] == 10
    assert latency_summary([])["p50"] is None


def test_top5_counts_rank_not_just_argmax() -> None:
    metrics = ClassificationMetrics([str(i) for i in range(10)])
    scores = np.arange(10, dtype=np.float64)  # class 9 best, then 8, 7, 6, 5
    metrics.add(5, scores)
    metrics.add(4, scores)
    summary = metrics.summary()
    assert summary["top1"] == 0.0 and summary["top5"] == 0.5


def test_shards_merge_into_the_single_run() -> None:
    import json

    from carml.evaluation.partial import EvaluationPartial, summarize
    from carml.evaluation.runner import run_partial

    predictor = ArgmaxPredictor(MANIFEST, Path("unused.bin"))
    predictor.load({"logits": ["a", "b", "c"]})
    dataset, options = _dataset(40), EvaluationOptions(batch_size=8)
    shards = [run_partial(predictor, dataset, options, item_range=r) for r in ((0, 16), (16, 40))]
    # Partials travel through the database as JSON.
    shards = [EvaluationPartial.from_json(json.loads(json.dumps(p.to_json()))) for p in shards]
    merged, whole = summarize(shards), _run(40, batch_size=8)
    for key in ("items", "errors", "top1", "top5", "confusion_matrix", "per_class"):
        assert merged[key] == whole[key], key
    assert merged["warmup"]["batches"] == 2  # one per shard, each excluded from timing
    assert merged["timed_items"] == 40 - 16
