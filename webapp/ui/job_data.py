"""A job's data for its page: chart data as JSON, per-item predictions as CSV, its stored input files."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from flask import Response, abort, jsonify
from werkzeug.wrappers import Response as BaseResponse

from carml.csv_export import formula_safe
from carml.db.models import JobKind, JobStatus
from carml.evaluation.partial import readable_metrics
from carml.jobs.prediction_io import answer_lines, input_bytes, prediction_answers
from carml.storage import ObjectStore, open_object_store
from webapp.context import settings
from webapp.ui import charts, queries
from webapp.ui.hardware_view import hardware_timeline
from webapp.ui.job_view import media_type
from webapp.ui.jobs import load_job
from webapp.ui.pages import ui_blueprint

blueprint = ui_blueprint("ui_job_data", __name__)

CSV_COLUMNS = ("item", "top1_label", "score", "true_class", "error")
_CHUNK = 256 * 1024
# Served under this site's origin, so only media types a page embeds, and never active content.
_INLINE_PREFIXES = ("image/", "audio/")
_ACTIVE = ("image/svg+xml",)


@blueprint.get("/jobs/<job_id>/charts.json")
def charts_json(job_id: str) -> BaseResponse:
    """Latency histogram (from the predict stage's batch timings), confusion matrix and stage breakdown."""
    job = load_job(job_id)
    payload: dict[str, Any] = {"job_id": job.id, "status": job.status, "latency": None, "confusion": None}
    payload["stages"] = payload["hardware"] = None
    if job.kind == JobKind.EVALUATE:
        latencies, excluded = charts.timed_latencies(queries.predict_timings(settings(), job.id))
        payload["latency"] = charts.histogram(latencies)
        if payload["latency"] is not None:
            payload["latency"]["warmup_excluded"] = excluded
        payload["hardware"] = hardware_timeline(settings(), job.id)
    if job.result is not None:
        metrics = readable_metrics(job.result.metrics, "cells")
        payload["confusion"] = charts.confusion(metrics.get("labels") or [], metrics.get("confusion"))
        payload["stages"] = charts.stages(job.result.latency or {})
    response = jsonify(payload)
    response.headers["Cache-Control"] = "no-store" if not JobStatus(job.status).final else "max-age=60"
    return response


def _lines(store: ObjectStore, keys: list[str]) -> Iterator[bytes]:
    """The JSON Lines of every object, one line at a time, without reading a whole object into memory."""
    for key in keys:
        with store.open_stream(key) as stream:
            pending = b""
            while chunk := stream.read(_CHUNK):
                pending += chunk
                *complete, pending = pending.split(b"\n")
                yield from (line for line in complete if line.strip())
            if pending.strip():
                yield pending


def _cell(value: Any) -> str:
    # Item names are the file names users sent: a spreadsheet would run one starting like a formula.
    return formula_safe("" if value is None else str(value))


def _top1(outputs: dict[str, Any]) -> tuple[str | None, float | None]:
    """The best answer of the first output that ranks labels (classification) or finds objects (detection)."""
    for value in outputs.values():
        ranked = value.get("top_k") or value.get("detections")
        if ranked:
            return ranked[0].get("label"), ranked[0].get("score")
    return None, None


def _csv_rows(lines: Iterator[bytes], labels: list[str]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for line in lines:
        answer = json.loads(line)
        label, score = _top1(answer.get("outputs") or {})
        true_class = answer.get("true_class")
        if isinstance(true_class, int) and 0 <= true_class < len(labels):
            true_class = labels[true_class]
        writer.writerow([_cell(answer.get("item")), _cell(label), score, _cell(true_class), _cell(answer.get("error"))])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


@blueprint.get("/jobs/<job_id>/predictions.csv")
def predictions_csv(job_id: str) -> Response:
    """Every item's top-1 label and score (and true class, for evaluations), streamed as CSV."""
    job = load_job(job_id)
    if job.status != JobStatus.SUCCEEDED:
        abort(404, f"Job {job.id} has no predictions: it is {job.status}.")
    keys = queries.output_keys(settings(), job.id)
    store = open_object_store(settings())
    missing = next((key for key in keys if not store.exists(key)), None)
    if missing is not None:
        abort(404, f"The predictions of job {job.id} are missing from the object store ({missing}).")
    labels = list(((job.result.metrics or {}).get("labels") or []) if job.result else [])
    # A prediction keeps its answers in its result row, not as an object (carml.jobs.prediction_io).
    lines = _lines(store, keys) if keys or job.kind != JobKind.PREDICT else answer_lines(prediction_answers(job.result))
    return Response(
        _csv_rows(lines, labels),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{job.id}.csv"'},
    )


@blueprint.get("/jobs/<job_id>/inputs/<int:index>")
def job_input(job_id: str, index: int) -> Response:
    """An input file of a prediction job, for drawing its answer over it."""
    job = load_job(job_id)
    inputs = job.parameters.get("inputs", []) if job.kind == JobKind.PREDICT else []
    if not 0 <= index < len(inputs):
        abort(404, f"Job {job.id} has no input {index}.")
    entry = inputs[index]
    data = input_bytes(open_object_store(settings()), entry)
    kind = media_type(entry.get("name", ""))
    headers = {"Content-Security-Policy": "default-src 'none'; sandbox", "Cache-Control": "max-age=3600"}
    if not kind.startswith(_INLINE_PREFIXES) or kind in _ACTIVE:
        kind = "application/octet-stream"
        headers["Content-Disposition"] = "attachment"
    return Response(data, mimetype=kind, headers=headers)
