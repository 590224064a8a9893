"""GET /api/v1/models and /api/v1/models/<name>: the model catalog (manifest folders and published models);
POST /api/v1/models and DELETE /api/v1/models/<name>: publishing and removing models (the publisher role)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from carml.accounts.access import check_may_publish
from carml.catalog import Catalog, Publication
from carml.manifest import LoadedManifest, ModelManifest
from carml.publishing import MAX_PUBLISHED_BYTES, Outcome, PublishError, publish_model, remove_model, service_catalog
from predictors.registry import predictor_classes
from webapp.api import params
from webapp.api.errors import ApiError
from webapp.api.params import NAME, boolean_text, json_object, reject_unknown, single_values
from webapp.callers import current_caller
from webapp.context import settings

blueprint = Blueprint("models", __name__)

# Media types a manifest may be sent as: its YAML text itself, or JSON {"manifest": "<the YAML text>"}.
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")


def _runnable(manifest: ModelManifest) -> bool:
    """Whether this server has the model's framework, at a version the manifest accepts."""
    predictor = predictor_classes().get(manifest.framework.name)
    status = predictor.availability() if predictor else None
    return bool(status and status.available and manifest.framework.accepts(status.version or ""))


def _entry(m: ModelManifest, publication: Publication | None) -> dict[str, Any]:
    return {
        "name": m.name,
        "version": m.version,
        "framework": m.framework.name,
        "task": str(m.task),
        "modality": str(m.modality),
        "claimed_top1": m.attributes.top1,
        "claimed_top5": m.attributes.top5,
        "runnable": _runnable(m),
        "source": "published" if publication else "folder",  # published through the service, or a manifest file
        "owner": publication.owner if publication else None,
        "published_at": publication.published_at.isoformat() if publication else None,
    }


def _listed(loaded: LoadedManifest[ModelManifest], catalog: Catalog) -> dict[str, Any]:
    return _entry(loaded.manifest, catalog.publication(loaded))


@blueprint.get("/models")
def list_models() -> dict[str, Any]:
    """Every model manifest, by name then framework; hidden ones only with ?all=true."""
    query = single_values(request.args, ("all",))
    show_hidden = bool(boolean_text(query, "all"))
    catalog = service_catalog(settings())
    ordered = sorted(catalog.models, key=lambda m: (m.manifest.name, m.manifest.framework.name))
    return {"models": [_listed(m, catalog) for m in ordered if show_hidden or not m.manifest.hidden]}


@blueprint.get("/models/<name>")
def get_model(name: str) -> dict[str, Any]:
    """A model: one entry per framework it is published for, each with its full manifest."""
    single_values(request.args, ())
    catalog = service_catalog(settings())
    matches = [m for m in catalog.models if m.manifest.name == name]
    if not matches:
        raise ApiError(f"unknown model {name!r}", status=404, field="name")
    return {
        "name": name,
        "frameworks": [
            {**_listed(m, catalog), "manifest_sha256": m.digest, "manifest": m.manifest.model_dump(mode="json")}
            for m in sorted(matches, key=lambda m: m.manifest.framework.name)
        ],
    }


def _refuse_bodies_over(limit: int) -> None:
    """413 before reading a body whose declared length is over `limit` (`publish_model` checks the text's own)."""
    if (request.content_length or 0) > limit:
        raise PublishError(
            f"the request body is {request.content_length} bytes; published manifests are at most "
            f"{MAX_PUBLISHED_BYTES} bytes (256 KiB)",
            field="manifest",
            status=413,
        )


def _manifest_text() -> str:
    """The manifest's YAML text from the body: the body itself (YAML or plain text), or JSON's `manifest` field."""
    if request.mimetype == "application/json":
        # A JSON escape can take six bytes for one ("\u000a"): refused unread only beyond what the cap allows.
        _refuse_bodies_over(6 * MAX_PUBLISHED_BYTES + 1024)
        body = json_object()
        reject_unknown(body, ("manifest",))
        text = body.get("manifest")
        if not isinstance(text, str):
            raise ApiError("manifest is required: the model manifest's YAML text, as a string", field="manifest")
        return text
    if request.mimetype not in YAML_TYPES:
        raise ApiError(
            'send the manifest as application/yaml (or text/plain), or as JSON {"manifest": "<YAML text>"}', 415
        )
    _refuse_bodies_over(MAX_PUBLISHED_BYTES)
    try:
        return request.get_data().decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError("the manifest is not UTF-8 text", field="manifest") from None


@blueprint.post("/models")
def publish() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Publish a model manifest (201), or replace the caller's own of that name and framework (200)."""
    single_values(request.args, ())
    caller = current_caller()
    check_may_publish(caller, "publishing a model")  # before the body is read: a user's is not worth reading
    result = publish_model(settings(), caller, _manifest_text())
    published = result.model
    entry = {
        **_entry(result.manifest, Publication(published.owner, published.published_at)),
        "manifest_sha256": published.manifest_sha256,
        "outcome": result.outcome,
    }
    status = 201 if result.outcome == Outcome.CREATED else 200
    return entry, status, {"Location": f"{request.path}/{published.name}"}


@blueprint.delete("/models/<name>")
def remove(name: str) -> Response:
    """Remove a published model: the caller's own (any, for an admin); 409 while queued or running jobs use it."""
    query = single_values(request.args, ("framework",))
    framework = params.name(query, "framework")
    if not NAME.fullmatch(name) or len(name) > 100:
        raise ApiError(f"no published model {name[:100]!r}", status=404, field="name")
    remove_model(settings(), current_caller(), name, framework)
    return Response(status=204)
