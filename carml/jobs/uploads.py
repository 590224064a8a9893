"""Datasets users upload: checked with CarML's readers, kept in the object store, opened by name for jobs."""

from __future__ import annotations

import mimetypes
import os
import re
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from carml.artifacts import ArtifactCache
from carml.artifacts.hashing import file_sha256
from carml.datasets import DATA_SUFFIXES, OpenedDataset, manifest_for_path, open_dataset
from carml.db.models import RegisteredDataset
from carml.db.session import DatabaseError, session_scope
from carml.errors import CarmlError, DatasetError, NotFound
from carml.jobs.upload_checks import class_name_reason, npz_expansion_reason, oversized_image, upload_limits
from carml.manifest import LoadedManifest
from carml.publishing import service_catalog
from carml.runs import open_dataset_by_name
from carml.settings import Settings
from carml.storage import DEFAULT_CONTENT_TYPE, open_object_store

# No dots: an upload's name must never look like a path or a file ending (`open_dataset_by_name` reads those).
UPLOAD_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
KEY_PREFIX = "datasets"
MAX_REPORTED_REJECTS = 100


class UploadError(CarmlError):
    """An upload that cannot be accepted; `field` names the request field at fault, `status` the HTTP-like code."""

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.field, self.status = field, status


def safe_filename(filename: str) -> str:
    """The upload's file name reduced to safe characters, keeping the data ending that picks its reader."""
    base = re.split(r"[\\/]", filename)[-1]
    suffix = next((s for s in sorted(DATA_SUFFIXES, key=len, reverse=True) if base.lower().endswith(s)), None)
    if suffix is None:
        endings = ", ".join(DATA_SUFFIXES)
        raise UploadError(f"{base or 'the file'}: expected one of the endings {endings}", field="file")
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", base[: -len(suffix)])[:80]
    return (stem or "dataset") + suffix


def _key_parts(object_key: str) -> tuple[str, str]:
    """(sha256, file name) of an upload's key `datasets/<name>/<sha256>/<file name>`."""
    _, _, sha256, filename = object_key.split("/", 3)
    return sha256, filename


def _upload_row(settings: Settings, name: str) -> RegisteredDataset | None:
    """The upload of that name; if a race left two, the first registered is the one (the other is undone)."""
    query = (
        select(RegisteredDataset)
        .where(RegisteredDataset.name == name, RegisteredDataset.object_key.is_not(None))
        .order_by(RegisteredDataset.id)
        .limit(1)
    )
    with session_scope(settings.database) as session:
        return session.scalar(query)


def upload_entry(row: RegisteredDataset) -> dict[str, Any]:
    """An uploaded dataset as JSON."""
    sha256, filename = _key_parts(row.object_key or "")
    return {
        "name": row.name,
        "source": "upload",
        "format": row.format,
        "modality": row.modality,
        "items": row.items,
        "digest": row.digest,
        "sha256": sha256,
        "filename": filename,
        "owner": row.owner,
        "shared": row.shared,  # visible to every user, not only its owner
        "registered_at": row.registered_at.isoformat(),
    }


def list_uploads(settings: Settings) -> list[dict[str, Any]]:
    """Every uploaded dataset, by name."""
    query = select(RegisteredDataset).where(RegisteredDataset.object_key.is_not(None)).order_by(RegisteredDataset.id)
    with session_scope(settings.database) as session:
        rows = list(session.scalars(query))
    first = {row.name: row for row in reversed(rows)}  # reversed: the earliest row of a name wins
    return [upload_entry(first[name]) for name in sorted(first)]


def get_upload(settings: Settings, name: str) -> dict[str, Any] | None:
    """One uploaded dataset as JSON, or None."""
    row = _upload_row(settings, name) if UPLOAD_NAME.fullmatch(name) else None
    return upload_entry(row) if row is not None else None


def _open_as(path: Path, name: str, cache: ArtifactCache) -> OpenedDataset:
    """Open a user's data file under the dataset name it was uploaded as."""
    loaded = manifest_for_path(path)
    manifest = loaded.manifest.model_copy(update={"name": name, "description": f"uploaded dataset {name}"})
    return open_dataset(LoadedManifest(manifest=manifest, source=loaded.source, digest=loaded.digest), cache.resolve)


def _local_copy(settings: Settings, object_key: str) -> Path:
    """The upload's file in the cache (`uploads/<sha256>/<file name>`), downloaded once and checked."""
    sha256, filename = _key_parts(object_key)
    path = settings.cache_dir / "uploads" / sha256 / filename
    if not path.is_file():
        open_object_store(settings).download(object_key, path)  # atomic: a reader never sees half a file
        if file_sha256(path) != sha256:
            path.unlink(missing_ok=True)
            raise DatasetError(f"the stored object {object_key} does not match its sha256; upload it again")
    return path


def open_job_dataset(settings: Settings, name: str) -> OpenedDataset:
    """A catalog dataset, a path (as `open_dataset_by_name` reads them), or an uploaded dataset by name."""
    catalog = service_catalog(settings)
    cache = ArtifactCache(settings, confine_local_files=True)  # the service: no file outside a manifest's folder
    if not UPLOAD_NAME.fullmatch(name) or any(d.manifest.name == name for d in catalog.datasets):
        return open_dataset_by_name(name, catalog, cache)
    row = _upload_row(settings, name)
    if row is None:
        try:
            return open_dataset_by_name(name, catalog, cache)
        except NotFound as exc:
            uploaded = ", ".join(entry["name"] for entry in list_uploads(settings)) or "none"
            raise NotFound(f"{exc}; uploaded datasets: {uploaded}") from None
    return _open_as(_local_copy(settings, row.object_key or ""), name, cache)


