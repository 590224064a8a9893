"""GET /api/v1/datasets[/<name>] (catalog and uploaded datasets), POST /api/v1/datasets (an upload) and
DELETE /api/v1/datasets/<name>. A user sees the catalog, their own uploads and shared ones (an admin: all)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, request

from carml.accounts.access import may_use_dataset
from carml.jobs.upload_removal import remove_upload
from carml.jobs.uploads import get_upload, list_uploads, store_upload
from carml.manifest import DatasetManifest, LoadedManifest
from carml.publishing import service_catalog
from webapp.api.errors import ApiError
from webapp.api.params import single_values, text
from webapp.callers import current_caller
from webapp.context import settings

blueprint = Blueprint("datasets", __name__)

SHARED_VALUES = {"true": True, "false": False}


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
    for loaded in service_catalog(settings()).datasets:
        if loaded.manifest.name == name:
            return {**_catalog_entry(loaded), "manifest": loaded.manifest.model_dump(mode="json")}
    upload = get_upload(settings(), name)
    if upload is None or not may_use_dataset(current_caller(), upload["owner"], upload["shared"]):
        return None  # someone else's private upload: as if it did not exist
    return upload


def visible_uploads() -> list[dict[str, Any]]:
    """The uploads the caller may see and evaluate on: their own and shared ones (an admin: every one)."""
    caller = current_caller()
    return [u for u in list_uploads(settings()) if may_use_dataset(caller, u["owner"], u["shared"])]


@blueprint.get("/datasets")
def list_datasets() -> dict[str, Any]:
    """Catalog datasets by name, then the uploads the caller may use by name."""
    single_values(request.args, ())
    catalog = sorted(service_catalog(settings()).datasets, key=lambda d: d.manifest.name)
    return {"datasets": [_catalog_entry(d) for d in catalog] + visible_uploads()}


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
    form = single_values(request.form, ("name", "shared"))
    single_values(request.files, ("file",))
    dataset_name = text(form, "name", required=True, max_length=100) or ""
    shared = _shared(form)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ApiError("file is required: the dataset as a .zip, .tar.gz, .csv or .npz", field="file")
    with tempfile.TemporaryDirectory(prefix="carml-request-") as folder:
        path = Path(folder) / "upload"
        upload.save(path)
        report = store_upload(settings(), dataset_name, upload.filename, path, current_caller().name, shared)
    return report, 201, {"Location": f"{request.path}/{dataset_name}"}


def _shared(form: dict[str, Any]) -> bool:
    """`shared=true` publishes the upload to every user, which needs the publisher role."""
    value = text(form, "shared", default="false", max_length=8) or "false"
    if value not in SHARED_VALUES:
        raise ApiError(f"shared must be true or false, got {value!r}", field="shared")
    if SHARED_VALUES[value] and not current_caller().can_publish:
        raise ApiError("sharing a dataset with every user needs the publisher role", status=403, field="shared")
    return SHARED_VALUES[value]


@blueprint.delete("/datasets/<name>")
def delete_dataset(name: str) -> Response:
    """Remove an upload: a private one by its owner, a shared one by a publisher; 409 while jobs use it."""
    single_values(request.args, ())
    remove_upload(settings(), name, current_caller())
    return Response(status=204)
