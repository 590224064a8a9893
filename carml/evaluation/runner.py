"""Evaluate a loaded predictor on a dataset: accuracy, per-stage timings, latency, throughput."""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from carml.datasets import DatasetItem, OpenedDataset
from carml.errors import CarmlError, DatasetError
from carml.evaluation.metrics import ClassificationMetrics
from carml.evaluation.partial import EvaluationPartial, summarize
from carml.evaluation.pipeline import PreparedBatch, prefetched_batches
from carml.evaluation.record import reproducibility_record
from carml.manifest import LoadedManifest, ModelManifest
from predictors.base import ItemPrediction, Predictor, PreparedItem


@dataclass(frozen=True)
class EvaluationOptions:
    """How to run an evaluation. Warm-up batches count for accuracy but not for timing."""

    batch_size: int = 32
    limit: int | None = None
    warmup_batches: int = 1
    seed: int = 0
    shuffle: bool = False
    prefetch_depth: int = 4
    # Input threads; 0: batches are prepared inline. None: by device — two beside an accelerator, where the CPU is
    # free for decoding; on the CPU inline while the input work is light against the model's, else one
    # (see INLINE_INPUT_SHARE).
    prefetch_workers: int | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise CarmlError(f"batch size must be at least 1, got {self.batch_size}")
        if self.limit is not None and self.limit < 1:
            raise CarmlError(f"limit must be at least 1, got {self.limit}")
        if self.warmup_batches < 0:
            raise CarmlError(f"warm-up batches cannot be negative, got {self.warmup_batches}")
        if self.prefetch_depth < 1 or (self.prefetch_workers is not None and self.prefetch_workers < 0):
            raise CarmlError("prefetch depth must be at least 1, and prefetch workers at least 0 (0: inline)")


Progress = Callable[[int, int], None]
PredictBatch = Callable[[Sequence[PreparedItem]], list[dict[str, np.ndarray]]]
ShouldStop = Callable[[], bool]
OnPrediction = Callable[[ItemPrediction, int | None], None]


def class_mapping(dataset_labels: list[str], model_labels: list[str] | None) -> list[int]:
    """Dataset class index -> model class index, matched by label name when the model names its classes."""
    if not model_labels:
        return list(range(len(dataset_labels)))
    missing = [label for label in dataset_labels if label not in model_labels]
    if missing:
        raise DatasetError(
            f"dataset classes {missing[:5]} are not classes of the model (model labels: {model_labels[:10]} ...)"
        )
    return [model_labels.index(label) for label in dataset_labels]


def _classification_labels(predictor: Predictor) -> list[str] | None:
    for spec in predictor.manifest.outputs:
        if spec.type in ("class-logits", "class-probabilities"):
            return predictor.labels.get(spec.name)
    raise CarmlError(f"{predictor.manifest.key} has no classification output; accuracy runs need one")


# Batches predicted but not yet postprocessed, at most, when postprocessing runs beside the model.
MAX_UNSCORED_BATCHES = 2


