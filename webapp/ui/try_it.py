"""Try it (`/try`): predict one uploaded file or a bundled sample with a model, on a live worker's hardware."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response as BaseResponse

from carml.jobs.predictions import MAX_INPUT_BYTES, MAX_INPUTS, PredictionRequest, submit_prediction
from carml.jobs.service import JobRequestError
from carml.publishing import service_catalog
from carml.url_inputs import UrlRefused, fetch_input_url
from webapp.api.params import file_name
from webapp.callers import current_caller
from webapp.context import enqueue, settings
from webapp.ui.forms import Form, default_hardware_tag, hardware_tag, live_tags, model_choices
from webapp.ui.pages import ui_blueprint, upload_limit_message
from webapp.ui.samples import find_sample, list_samples, sample_bytes

blueprint = ui_blueprint("ui_try", __name__)

FIELDS = ("model", "framework", "url", "sample", "hardware_tag", "top_k")
MAX_TOP_K = 1000


def _render(form: Form, status: int = 200) -> tuple[str, int]:
    choices = model_choices(service_catalog(settings()))
    return (
        render_template(
            "try.html",
            form=form,
            models=choices,
            samples=list_samples(settings()),
            tags=live_tags(settings()),
            max_input_bytes=MAX_INPUT_BYTES,
            max_inputs=MAX_INPUTS,
        ),
        status,
    )


def _inputs(form: Form) -> list[tuple[str, bytes]]:
    """The uploaded files, a fetched URL, or the chosen sample; each problem is recorded on its field."""
    files = [f for f in request.files.getlist("file") if f.filename]
    sample = form.values.get("sample")
    url = (form.values.get("url") or "").strip()
    if sum(map(bool, (files, sample, url))) > 1:
        form.error("sample" if sample else "url", "give one input: a file, an image URL or a sample")
        return []
    if url:
        try:
            return [fetch_input_url(url, settings(), MAX_INPUT_BYTES)]
        except UrlRefused as exc:
            form.error("url", str(exc))
            return []
    if sample:
        data = sample_bytes(settings(), sample)
        if data is None:
            form.error("sample", f"there is no sample named {sample[:60]!r}")
            return []
        return [(sample, data)]
    if not files:
        form.error("file", "upload a file, paste an image URL or choose a sample")
        return []
    if len(files) > MAX_INPUTS:
        form.error("file", f"at most {MAX_INPUTS} files at once")
        return []
    inputs = []
    for upload in files:
        data = upload.stream.read(MAX_INPUT_BYTES + 1)  # bounded: never more than the limit in memory
        name = file_name(upload.filename, "input")
        if len(data) > MAX_INPUT_BYTES:
            form.error("file", f"{name} is larger than the {MAX_INPUT_BYTES // 2**20} MiB limit per file")
            return []
        inputs.append((name, data))
    return inputs


@blueprint.get("/try")
def try_page() -> tuple[str, int]:
    """The form, prefilled from the query string (model, framework, sample, hardware_tag)."""
    form = Form.of(request.args, FIELDS)
    form.values["hardware_tag"] = form.values["hardware_tag"] or default_hardware_tag(settings())
    return _render(form)


@blueprint.post("/try")
def submit() -> BaseResponse | tuple[str, int]:
    """Check the form, submit a prediction job and go to its page; or show the form with its errors."""
    form = Form.of(request.form, FIELDS)
    model = form.text("model", required=True, what="a model")
    framework = form.text("framework", what="framework")
    inputs = _inputs(form)
    tag = hardware_tag(form)
    top_k = form.whole_number("top_k", 1, MAX_TOP_K)
    if form.errors or model is None or tag is None:
        return _render(form, 400)
    job_request = PredictionRequest(model, inputs, framework, tag, top_k, owner=current_caller().name)
    try:
        job_id = submit_prediction(settings(), job_request, enqueue())
    except JobRequestError as exc:
        form.service_error(exc, {"inputs": "file"})
        return _render(form, exc.status if exc.status >= 500 else 400)
    flash(f"Prediction job submitted to the {tag} queue.", "success")
    return redirect(url_for("ui_jobs.job_page", job_id=job_id), 303)


@blueprint.errorhandler(RequestEntityTooLarge)
def too_large(_exc: RequestEntityTooLarge) -> tuple[str, int]:
    """A request over the app's limit is refused before it is read: show the form again, saying why."""
    form = Form.of({}, FIELDS)
    form.error("file", upload_limit_message())
    return _render(form, 413)


@blueprint.get("/samples/<name>")
def sample(name: str) -> Response:
    """A sample's content, for previews on the Try it page."""
    found = find_sample(settings(), name)
    data = sample_bytes(settings(), name) if found else None
    if found is None or data is None:
        abort(404, f"There is no sample named {name[:60]!r}.")
    return Response(data, mimetype=found.media_type, headers={"Cache-Control": "max-age=3600"})
