"""digits-cnn in every framework: accurate, mutually consistent, and the same on tensors and PNG files."""

from __future__ import annotations

from typing import Any

import pytest

from carml.evaluation.runner import EvaluationOptions
from carml.runs import evaluate_model
from carml.settings import load_settings

FRAMEWORKS = ("pytorch", "onnxruntime", "tensorflow")


def _evaluate(dataset: str, framework: str, cache_dir) -> tuple[dict[str, Any], dict[str, int]]:
    predicted: dict[str, int] = {}

    def remember(prediction, true_class) -> None:
        predicted[prediction.item_id] = int(prediction.class_scores.argmax())

    settings = load_settings({"CARML_CACHE_DIR": str(cache_dir)})
    result = evaluate_model(
        settings,
        "digits-cnn",
        dataset,
        framework=framework,
        options=EvaluationOptions(batch_size=32),
        on_prediction=remember,
    )
    return result, predicted


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], tuple[dict[str, Any], dict[str, int]]]:
    cache = tmp_path_factory.mktemp("cache")
    return {(d, f): _evaluate(d, f, cache) for d in ("digits", "digits-png") for f in FRAMEWORKS}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_digits_cnn_is_accurate(runs, framework: str) -> None:
    result, _ = runs[("digits", framework)]
    assert result["items"] == 360 and result["errors"] == 0
    assert result["top1"] >= 0.95
    assert result["top5"] >= result["top1"]


def test_frameworks_agree_item_by_item(runs) -> None:
    reference = runs[("digits", "onnxruntime")][1]
    for framework in ("pytorch", "tensorflow"):
        other = runs[("digits", framework)][1]
        agreement = sum(reference[i] == other[i] for i in reference) / len(reference)
        assert agreement >= 0.995, f"{framework} agrees with onnxruntime on {agreement:.1%} of items"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_png_path_gives_the_same_accuracy(runs, framework: str) -> None:
    tensors, _ = runs[("digits", framework)]
    images, _ = runs[("digits-png", framework)]
    assert images["items"] == 360 and images["errors"] == 0
    assert abs(images["top1"] - tensors["top1"]) <= 0.005


def test_result_carries_metrics_timings_and_record(runs) -> None:
    result, _ = runs[("digits-png", "onnxruntime")]
    assert len(result["per_class"]) == 10
    assert sum(map(sum, result["confusion_matrix"])) == 360
    assert all(0 <= c["recall"] <= 1 and c["support"] > 0 for c in result["per_class"])
    latency = result["latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"]
    assert latency["count"] == 11  # 12 batches of 32 (the last one partial), the first is warm-up
    warmup = result["warmup"]
    assert (warmup["batches"], warmup["items"], warmup["excluded_from_timing"], warmup["failed_batches"]) == (
        1,
        32,
        True,
        0,
    )
    assert len(warmup["predict_ms"]) == 1 and warmup["predict_ms"][0] > 0
    assert result["throughput_items_per_s"] > 0
    assert set(result["stages_ms"]) == {"load", "preprocess", "predict", "postprocess"}
    record = result["reproducibility"]
    for key in (
        "python",
        "framework_version",
        "cpu_model",
        "manifest_sha256",
        "dataset_digest",
        "batch_size",
        "seed",
        "gpus",
    ):
        assert key in record
    assert len(record["manifest_sha256"]) == 64
