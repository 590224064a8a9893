"""Validate (`/validate`): evaluate a model on a dataset; and uploading a dataset (`/datasets/upload`)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response as BaseResponse

from carml.datasets import DATA_SUFFIXES
from carml.jobs.service import MAX_SHARDS, EvaluationRequest, JobRequestError, submit_evaluation
from carml.jobs.uploads import UPLOAD_NAME, UploadError, store_upload
from carml.publishing import service_catalog
from webapp.api.datasets import find_dataset, visible_uploads
from webapp.callers import current_caller
from webapp.context import enqueue, settings
from webapp.ui.forms import Form, default_hardware_tag, hardware_tag, live_tags, model_choices
from webapp.ui.pages import error_page, ui_blueprint, upload_limit_message
from webapp.ui.scenario_form import PLACEHOLDERS, SCENARIO_CHOICES, SCENARIO_FORM_FIELDS, scenario_form_fields

blueprint = ui_blueprint("ui_validate", __name__)

FIELDS = ("model", "framework", "dataset", "hardware_tag", "batch_size", "limit", "shards", *SCENARIO_FORM_FIELDS)
UPLOAD_FIELDS = ("name",)
MAX_BATCH_SIZE = 4096
MAX_LIMIT = 2**31 - 1


def _render(form: Form, status: int = 200) -> tuple[str, int]:
    catalog = service_catalog(settings())
    return (
        render_template(
            "validate.html",
            form=form,
            models=model_choices(catalog),
            catalog_datasets=sorted(catalog.datasets, key=lambda d: d.manifest.name),
            uploads=visible_uploads(),
            tags=live_tags(settings()),
            max_shards=MAX_SHARDS,
            max_batch_size=MAX_BATCH_SIZE,
            scenario_choices=SCENARIO_CHOICES,
            scenario_placeholders=PLACEHOLDERS,
        ),
        status,
    )


@blueprint.get("/validate")
def validate_page() -> tuple[str, int]:
    """The form, prefilled from the query string (e.g. ?model=digits-cnn&dataset=digits)."""
    form = Form.of(request.args, FIELDS)
    form.values["batch_size"] = form.values["batch_size"] or "32"
    form.values["shards"] = form.values["shards"] or "1"
    form.values["scenario"] = form.values["scenario"] or "accuracy"
    form.values["hardware_tag"] = form.values["hardware_tag"] or default_hardware_tag(settings())
    return _render(form)


@blueprint.post("/validate")
def submit() -> BaseResponse | tuple[str, int]:
    """Check the form, submit an evaluation job and go to its page; or show the form with its errors."""
    form = Form.of(request.form, FIELDS)
    model = form.text("model", required=True, what="a model")
    framework = form.text("framework", what="framework")
    dataset = form.text("dataset", required=True, what="a dataset")
    # Only names the server publishes: a dataset given by path would read files on the server.
    if dataset is not None and find_dataset(dataset) is None:
        form.error("dataset", f"there is no dataset named {dataset!r}; choose one from the list or upload one")
    tag = hardware_tag(form)
    batch_size = form.whole_number("batch_size", 1, MAX_BATCH_SIZE, default=32) or 32
    limit = form.whole_number("limit", 1, MAX_LIMIT)
    shards = form.whole_number("shards", 1, MAX_SHARDS, default=1) or 1
    scenario = scenario_form_fields(form)  # a performance scenario and its options (docs/scenarios.md)
    if form.errors or model is None or dataset is None or tag is None:
        return _render(form, 400)
    owner = current_caller().name
    job_request = EvaluationRequest(model, dataset, framework, tag, batch_size, limit, shards, owner=owner, **scenario)
    try:
        job_id = submit_evaluation(settings(), job_request, enqueue())
    except JobRequestError as exc:
        form.service_error(exc)
        return _render(form, exc.status if exc.status >= 500 else 400)
    flash(f"Evaluation of {model} on {dataset} submitted to the {tag} queue.", "success")
    return redirect(url_for("ui_jobs.job_page", job_id=job_id), 303)


def _render_upload(form: Form, report: dict[str, Any] | None = None, status: int = 200) -> tuple[str, int]:
    return (
        render_template(
            "upload.html",
            form=form,
            report=report,
            max_bytes=current_app.config.get("MAX_CONTENT_LENGTH") or 0,
            endings=DATA_SUFFIXES,
            uploads=visible_uploads(),
        ),
        status,
    )


@blueprint.get("/datasets/upload")
def upload_page() -> tuple[str, int]:
    return _render_upload(Form.of(request.args, UPLOAD_FIELDS))


@blueprint.post("/datasets/upload")
def upload() -> tuple[str, int]:
    """Check the file with the dataset readers and register it; the page then reports what was accepted."""
    form = Form.of(request.form, UPLOAD_FIELDS)
    name = form.text("name", UPLOAD_NAME, required=True, what="dataset name (lowercase letters, digits, - and _)")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        form.error(
            "file", f"choose a file: a zip or tar of class folders, a CSV or an NPZ ({', '.join(DATA_SUFFIXES)})"
        )
    if form.errors or name is None or upload is None:
        return _render_upload(form, status=400)
    with tempfile.TemporaryDirectory(prefix="carml-request-") as folder:
        path = Path(folder) / "upload"
        upload.save(path)
        try:
            report = store_upload(settings(), name, upload.filename or "upload", path, current_caller().name)
        except UploadError as exc:
            form.service_error(exc)
            return _render_upload(form, status=exc.status if exc.status >= 500 else 400)
    flash(f"Dataset {name} accepted: {report['items']} items.", "success")
    return _render_upload(Form({"name": ""}), report)


@blueprint.errorhandler(RequestEntityTooLarge)
def too_large(_exc: RequestEntityTooLarge) -> tuple[str, int]:
    """A request over the app's limit is refused before it is read; the upload form says so."""
    if request.endpoint != "ui_validate.upload":
        return error_page(upload_limit_message(), 413, "Request too large")
    form = Form.of({}, UPLOAD_FIELDS)
    form.error("file", upload_limit_message())
    return _render_upload(form, status=413)
