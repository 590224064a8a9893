"""The committed JSON Schemas of the manifest formats, generated from the pydantic models."""

from __future__ import annotations

import json
from pathlib import Path

from carml.manifest.dataset import DatasetManifest
from carml.manifest.model import ModelManifest

SCHEMAS = {
    "model-manifest.schema.json": (ModelManifest, "CarML model manifest"),
    "dataset-manifest.schema.json": (DatasetManifest, "CarML dataset manifest"),
}


def render_schemas() -> dict[str, str]:
    """File name -> JSON text of each schema, stable across runs (sorted keys, trailing newline)."""
    rendered = {}
    for file_name, (model, title) in SCHEMAS.items():
        schema = model.model_json_schema()
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": title}
        rendered[file_name] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return rendered


def write_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in render_schemas().items():
        path = folder / file_name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(folder: Path) -> list[str]:
    """Names of committed schema files that differ from what the code generates."""
    return [
        name
        for name, text in render_schemas().items()
        if not (folder / name).is_file() or (folder / name).read_text(encoding="utf-8") != text
    ]