class _Recorder:
    """Accumulates per-batch results while the run goes on.

    With `overlap` (a model on an accelerator), a batch is postprocessed and scored on a thread of its own while
    the model runs the next one, in batch order: the host's cores are idle while the device computes, and the
    device no longer waits for the answers to be written. On a CPU both would compete for the same cores.
    """

    def __init__(
        self,
        metrics: ClassificationMetrics,
        mapping: list[int],
        on_prediction: OnPrediction | None,
        overlap: bool = False,
    ):
        self.metrics, self.mapping, self.on_prediction = metrics, mapping, on_prediction
        self.errors: list[dict[str, str]] = []
        self.batches: list[dict[str, Any]] = []  # timings of the batches the model ran on
        self.failed_batches = 0
        self.scored = 0
        self._post = ThreadPoolExecutor(1, thread_name_prefix="carml-postprocess") if overlap else None
        self._unscored: deque[Future[None]] = deque()

    def add_errors(self, errors: list[tuple[str, str]]) -> None:
        self.errors.extend({"item": item, "reason": reason} for item, reason in errors)

    def run_batch(self, predictor: Predictor, batch: PreparedBatch, warmup: bool, predict: PredictBatch) -> None:
        """Predict, postprocess and score one batch; only batches the model ran on count for timing."""
        if not batch.items:
            self._then(lambda: self.add_errors(batch.errors))
            return
        predict_started_at, started = time.time(), time.perf_counter()
        try:
            raw_outputs = predict(batch.items)
        except Exception as exc:  # a framework error on this batch: count its items, keep going
            reason = f"prediction failed: {type(exc).__name__}: {exc}"
            self._then(lambda: self._failed(batch, reason))
            return
        predict_ms = (time.perf_counter() - started) * 1000
        self._then(lambda: self._record(predictor, batch, warmup, raw_outputs, predict_ms, predict_started_at))

    def _then(self, step: Callable[[], None]) -> None:
        """Run `step` now, or on the postprocessing thread after the steps before it."""
        if self._post is None:
            step()
            return
        while len(self._unscored) >= MAX_UNSCORED_BATCHES:
            self._unscored.popleft().result()  # also raises what went wrong there (e.g. writing the answers)
        self._unscored.append(self._post.submit(step))

    def drain(self) -> None:
        """Wait until every batch predicted so far is recorded."""
        while self._unscored:
            self._unscored.popleft().result()

    def close(self) -> None:
        if self._post is not None:
            self._post.shutdown(wait=True, cancel_futures=True)

    def _failed(self, batch: PreparedBatch, reason: str) -> None:
        self.add_errors(batch.errors)
        self.failed_batches += 1
        self.add_errors([(item.item_id, reason) for item in batch.items])

    def _record(
        self,
        predictor: Predictor,
        batch: PreparedBatch,
        warmup: bool,
        raw_outputs: list[dict[str, np.ndarray]],
        predict_ms: float,
        predict_started_at: float,
    ) -> None:
        self.add_errors(batch.errors)
        postprocess_started_at, started = time.time(), time.perf_counter()
        for item, raw, true_class in zip(batch.items, raw_outputs, batch.true_classes, strict=True):
            try:
                prediction = predictor.postprocess(item, raw)
            except Exception as exc:  # e.g. labels that do not fit the output: the item is an error, not the run
                self.add_errors([(item.item_id, f"postprocessing failed: {exc}")])
                continue
            self._score(prediction, true_class)
        self.batches.append(
            {
                "size": len(batch.items),
                "warmup": warmup,
                "load": batch.load_ms,
                "preprocess": batch.preprocess_ms,
                "predict": predict_ms,
                "postprocess": (time.perf_counter() - started) * 1000,
                "decode": batch.decode_ms,  # included in preprocess; traces show it apart
                # When each stage began (epoch seconds): traces place the spans at their real times.
                "started": {
                    "load": batch.started_at,
                    "predict": predict_started_at,
                    "postprocess": postprocess_started_at,
                },
            }
        )

    def _score(self, prediction: ItemPrediction, true_class: int | None) -> None:
        # Metrics live in the model's class space: a prediction of a class the dataset lacks is simply wrong.
        model_class = self.mapping[true_class] if true_class is not None else None
        if model_class is not None and prediction.class_scores is not None:
            self.metrics.add(model_class, prediction.class_scores)
        self.scored += 1
        if self.on_prediction is not None:
            self.on_prediction(prediction, model_class)


def _select_items(dataset: OpenedDataset, options: EvaluationOptions) -> list[DatasetItem]:
    items = list(dataset.items)
    if options.shuffle:
        order = np.random.default_rng(options.seed).permutation(len(items))
        items = [items[i] for i in order]
    if options.limit is not None:
        items = items[: options.limit]
    if not items:
        why = f"; first refused item: {dataset.rejected[0][0]}: {dataset.rejected[0][1]}" if dataset.rejected else ""
        raise DatasetError(f"dataset {dataset.name} has no readable items{why}")
    return items


#: On the CPU, batches are prepared inline while their reading and preprocessing take less than this share of
#: the model's time. NB: a model on the CPU runs its own threads on every core: an input thread beside it takes
#: cores from the model's threads, which then wait for each other at every operator; for a ResNet-18 (input ~4 % of
#: the model's time) inline input gave 1.00-1.03 of a plain loop's throughput, one input thread 0.90-0.91. When the
#: input work is heavy against the model (small models on encoded images), overlapping it gains more than it costs.
INLINE_INPUT_SHARE = 0.5
INLINE_DECIDED_AFTER = 2  # batches timed (the warm-up one included) before choosing


def _input_is_light(batches: list[dict[str, Any]]) -> bool:
    """Whether the batches so far spent less than INLINE_INPUT_SHARE of the model's time on their input (True until
    INLINE_DECIDED_AFTER of them have run)."""
    if len(batches) < INLINE_DECIDED_AFTER:
        return True
    timed = batches[-INLINE_DECIDED_AFTER:]
    input_ms = sum(batch["load"] + batch["preprocess"] for batch in timed)
    return input_ms < INLINE_INPUT_SHARE * sum(batch["predict"] for batch in timed)


