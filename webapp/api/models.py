"""GET /api/v1/models and /api/v1/models/<name>: the model catalog."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from carml.catalog import Catalog
from carml.manifest import LoadedManifest, ModelManifest
from predictors.registry import predictor_classes
from webapp.api.errors import ApiError
from webapp.api.params import boolean_text, single_values
from webapp.context import settings

blueprint = Blueprint("models", __name__)


def _runnable(manifest: ModelManifest) -> bool:
    """Whether this server has the model's framework, at a version the manifest accepts."""
    predictor = predictor_classes().get(manifest.framework.name)
    status = predictor.availability() if predictor else None
    return bool(status and status.available and manifest.framework.accepts(status.version or ""))


def _entry(loaded: LoadedManifest[ModelManifest]) -> dict[str, Any]:
    m = loaded.manifest
    return {
        "name": m.name,
        "version": m.version,
        "framework": m.framework.name,
        "task": str(m.task),
        "modality": str(m.modality),
        "claimed_top1": m.attributes.top1,
        "claimed_top5": m.attributes.top5,
        "runnable": _runnable(m),
    }


@blueprint.get("/models")
def list_models() -> dict[str, Any]:
    """Every model manifest, by name then framework; hidden ones only with ?all=true."""
    query = single_values(request.args, ("all",))
    show_hidden = bool(boolean_text(query, "all"))
    catalog = Catalog.load(settings().manifest_dirs)
    ordered = sorted(catalog.models, key=lambda m: (m.manifest.name, m.manifest.framework.name))
    return {"models": [_entry(m) for m in ordered if show_hidden or not m.manifest.hidden]}


@blueprint.get("/models/<name>")
def get_model(name: str) -> dict[str, Any]:
    """A model: one entry per framework it is published for, each with its full manifest."""
    single_values(request.args, ())
    matches = [m for m in Catalog.load(settings().manifest_dirs).models if m.manifest.name == name]
    if not matches:
        raise ApiError(f"unknown model {name!r}", status=404, field="name")
    return {
        "name": name,
        "frameworks": [
            {**_entry(m), "manifest_sha256": m.digest, "manifest": m.manifest.model_dump(mode="json")}
            for m in sorted(matches, key=lambda m: m.manifest.framework.name)
        ],
    }
