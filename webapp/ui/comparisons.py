"""Compare (`/compare`, `/comparisons`, `/comparisons/<id>`): one workload over several hardware tags, batch
sizes, frameworks or models, and its legs side by side."""

from __future__ import annotations

import re

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from carml.accounts.access import list_owner
from carml.jobs.comparisons import MAX_LEGS, ComparisonRequest, list_comparisons, submit_comparison
from carml.jobs.service import MAX_SHARDS, JobRequestError
from carml.publishing import service_catalog
from webapp.api.access import owned_comparison
from webapp.api.datasets import find_dataset, visible_uploads
from webapp.api.params import HARDWARE_TAG, NAME
from webapp.callers import current_caller
from webapp.context import enqueue, settings
from webapp.ui.forms import Form, frameworks_of, live_tags, model_choices
from webapp.ui.pages import error_page, ui_blueprint
from webapp.ui.scenario_form import PLACEHOLDERS, SCENARIO_CHOICES, SCENARIO_FORM_FIELDS, scenario_form_fields

blueprint = ui_blueprint("ui_compare", __name__)

FIELDS = ("dataset", "batch_sizes", "limit", "shards", "title", *SCENARIO_FORM_FIELDS)
LISTS = ("models", "frameworks", "hardware_tags")
MAX_BATCH_SIZE = 4096
MAX_LIMIT = 2**31 - 1
_COMPARISON_ID = re.compile(r"^[0-9a-fA-F-]{1,36}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # PostgreSQL refuses NUL in text


def _render(form: Form, chosen: dict[str, list[str]], status: int = 200) -> tuple[str, int]:
    catalog = service_catalog(settings())
    models = model_choices(catalog)
    return (
        render_template(
            "compare.html",
            form=form,
            chosen=chosen,
            models=models,
            frameworks=frameworks_of(models),
            catalog_datasets=sorted(catalog.datasets, key=lambda d: d.manifest.name),
            uploads=visible_uploads(),
            tags=live_tags(settings()),
            max_shards=MAX_SHARDS,
            max_legs=MAX_LEGS,
            scenario_choices=SCENARIO_CHOICES,
            scenario_placeholders=PLACEHOLDERS,
        ),
        status,
    )


def _names(form: Form, field: str, values: list[str], pattern: re.Pattern[str]) -> list[str]:
    for value in values:
        if len(value) > 100 or not pattern.fullmatch(value):
            form.error(field, f"{value[:40]!r} is not a valid name")
    return values


def _batch_sizes(form: Form) -> list[int]:
    parts = [p.strip() for p in (form.values.get("batch_sizes") or "32").split(",") if p.strip()]
    sizes = []
    for part in parts:
        if not re.fullmatch(r"[0-9]{1,4}", part) or not 1 <= int(part) <= MAX_BATCH_SIZE:
            form.error("batch_sizes", f"{part[:20]!r} is not a batch size from 1 to {MAX_BATCH_SIZE}")
            continue
        sizes.append(int(part))
    return sizes


@blueprint.get("/compare")
def compare_page() -> tuple[str, int]:
    """The form; ?models=…&hardware_tags=… preselect choices (repeatable)."""
    form = Form.of(request.args, FIELDS)
    form.values["batch_sizes"] = form.values["batch_sizes"] or "32"
    form.values["shards"] = form.values["shards"] or "1"
    form.values["scenario"] = form.values["scenario"] or "accuracy"
    chosen = {name: request.args.getlist(name) for name in LISTS}
    if not chosen["hardware_tags"]:
        chosen["hardware_tags"] = live_tags(settings())
    return _render(form, chosen)


@blueprint.post("/compare")
def submit() -> BaseResponse | tuple[str, int]:
    form = Form.of(request.form, FIELDS)
    chosen = {name: [v.strip() for v in request.form.getlist(name) if v.strip()] for name in LISTS}
    models = _names(form, "models", chosen["models"], NAME)
    if not models:
        form.error("models", "choose one or more models")
    frameworks = _names(form, "frameworks", chosen["frameworks"], NAME)
    tags = _names(form, "hardware_tags", chosen["hardware_tags"], HARDWARE_TAG)
    if not tags:
        form.error("hardware_tags", "choose one or more hardware tags")
    dataset = form.text("dataset", required=True, what="a dataset")
    if dataset is not None and find_dataset(dataset) is None:
        form.error("dataset", f"there is no dataset named {dataset!r}; choose one from the list or upload one")
    batch_sizes = _batch_sizes(form)
    limit = form.whole_number("limit", 1, MAX_LIMIT)
    shards = form.whole_number("shards", 1, MAX_SHARDS, default=1) or 1
    title = form.values.get("title") or None
    if title is not None and (len(title) > 200 or _CONTROL.search(title)):
        form.error("title", "the title must be at most 200 characters, with no control characters")
    scenario = scenario_form_fields(form)  # every leg runs the same scenario (docs/scenarios.md)
    if form.errors or dataset is None:
        return _render(form, chosen, 400)
    comparison = ComparisonRequest(
        models=models,
        dataset=dataset,
        hardware_tags=tags,
        batch_sizes=batch_sizes,
        frameworks=frameworks or [None],
        limit=limit,
        shards=shards,
        title=title,
        owner=current_caller().name,
        leg_options=scenario,
    )
    try:
        comparison_id = submit_comparison(settings(), comparison, enqueue())
    except JobRequestError as exc:
        form.service_error(exc)
        return _render(form, chosen, exc.status if exc.status >= 500 else 400)
    flash(f"Comparison submitted: {len(comparison.legs())} legs.", "success")
    return redirect(url_for("ui_compare.comparison_page", comparison_id=comparison_id), 303)


@blueprint.get("/comparisons")
def comparisons_page() -> str:
    """The user's comparisons (an admin's: everyone's), newest first."""
    owner = list_owner(current_caller(), None)
    return render_template("comparisons.html", comparisons=list_comparisons(settings(), owner=owner, limit=100))


@blueprint.get("/comparisons/<comparison_id>")
def comparison_page(comparison_id: str) -> str | tuple[str, int]:
    """The legs side by side; the page polls the API while legs run and draws a chart per metric."""
    if not _COMPARISON_ID.fullmatch(comparison_id):
        return error_page(f"no comparison {comparison_id[:40]!r}", 404, "Not found")
    summary = owned_comparison(comparison_id)  # someone else's: the 404 of an unknown id
    return render_template("comparison.html", comparison=summary)
