"""On an accelerator, a batch's answers are postprocessed and scored while the model runs the next batch: the same
answers, in the same order, with the same counts and errors as when everything runs in turn."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from carml.datasets import DatasetItem, OpenedDataset
from carml.datasets.base import array_reader
from carml.evaluation.runner import EvaluationOptions, run_partial
from carml.manifest import ModelManifest
from predictors.base import ItemPrediction, Predictor

LABELS = ["a", "b", "c", "d"]


class EchoPredictor(Predictor):
    """Logits are the input itself (NumPy, no framework); every `fail_every`-th call fails as a device would.
    `device` names where it runs: a plugin may run on any device it knows."""

    framework = "test-echo"
    module = "numpy"
    distributions = ("numpy",)
    fail_every = 3

    def _load(self, device: str) -> str:
        self.calls = 0
        return device

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls += 1
        if self.calls % self.fail_every == 0:
            raise RuntimeError("device lost")
        return {"logits": feeds["x"]}


MANIFEST = ModelManifest.model_validate(
    {
        "name": "echo",
        "version": "1.0.0",
        "license": "MIT",
        "task": "classification",
        "modality": "tensor",
        "framework": {"name": "test-echo"},
        "inputs": [{"name": "x", "type": "tensor", "shape": [4]}],
        "outputs": [{"name": "logits", "type": "class-logits", "labels": {"names": LABELS}}],
        "artifacts": [{"url": "unused.bin"}],
    }
)


def _dataset(count: int) -> OpenedDataset:
    rng = np.random.default_rng(7)
    vectors, labels = rng.random((count, 4)).astype(np.float32), rng.integers(0, 4, count)
    items = [DatasetItem(f"{i}", int(labels[i]), array_reader(vectors[i])) for i in range(count)]
    items[5] = DatasetItem("5", 1, array_reader(np.zeros(3, np.float32)))  # the wrong shape: an item error
    return OpenedDataset("echo-data", LABELS, items, "digest")


def _run(device: str, on_prediction: Any = None) -> tuple[Any, list[dict[str, Any]]]:
    predictor = EchoPredictor(MANIFEST, model_path=None, device=device)  # type: ignore[arg-type]
    predictor.load({"logits": LABELS})
    answers: list[dict[str, Any]] = []

    def collect(prediction: ItemPrediction, true_class: int | None) -> None:
        answers.append({**prediction.to_json(), "true_class": true_class})
        if on_prediction is not None:
            on_prediction(prediction)

    partial = run_partial(
        predictor, _dataset(61), EvaluationOptions(batch_size=4, warmup_batches=2), on_prediction=collect
    )
    return partial, answers


def test_overlapped_runs_record_what_sequential_runs_record() -> None:
    sequential, in_turn = _run("cpu")
    overlapped, beside = _run("test-accelerator")
    assert beside == in_turn and len(in_turn) > 30
    assert np.array_equal(overlapped.confusion, sequential.confusion)
    assert overlapped.errors == sequential.errors and overlapped.failed_batches == sequential.failed_batches > 0
    assert (overlapped.scored, overlapped.classified) == (sequential.scored, sequential.classified)
    keys = ("size", "warmup")
    assert [{k: b[k] for k in keys} for b in overlapped.batches] == [
        {k: b[k] for k in keys} for b in sequential.batches
    ]
    assert overlapped.timed_window is not None and overlapped.timed_window[0] <= overlapped.timed_window[1]


def test_a_failure_while_writing_answers_beside_the_model_fails_the_run() -> None:
    def full_disk(prediction: ItemPrediction) -> None:
        if prediction.item_id == "30":
            raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space left"):
        _run("test-accelerator", full_disk)