def run_partial(
    predictor: Predictor,
    dataset: OpenedDataset,
    options: EvaluationOptions | None = None,
    *,
    item_range: tuple[int, int] | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    on_prediction: OnPrediction | None = None,
    predict: PredictBatch | None = None,
) -> EvaluationPartial:
    """Run `predictor` over the dataset's items (or `item_range` of them, a shard) and return raw counts.

    `should_stop` is polled between batches, so cancelling takes effect within one batch. `predict` runs
    the model on a batch instead of `predictor.predict` (an operator profiler's, for framework traces).
    """
    options = options or EvaluationOptions()
    model_labels = _classification_labels(predictor)
    mapping = class_mapping(dataset.labels, model_labels)
    items = _select_items(dataset, options)
    rejected = list(dataset.rejected)
    if item_range is not None:
        items = items[item_range[0] : item_range[1]]
        rejected = rejected if item_range[0] == 0 else []  # listing rejections are reported by the first shard
    overlap = (predictor.device or "cpu") != "cpu"  # an accelerator: answers are written while it computes
    recorder = _Recorder(ClassificationMetrics(model_labels or dataset.labels), mapping, on_prediction, overlap)
    recorder.add_errors(rejected)
    done, cancelled = 0, False
    started, started_epoch = time.perf_counter(), time.time()
    warmup_ended = started_epoch  # timing starts once the warm-up batches are done
    workers, inline_while = options.prefetch_workers, None
    if workers is None and overlap:
        workers = 2  # beside an accelerator the CPU is free for decoding
    elif workers is None:
        workers, inline_while = 1, lambda: _input_is_light(recorder.batches)
    batches = prefetched_batches(
        predictor, items, options.batch_size, workers, options.prefetch_depth, inline_while=inline_while
    )
    # closing() stops the prefetch threads before the caller closes the predictor, even on errors.
    with contextlib.closing(batches), contextlib.closing(recorder):
        for index, batch in enumerate(batches):
            if should_stop is not None and should_stop():
                cancelled = True
                break
            warmup = index < options.warmup_batches
            recorder.run_batch(predictor, batch, warmup, predict or predictor.predict)
            if warmup:
                recorder.drain()  # the warm-up batch's answers too are out of the timed window
                warmup_ended = time.time()
            done += len(batch.items) + len(batch.errors)
            if progress is not None:
                progress(done, len(items))
        recorder.drain()
    metrics = recorder.metrics
    only_warmup = all(b["warmup"] for b in recorder.batches)
    timed_window = (started_epoch if only_warmup else warmup_ended, time.time()) if recorder.batches else None
    return EvaluationPartial(
        labels=list(metrics.labels),
        confusion=metrics.confusion,
        top5_hits=metrics.top5_hits,
        classified=metrics.count,
        scored=recorder.scored,
        items_total=len(items) + len(rejected),
        errors=recorder.errors,
        batches=recorder.batches,
        failed_batches=recorder.failed_batches,
        timed_window=timed_window,
        wall_s=time.perf_counter() - started,
        cancelled=cancelled,
    )


def evaluate(
    model: LoadedManifest[ModelManifest],
    predictor: Predictor,
    dataset: OpenedDataset,
    options: EvaluationOptions | None = None,
    *,
    model_load_ms: float | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    on_prediction: OnPrediction | None = None,
) -> dict[str, Any]:
    """Run `predictor` over `dataset` in this process and return the JSON-ready evaluation result."""
    options = options or EvaluationOptions()
    partial = run_partial(
        predictor, dataset, options, progress=progress, should_stop=should_stop, on_prediction=on_prediction
    )
    if partial.scored == 0 and partial.errors:
        raise CarmlError(f"no item of {dataset.name} could be evaluated; first error: {partial.errors[0]['reason']}")
    return {
        **result_header(model, predictor.framework, dataset.name, predictor.device, options.batch_size),
        **summarize([partial]),
        "model_load_ms": model_load_ms,
        "reproducibility": reproducibility_record(
            framework=predictor.framework,
            framework_version=predictor.availability().version,
            device=predictor.device,
            manifest_digest=model.digest,
            dataset_digest=dataset.digest,
            batch_size=options.batch_size,
            seed=options.seed,
            extra={"limit": options.limit, "shuffle": options.shuffle, "warmup_batches": options.warmup_batches},
        ),
    }


def result_header(
    model: LoadedManifest[ModelManifest], framework: str, dataset: str, device: str | None, batch_size: int
) -> dict[str, Any]:
    """The identifying fields every evaluation result starts with."""
    return {
        "model": model.manifest.name,
        "model_version": model.manifest.version,
        "framework": framework,
        "dataset": dataset,
        "device": device,
        "batch_size": batch_size,
        "claimed": {"top1": model.manifest.attributes.top1, "top5": model.manifest.attributes.top5},
    }
