"""The OpenAPI operations and schemas of publishing and removing models (POST /models, DELETE /models/{name}),
merged into the document by openapi.py."""

from __future__ import annotations

from typing import Any

from carml.publishing import MAX_PUBLISHED_BYTES, PUBLISHABLE_SCHEMES, Outcome
from webapp.api.openapi_schemas import STRING, TIME, Schema, obj, ref

_MANIFEST_TEXT = {
    **STRING,
    "maxLength": MAX_PUBLISHED_BYTES,
    "description": "A model manifest's YAML text, as a manifest file holds it (docs/manifests.md). Its artifacts "
    f"and labels files must use {', '.join(PUBLISHABLE_SCHEMES)} URLs: no local files.",
}


def _error(*codes: str) -> dict[str, Any]:
    return {code: {"$ref": f"#/components/responses/E{code}"} for code in codes}


def publish_operation(location: Schema) -> dict[str, Any]:
    """POST /models."""
    published = {"application/json": {"schema": ref("PublishedModel")}}
    return {
        "summary": "Publish a model manifest (publisher role), or replace your own of that name and framework",
        "operationId": "publishModel",
        "requestBody": {
            "required": True,
            "content": {
                # Also accepted: application/x-yaml, text/yaml, text/x-yaml.
                **{media: {"schema": _MANIFEST_TEXT} for media in ("application/yaml", "text/plain")},
                "application/json": {"schema": ref("PublishRequest")},
            },
        },
        "responses": {
            "201": {"description": "Published.", "headers": {"Location": location}, "content": published},
            "200": {
                "description": "Replaced (or the same text again: unchanged).",
                "headers": {"Location": location},
                "content": published,
            },
            **_error("400", "409", "413", "415", "503"),
        },
    }


def remove_operation(name: Schema) -> dict[str, Any]:
    """DELETE /models/{name}."""
    framework = {
        "name": "framework",
        "in": "query",
        "required": False,
        "schema": STRING,
        "description": "Which framework's manifest, when the model is published for several.",
    }
    return {
        "summary": "Remove a published model: your own (any, as an admin); not while queued or running jobs use it",
        "operationId": "removeModel",
        "parameters": [name, framework],
        "responses": {
            "204": {"description": "Removed; finished jobs keep their results and the manifest's sha256."},
            **_error("400", "404", "409", "503"),
        },
    }


def model_publishing_schemas() -> dict[str, Schema]:
    return {
        "PublishRequest": obj({"manifest": _MANIFEST_TEXT}, additionalProperties=False),
        "PublishedModel": {
            "allOf": [ref("Model")],
            "properties": {
                "manifest_sha256": STRING,
                "outcome": {"enum": [o.value for o in Outcome]},
                "published_at": TIME,
            },
            "required": ["manifest_sha256", "outcome"],
        },
    }
