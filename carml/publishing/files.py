"""Published manifests as files: `<cache_dir>/published/<sha256>.yaml`, written from the database by whichever
machine runs a job on one, so that workers on other machines need no disk shared with the web app."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from carml.catalog import load_model_manifest_cached
from carml.db.models import PublishedModel
from carml.db.session import session_scope
from carml.errors import CarmlError, ManifestError, Problem
from carml.manifest import LoadedManifest, ModelManifest
from carml.manifest.loader import format_field_path
from carml.publishing.checks import remote_only_problems
from carml.settings import Settings
from carml.storage.atomic import atomic_file

PUBLISHED_FOLDER = "published"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def published_path(settings: Settings, digest: str) -> Path:
    """Where this machine keeps the published manifest with that SHA-256 (the path jobs record)."""
    if not _SHA256.fullmatch(digest):
        raise CarmlError(f"{digest[:80]!r} is not the SHA-256 of a published manifest")
    return settings.cache_dir / PUBLISHED_FOLDER / f"{digest}.yaml"


def _published_text(settings: Settings, digest: str) -> str | None:
    query = select(PublishedModel.manifest_yaml).where(PublishedModel.manifest_sha256 == digest).limit(1)
    with session_scope(settings.database) as session:
        return session.scalar(query)


def _materialise(settings: Settings, digest: str) -> Path | None:
    """The published manifest's file on this machine, written (atomically) from the database when missing; None
    when no published model has that digest any more."""
    path = published_path(settings, digest)
    if path.is_file():
        return path
    text = _published_text(settings, digest)
    if text is None:
        return None
    with atomic_file(path) as out:
        out.write(text.encode("utf-8"))  # the exact bytes whose SHA-256 the job recorded
    return path


def is_published_file(path: Path) -> bool:
    """Whether `path` names a published manifest's file (`published_path`) rather than a manifest folder's."""
    return path.parent.name == PUBLISHED_FOLDER and bool(_SHA256.fullmatch(path.stem))


def job_manifest(settings: Settings, stored_path: str, expected_digest: str) -> LoadedManifest[ModelManifest]:
    """The model manifest a job was submitted with, on the machine running it: the file at the recorded path, or,
    for a published model whose file is not on this machine, its text from the database. Raises `CarmlError` when
    the manifest changed (or was removed) after the job was submitted."""
    path = Path(stored_path)
    if not path.is_file() and expected_digest and is_published_file(path):
        written = _materialise(settings, expected_digest)
        if written is None:
            raise CarmlError(
                f"the published manifest this job was submitted with (sha256 {expected_digest[:12]}…) is no longer "
                "published: the model was removed or replaced after the job was submitted; submit it again"
            )
        path = written
    loaded = load_model_manifest_cached(path)  # parsed once per process while the file is unchanged
    if expected_digest and loaded.digest != expected_digest:
        raise CarmlError(f"the manifest {loaded.source} changed after the job was submitted; submit it again")
    if is_published_file(path):
        # Checked when it was published; checked again because this copy came from a file or a database row.
        refused = remote_only_problems(loaded.manifest, settings)
        if refused:
            raise ManifestError([Problem(str(path), format_field_path(loc), message) for loc, message in refused])
    return loaded
