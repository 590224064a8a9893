"""Where a batch's input is read and preprocessed: inline while the model's work outweighs it on the CPU (an input
thread would take cores from the model's own threads), in a thread ahead of the model when the input work is heavy,
and always in threads beside an accelerator. The answers are the same whichever way they were read."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from carml.datasets import DatasetItem, OpenedDataset
from carml.evaluation.runner import INLINE_DECIDED_AFTER, EvaluationOptions, run_partial
from predictors.base import ItemPrediction, Predictor
from tests.evaluation.test_overlapped_postprocessing import LABELS, MANIFEST

BATCH = 4


class SlowEcho(Predictor):
    """Logits are the input itself, after `model_s` of pretend model work."""

    framework = "test-echo"
    module = "numpy"
    distributions = ("numpy",)
    model_s = 0.0

    def _load(self, device: str) -> str:
        return device

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        time.sleep(self.model_s)
        return {"logits": feeds["x"]}


def _dataset(count: int, read_s: float, readers: list[str]) -> OpenedDataset:
    rng = np.random.default_rng(3)
    vectors, labels = rng.random((count, 4)).astype(np.float32), rng.integers(0, 4, count)

    def reader(index: int) -> Any:
        def read() -> np.ndarray:
            readers.append(threading.current_thread().name)
            time.sleep(read_s)
            return vectors[index]

        return read

    items = [DatasetItem(str(i), int(labels[i]), reader(i)) for i in range(count)]
    return OpenedDataset("slow-data", LABELS, items, "digest")


def _run(device: str, model_s: float, read_s: float, workers: int | None = None) -> tuple[list[str], list[Any]]:
    predictor = SlowEcho(MANIFEST, model_path=None, device=device)  # type: ignore[arg-type]
    predictor.model_s = model_s
    predictor.load({"logits": LABELS})
    readers: list[str] = []
    answers: list[Any] = []

    def collect(prediction: ItemPrediction, true_class: int | None) -> None:
        answers.append((prediction.to_json(), true_class))

    options = EvaluationOptions(batch_size=BATCH, warmup_batches=1, prefetch_workers=workers)
    run_partial(predictor, _dataset(10 * BATCH, read_s, readers), options, on_prediction=collect)
    return readers, answers


def _read_by(readers: list[str]) -> list[str]:
    """Per batch: `inline` or `thread`."""
    batches = [readers[i : i + BATCH] for i in range(0, len(readers), BATCH)]
    return [
        "inline" if all(name == threading.current_thread().name for name in batch) else "thread" for batch in batches
    ]


def test_on_the_cpu_a_heavy_model_reads_its_input_inline() -> None:
    readers, _ = _run("cpu", model_s=0.02, read_s=0.0)
    assert _read_by(readers) == ["inline"] * 10


def test_on_the_cpu_heavy_input_is_read_in_a_thread_once_measured() -> None:
    readers, answers = _run("cpu", model_s=0.0, read_s=0.003)
    read_by = _read_by(readers)
    assert read_by[:INLINE_DECIDED_AFTER] == ["inline"] * INLINE_DECIDED_AFTER
    assert set(read_by[INLINE_DECIDED_AFTER + 1 :]) == {"thread"}  # one more may be inline while the thread starts
    assert answers == _run("cpu", model_s=0.0, read_s=0.0, workers=0)[1]  # the same answers, in the same order


def test_beside_an_accelerator_input_is_always_read_in_threads() -> None:
    readers, _ = _run("test-accelerator", model_s=0.02, read_s=0.0)
    assert _read_by(readers) == ["thread"] * 10


def test_input_threads_can_be_set_either_way() -> None:
    assert _read_by(_run("cpu", model_s=0.0, read_s=0.003, workers=0)[0]) == ["inline"] * 10
    assert _read_by(_run("cpu", model_s=0.02, read_s=0.0, workers=1)[0]) == ["thread"] * 10