def _check_name(settings: Settings, name: str) -> None:
    if not UPLOAD_NAME.fullmatch(name):
        raise UploadError(
            "name must be a lowercase identifier: letters, digits, '-' and '_', starting with a letter or digit, "
            "at most 100 characters",
            field="name",
        )
    if any(d.manifest.name == name for d in service_catalog(settings).datasets):
        raise UploadError(f"{name!r} is a catalog dataset; choose another name", field="name", status=409)


def _open_checked(path: Path, name: str, filename: str, cache: ArtifactCache) -> OpenedDataset:
    """Open the upload with the readers a job will use; refuse it unless some item is usable."""
    try:
        opened = _open_as(path, name, cache)
    except CarmlError as exc:
        # Messages name the temporary copy; the user knows the file by the name they sent.
        message = str(exc).replace(path.as_uri(), filename).replace(str(path), filename)
        raise UploadError(f"cannot read the upload as a dataset: {message}", field="file") from None
    if not opened.items:
        reasons = "; ".join(f"{item}: {reason}" for item, reason in opened.rejected[:3])
        raise UploadError(f"{filename} holds no usable items" + (f" ({reasons})" if reasons else ""), field="file")
    return opened


def _check_contents(opened: OpenedDataset, unpacked: Path, filename: str, max_pixels: int) -> None:
    """Refuse class names unsafe to show or export, and images that are decompression bombs (headers only)."""
    for label in opened.labels:
        reason = class_name_reason(label)
        if reason:
            raise UploadError(f"{filename}: the class name {label[:60]!r} {reason}", field="file")
    found = oversized_image(unpacked, max_pixels) if unpacked.is_dir() else None
    if found:
        raise UploadError(f"{filename}: {found[0]}: {found[1]}", field="file")


def _discard(settings: Settings, object_key: str) -> None:
    """Delete an object this upload wrote, unless a registered upload uses it."""
    with session_scope(settings.database) as session:
        used = session.scalar(select(RegisteredDataset.id).where(RegisteredDataset.object_key == object_key))
    if used is None:
        open_object_store(settings).delete_prefix(object_key)


def _publish(
    settings: Settings, name: str, key: str, path: Path, opened: OpenedDataset, owner: str, shared: bool = False
) -> None:
    """Store the file, then register it; undo the object when registering fails or loses a race."""
    open_object_store(settings).put_file(
        key, path, content_type=mimetypes.guess_type(path.name)[0] or DEFAULT_CONTENT_TYPE
    )
    row = RegisteredDataset(
        name=name,
        format=opened.format,
        modality=opened.modality,
        digest=opened.digest,
        owner=owner,
        shared=shared,
        object_key=key,
        items=len(opened.items),
    )
    try:
        with session_scope(settings.database) as session:
            session.add(row)
    except DatabaseError:
        winner = _upload_row(settings, name)
        if winner is not None and winner.object_key == key:
            return  # the same file under the same name was registered at the same moment
        _discard(settings, key)
        raise
    winner = _upload_row(settings, name)
    if winner is not None and winner.id != row.id:
        with session_scope(settings.database) as session:
            session.execute(delete(RegisteredDataset).where(RegisteredDataset.id == row.id))
        _discard(settings, key)
        raise UploadError(f"a dataset named {name!r} was uploaded at the same moment", field="name", status=409)


def store_upload(
    settings: Settings, name: str, filename: str, data_path: Path, owner: str, shared: bool = False
) -> dict[str, Any]:
    """Check an uploaded file with the dataset readers, store and register it; returns the upload report.

    Uploads are immutable, so jobs stay reproducible: a name already uploaded accepts only the same bytes again.
    """
    _check_name(settings, name)
    safe = safe_filename(filename)
    sha256 = file_sha256(Path(data_path))
    existing = _upload_row(settings, name)
    if existing is not None and existing.owner != owner:
        # Names are one namespace for everyone: say it is taken, not whose it is or what it holds.
        raise UploadError(f"the name {name!r} is already taken; choose another name", field="name", status=409)
    if existing is not None and _key_parts(existing.object_key or "")[0] != sha256:
        raise UploadError(
            f"a different dataset is already uploaded as {name!r}; choose another name", field="name", status=409
        )
    with tempfile.TemporaryDirectory(prefix="carml-upload-") as folder:
        path = Path(folder) / safe
        try:
            os.link(data_path, path)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(data_path, path)
        # Checked with a throw-away cache inside the temporary folder: an archive refused here leaves nothing
        # unpacked in the shared artifact cache. Uploads have tighter archive caps than operators' artifacts.
        limits = upload_limits(settings)
        expansion = npz_expansion_reason(path, limits) if safe.endswith(".npz") else None
        if expansion:
            raise UploadError(f"{safe}: {expansion}", field="file")
        scratch = replace(settings, cache_dir=Path(folder) / "cache")
        opened = _open_checked(path, name, safe, ArtifactCache(scratch, limits=limits))
        _check_contents(opened, scratch.cache_dir / "unpacked", safe, settings.image_max_pixels)
        if existing is None:
            _publish(settings, name, f"{KEY_PREFIX}/{name}/{sha256}/{safe}", path, opened, owner, shared)
    return {
        "name": name,
        "format": opened.format,
        "modality": opened.modality,
        "items": len(opened.items),
        "classes": opened.labels,
        "rejected": [{"item": item, "reason": reason} for item, reason in opened.rejected[:MAX_REPORTED_REJECTS]],
        "rejected_total": len(opened.rejected),
        "digest": opened.digest,
        "sha256": sha256,
    }
