"""A finished job's result, arranged for its page: accuracy against the claim, or each prediction's answer."""

from __future__ import annotations

import io
import json
import mimetypes
import zlib
from typing import Any

from carml.db.models import Job
from carml.errors import CarmlError
from carml.evaluation.partial import dense_confusion, readable_metrics
from carml.jobs.prediction_io import input_bytes
from carml.manifest.steps import DecodeAudio, Frame
from carml.publishing import job_manifest, service_catalog
from carml.settings import Settings
from carml.storage import StorageError, open_object_store
from webapp.ui.charts import FULL_GRID_CLASSES, top_confusions
from webapp.ui.hardware_view import hardware_view
from webapp.ui.scenario_view import scenario_view

MAX_ERRORS_SHOWN = 200
MAX_CONFUSIONS_SHOWN = 25  # of a model with more classes than a readable table has
MAX_OVERLAYS = 16  # images read back from the store to size their detection boxes
MAX_RAW_CHARS = 2000


def media_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _claims(settings: Settings, job: Job) -> dict[str, float | None]:
    """The manifest's claimed top-1/top-5 of the job's model, when the catalog still has it."""
    try:
        attributes = service_catalog(settings).model(job.model_name, job.framework).manifest.attributes
    except CarmlError:
        return {"top1": None, "top5": None}
    return {"top1": attributes.top1, "top5": attributes.top5}


def _record_rows(record: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in record.items()]


def evaluation_view(settings: Settings, job: Job) -> dict[str, Any]:
    result = job.result
    assert result is not None
    metrics = readable_metrics(result.metrics, "cells")
    labels = metrics.get("labels", [])
    cells = metrics.get("confusion")
    return {
        "items": result.items,
        "top1": result.top1,
        "top5": result.top5,
        "claims": _claims(settings, job),
        "latency": (result.latency or {}).get("predict", {}),
        "stages": result.latency or {},
        "throughput": result.throughput_items_per_s,
        "model_load_ms": result.model_load_ms,
        "per_class": metrics.get("per_class", []),
        "labels": labels,
        # The full table up to FULL_GRID_CLASSES classes; past that, the most frequent mistakes.
        "confusion": dense_confusion(cells).tolist() if cells and len(labels) <= FULL_GRID_CLASSES else [],
        "top_confusions": top_confusions(labels, cells, MAX_CONFUSIONS_SHOWN)
        if len(labels) > FULL_GRID_CLASSES
        else [],
        "warmup": metrics.get("warmup") or {},
        "errors": result.error_items[:MAX_ERRORS_SHOWN],
        "errors_total": len(result.error_items),
        "record": _record_rows(result.reproducibility or {}),
        "hardware": hardware_view(job),
        "scenario": scenario_view(result.scenario_outcome),  # None for an accuracy pass
    }


def _seconds_per_frame(settings: Settings, job: Job) -> float | None:
    """For audio models that frame their input: how long one frame lasts, from the job's manifest (a published
    model's is written from the database when this machine has no copy)."""
    digest = ((job.result.reproducibility if job.result else None) or {}).get("manifest_sha256", "")
    try:
        manifest = job_manifest(settings, job.parameters["manifest"], digest).manifest
    except (CarmlError, OSError, KeyError):
        return None
    for spec in manifest.inputs:
        rate = next((s.sample_rate for s in spec.preprocessing if isinstance(s, DecodeAudio)), None)
        frame = next((s.frame_samples for s in spec.preprocessing if isinstance(s, Frame)), None)
        if rate and frame:
            return frame / rate
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as a browser shows the image: EXIF-rotated, like CarML's decode step."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            rotated = image.getexif().get(0x0112) in (5, 6, 7, 8)
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    return (height, width) if rotated else (width, height)


def _output_view(name: str, value: dict[str, Any]) -> dict[str, Any]:
    if "top_k" in value:
        return {"name": name, "kind": "classification", "top_k": value["top_k"]}
    if "detections" in value:
        # One colour per label, the same on every page: the hue is a hash of the label.
        detections = [{**d, "hue": zlib.crc32(str(d.get("label")).encode()) % 360} for d in value["detections"]]
        return {"name": name, "kind": "detection", "detections": detections}
    if "segments" in value:
        return {"name": name, "kind": "segments", "segments": value["segments"], "frames": value.get("frames")}
    text = json.dumps(value)
    return {"name": name, "kind": "raw", "text": text[:MAX_RAW_CHARS], "truncated": len(text) > MAX_RAW_CHARS}


def prediction_view(settings: Settings, job: Job) -> list[dict[str, Any]]:
    """One entry per input: its name, media type, error or answers (with what drawing them needs)."""
    result = job.result
    answers = (result.metrics or {}).get("predictions", []) if result is not None else []
    inputs = job.parameters.get("inputs", [])
    per_frame = _seconds_per_frame(settings, job) if any("error" not in a for a in answers) else None
    store = None
    overlays = 0
    views = []
    for index, (entry, answer) in enumerate(zip(inputs, answers, strict=False)):
        outputs = [_output_view(name, value) for name, value in (answer.get("outputs") or {}).items()]
        view: dict[str, Any] = {
            "index": index,
            "name": entry.get("name", f"input {index}"),
            "media_type": media_type(entry.get("name", "")),
            "error": answer.get("error"),
            "latency_ms": answer.get("latency_ms"),
            "stages_ms": answer.get("stages_ms") or {},
            "outputs": outputs,
            "size": None,
            "duration_s": None,
        }
        if any(o["kind"] == "detection" for o in outputs) and overlays < MAX_OVERLAYS:
            overlays += 1
            store = store or open_object_store(settings)
            try:
                view["size"] = image_size(input_bytes(store, entry))
            except StorageError:
                view["size"] = None
        for output in outputs:
            if output["kind"] == "segments":
                ends = [s["end_s"] for s in output["segments"]]
                frames = output.get("frames")
                length = frames * per_frame if frames and per_frame else 0.0
                view["duration_s"] = max([length, *ends]) or None
        views.append(view)
    return views
