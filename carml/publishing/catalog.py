"""The catalog the service serves: the manifest folders' models and datasets, plus the models published through it.

Every front end, the job service and the local CLI build their catalog with `service_catalog`, so a published
model is listed, checked and run the same way everywhere.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import make_url, select
from sqlalchemy.exc import ArgumentError

from carml.catalog import Catalog, Publication
from carml.db.models import PublishedModel
from carml.db.session import DatabaseError, read_scope, session_scope
from carml.errors import ManifestError, Problem
from carml.manifest import LoadedManifest, ModelManifest
from carml.manifest.loader import format_field_path, line_of, parse_yaml_text, validate_document
from carml.publishing.checks import remote_only_problems
from carml.publishing.files import published_path
from carml.settings import Settings

_MAX_PARSED = 4096

# What the catalog serves for one published text: the checked manifest, or why it is left out.
_Served = LoadedManifest[ModelManifest] | list[Problem]

# Published manifests already parsed and checked (or refused, with their problems), by cache folder, catalog key
# and SHA-256 of their text. The catalog is read on every job submission and most API requests: a warm request
# reads a few columns per published model and parses nothing; only a new or re-published text is read and parsed.
_parsed: dict[tuple[Path, str, str], _Served] = {}
_parsed_lock = threading.Lock()


@dataclass(frozen=True)
class _Row:
    """A published model without its text."""

    id: int
    name: str
    framework: str
    owner: str
    digest: str
    published_at: datetime

    @property
    def key(self) -> str:
        return f"{self.name}@{self.framework}"


def service_catalog(settings: Settings, *, local: bool = False) -> Catalog:
    """The manifest folders' catalog with the published models added (a folder manifest wins over a published one
    of the same name and framework; the published one is reported in `problems`).

    `local`: for commands that run on this machine without the service (`carml models`, `--local` runs): a database
    that does not exist yet has no published models, and one that cannot be read is a problem, not an error."""
    catalog = Catalog.load(settings.manifest_dirs)
    if local and _no_database_yet(settings.database):
        return catalog
    try:
        rows = _published_rows(settings)
        texts = _texts(settings, [row.id for row in rows if _cache_key(settings, row) not in _parsed])
    except DatabaseError as exc:
        if not local:
            raise
        catalog.problems.append(Problem("published models", "", f"not read ({exc})"))
        return catalog
    folder = {loaded.manifest.key: loaded.source for loaded in catalog.models}
    for row in rows:
        outcome = _served(settings, row, texts.get(row.id))
        if isinstance(outcome, list):
            catalog.problems.extend(outcome)
        elif row.key in folder:
            message = f"{row.key} is also defined by {folder[row.key]}, which wins; remove one of them"
            catalog.problems.append(Problem(_source(row), "name", message))
        else:
            catalog.models.append(outcome)
            catalog.published[row.key] = Publication(row.owner, row.published_at)
    return catalog


def _no_database_yet(url: str) -> bool:
    """A SQLite file that does not exist: reading it would create an empty one."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return False  # reading it reports the bad URL
    database = parsed.database or ""
    return parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:") and not Path(database).exists()


def _published_rows(settings: Settings) -> list[_Row]:
    columns = (
        PublishedModel.id,
        PublishedModel.name,
        PublishedModel.framework,
        PublishedModel.owner,
        PublishedModel.manifest_sha256,
        PublishedModel.published_at,
    )
    query = select(*columns).order_by(PublishedModel.name, PublishedModel.framework)
    with read_scope(settings.database) as session:
        return [_Row(*values) for values in session.execute(query)]


def _texts(settings: Settings, ids: list[int]) -> dict[int, str]:
    """The manifest texts of the rows not parsed yet (none: no query)."""
    if not ids:
        return {}
    query = select(PublishedModel.id, PublishedModel.manifest_yaml).where(PublishedModel.id.in_(ids))
    with session_scope(settings.database) as session:
        return {row_id: text for row_id, text in session.execute(query)}


def _cache_key(settings: Settings, row: _Row) -> tuple[Path, str, str]:
    return settings.cache_dir, row.key, row.digest


def _source(row: _Row) -> str:
    return f"published model {row.key}"


def _served(settings: Settings, row: _Row, text: str | None) -> _Served:
    key = _cache_key(settings, row)
    with _parsed_lock:
        cached = _parsed.get(key)
    if cached is not None:
        return cached
    if text is None:  # removed or replaced between the two queries: the next catalog has its new state
        return [Problem(_source(row), "", "changed while the catalog was read")]
    outcome = _load(settings, row, text)
    with _parsed_lock:
        if len(_parsed) >= _MAX_PARSED:
            _parsed.clear()
        _parsed[key] = outcome
    return outcome


def _load(settings: Settings, row: _Row, text: str) -> _Served:
    """Parse and check a published manifest as it was checked when published (the schema or the rules may have
    changed since, or the row was written by other means)."""
    source = _source(row)
    try:
        parsed = parse_yaml_text(text, source)
        manifest = validate_document(parsed.data, parsed.node, ModelManifest, source)
    except (ManifestError, UnicodeEncodeError) as exc:
        return exc.problems if isinstance(exc, ManifestError) else [Problem(source, "", "not UTF-8 text")]
    problems = [
        Problem(source, format_field_path(loc), message, line_of(parsed.node, loc))
        for loc, message in remote_only_problems(manifest, settings)
    ]
    if parsed.digest != row.digest:
        problems.append(Problem(source, "", f"its text does not have the recorded sha256 {row.digest}"))
    if manifest.key != row.key:
        problems.append(Problem(source, "name", f"its text defines {manifest.key}, not {row.key}"))
    if problems:
        return problems
    return LoadedManifest(manifest=manifest, source=published_path(settings, row.digest), digest=row.digest)
