"""Run a manifest's postprocessing steps: raw model output for one item -> a JSON-ready answer.

Classification gives top-k labels with probabilities; detection gives boxes in the original image's
pixels; frame probabilities give speech segments in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from carml.evaluation.metrics import top_k_indices
from carml.manifest.model import OutputSpec
from carml.manifest.steps import DecodeBoxes, NonMaxSuppression, ScoreThreshold, Softmax, SpeechSegments, TopK
from predictors.context import ItemContext
from predictors.preprocessing import ItemError


@dataclass
class OutputAnswer:
    """One output's answer for one item; `class_scores` feeds accuracy metrics."""

    value: dict[str, Any]
    class_scores: np.ndarray | None = None


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / np.sum(exp, axis=-1, keepdims=True)


def _label(labels: list[str] | None, index: int) -> str:
    return labels[index] if labels is not None and index < len(labels) else str(index)


def _classification(raw: np.ndarray, spec: OutputSpec, labels: list[str] | None, top_k: int | None) -> OutputAnswer:
    scores = raw.reshape(-1).astype(np.float64)
    if labels is not None and len(labels) != scores.size:
        raise ItemError(
            f"output {spec.name!r} scores {scores.size} classes but its labels list {len(labels)}; fix the labels"
        )
    if any(isinstance(s, Softmax) for s in spec.postprocessing):
        scores = softmax(scores)
    k = top_k or next((s.k for s in spec.postprocessing if isinstance(s, TopK)), 5)
    order = top_k_indices(scores, k)
    top = [{"index": int(i), "label": _label(labels, int(i)), "score": float(scores[i])} for i in order]
    return OutputAnswer({"top_k": top}, class_scores=scores)


def _candidates(raw: np.ndarray, step: DecodeBoxes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    table = raw.reshape(raw.shape[-2], raw.shape[-1]) if raw.ndim >= 2 else raw
    if step.layout == "attributes-first":
        table = table.T
    if table.shape[1] < 5:
        raise ItemError(f"detection output has {table.shape[1]} values per candidate; expected 4 box + classes")
    box, class_scores = table[:, :4].astype(np.float64), table[:, 4:]
    if step.box_format == "cxcywh":
        half = box[:, 2:] / 2
        box = np.concatenate([box[:, :2] - half, box[:, :2] + half], axis=1)
    elif step.box_format == "xywh":
        box = np.concatenate([box[:, :2], box[:, :2] + box[:, 2:]], axis=1)
    classes = np.argmax(class_scores, axis=1)
    return box, classes, class_scores[np.arange(len(classes)), classes].astype(np.float64)


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    top_left = np.maximum(box[:2], others[:, :2])
    bottom_right = np.minimum(box[2:], others[:, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(others[:, 2:] - others[:, :2], axis=1)
    return inter / np.maximum(area + areas - inter, 1e-12)


def non_max_suppression(boxes: np.ndarray, classes: np.ndarray, scores: np.ndarray, step: NonMaxSuppression) -> list:
    """Greedy NMS (per class unless the step says otherwise); returns kept indices, best score first."""
    keep: list[int] = []
    order = np.argsort(-scores, kind="stable")
    while order.size and len(keep) < step.max_detections:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        overlapping = _iou(boxes[best], boxes[rest]) > step.iou_threshold
        if step.per_class:
            overlapping &= classes[rest] == classes[best]
        order = rest[~overlapping]
    return keep


def _detection(raw: np.ndarray, spec: OutputSpec, labels: list[str] | None, ctx: ItemContext) -> OutputAnswer:
    boxes = classes = scores = None
    keep: np.ndarray | list[int] | None = None
    for step in spec.postprocessing:
        if isinstance(step, DecodeBoxes):
            boxes, classes, scores = _candidates(raw, step)
            keep = np.arange(len(scores))
        elif isinstance(step, ScoreThreshold) and keep is not None:
            keep = [i for i in keep if scores[i] >= step.threshold]
        elif isinstance(step, NonMaxSuppression) and keep is not None:
            idx = np.asarray(keep, dtype=np.int64)
            keep = [int(idx[i]) for i in non_max_suppression(boxes[idx], classes[idx], scores[idx], step)]
    detections = []
    for i in keep if keep is not None else []:
        x1, y1 = ctx.to_original(float(boxes[i, 0]), float(boxes[i, 1]))
        x2, y2 = ctx.to_original(float(boxes[i, 2]), float(boxes[i, 3]))
        label = _label(labels, int(classes[i]))
        detections.append({"label": label, "score": float(scores[i]), "box_xyxy": [x1, y1, x2, y2]})
    detections.sort(key=lambda d: -d["score"])
    return OutputAnswer({"detections": detections})


def speech_segments(probs: np.ndarray, step: SpeechSegments, ctx: ItemContext) -> list[dict[str, float]]:
    """Silero-VAD's segmentation: hysteresis on frame probabilities, short runs dropped, edges padded."""
    if ctx.sample_rate is None or ctx.frame_samples is None:
        raise ItemError("speech_segments needs decode_audio and frame preprocessing steps")
    rate, hop = ctx.sample_rate, ctx.frame_samples
    total = round((ctx.duration_s or 0) * rate) or len(probs) * hop
    neg_threshold = step.neg_threshold if step.neg_threshold is not None else max(step.threshold - 0.15, 0.01)
    min_speech, min_silence = rate * step.min_speech_ms / 1000, rate * step.min_silence_ms / 1000
    pad = rate * step.speech_pad_ms / 1000
    segments: list[list[float]] = []
    start: float | None = None
    silence_start = 0
    for i, prob in enumerate(probs.reshape(-1)):
        sample = i * hop
        if prob >= step.threshold:
            silence_start = 0
            if start is None:
                start = sample
            continue
        if start is not None and prob < neg_threshold:
            silence_start = silence_start or sample
            if sample - silence_start >= min_silence:
                if silence_start - start > min_speech:
                    segments.append([start, silence_start])
                start, silence_start = None, 0
    if start is not None and total - start > min_speech:
        segments.append([start, total])
    for i, segment in enumerate(segments):
        if i == 0:
            segment[0] = max(0, segment[0] - pad)
        if i + 1 < len(segments):
            gap = segments[i + 1][0] - segment[1]
            shift = gap // 2 if gap < 2 * pad else pad
            segment[1] += shift
            segments[i + 1][0] = max(0, segments[i + 1][0] - shift)
        else:
            segment[1] = min(total, segment[1] + pad)
    return [{"start_s": round(s / rate, 3), "end_s": round(e / rate, 3)} for s, e in segments]


def postprocess_output(
    raw: np.ndarray, spec: OutputSpec, labels: list[str] | None, ctx: ItemContext, top_k: int | None = None
) -> OutputAnswer:
    """One output of one item -> its answer, following the output's declared type and steps.

    `top_k` overrides the manifest's k for classification outputs.
    """
    if spec.type in ("class-logits", "class-probabilities"):
        return _classification(raw, spec, labels, top_k)
    if spec.type == "detection-boxes":
        return _detection(raw, spec, labels, ctx)
    if spec.type == "frame-probabilities":
        probs = raw.reshape(-1).astype(np.float64)
        value: dict[str, Any] = {"frames": int(probs.size)}
        for step in spec.postprocessing:
            if isinstance(step, SpeechSegments):
                value["segments"] = speech_segments(probs, step, ctx)
        return OutputAnswer(value)
    return OutputAnswer({"shape": list(raw.shape), "values": raw.astype(np.float64).reshape(-1).tolist()})
