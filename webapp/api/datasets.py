"""GET /api/v1/datasets[/<name>] (catalog and uploaded datasets) and POST /api/v1/datasets (an upload)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, request

from carml.catalog import Catalog
from carml.jobs.uploads import get_upload, list_uploads, store_upload
from carml.manifest import DatasetManifest, LoadedManifest
from webapp.api.errors import ApiError
from webapp.api.params import single_values, text
from webapp.context import settings

blueprint = Blueprint("datasets", __name__)

OWNER = "local"  # until accounts exist


def _catalog_entry(loaded: LoadedManifest[DatasetManifest]) -> dict[str, Any]:
    d = loaded.manifest
    return {
        "name": d.name,
        "source": "catalog",
        "format": d.format,
        "modality": str(d.modality),
        "items": None,  # counting would mean fetching and listing every dataset
        "version": d.version,
        "task": str(d.task),
        "split": d.split,
        "description": d.description.strip(),
    }


def find_dataset(name: str) -> dict[str, Any] | None:
    """A catalog dataset (with its manifest) or an uploaded one, as JSON; None if there is neither."""
    for loaded in Catalog.load(settings().manifest_dirs).datasets:
        if loaded.manifest.name == name:
            return {**_catalog_entry(loaded), "manifest": loaded.manifest.model_dump(mode="json")}
    return get_upload(settings(), name)


@blueprint.get("/datasets")
def list_datasets() -> dict[str, Any]:
    """Catalog datasets by name, then uploaded ones by name."""
    single_values(request.args, ())
    catalog = sorted(Catalog.load(settings().manifest_dirs).datasets, key=lambda d: d.manifest.name)
    return {"datasets": [_catalog_entry(d) for d in catalog] + list_uploads(settings())}


@blueprint.get("/datasets/<name>")
def get_dataset(name: str) -> dict[str, Any]:
    single_values(request.args, ())
    found = find_dataset(name)
    if found is None:
        raise ApiError(f"unknown dataset {name!r}", status=404, field="name")
    return found


@blueprint.post("/datasets")
def upload_dataset() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Check a zip/tar of class folders, a CSV or an NPZ with the dataset readers, then store and register it."""
    if request.mimetype != "multipart/form-data":
        raise ApiError("send the dataset as multipart/form-data with the fields name and file", status=415)
    form = single_values(request.form, ("name",))
    single_values(request.files, ("file",))
    dataset_name = text(form, "name", required=True, max_length=100) or ""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ApiError("file is required: the dataset as a .zip, .tar.gz, .csv or .npz", field="file")
    with tempfile.TemporaryDirectory(prefix="carml-request-") as folder:
        path = Path(folder) / "upload"
        upload.save(path)
        report = store_upload(settings(), dataset_name, upload.filename, path, OWNER)
    return report, 201, {"Location": f"{request.path}/{dataset_name}"}
