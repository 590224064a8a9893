"""Publishing, replacing, listing and removing models through the service (the publisher role's part of it).

A published manifest is checked like a manifest file (see `checks`), kept whole in `published_models`, and served
beside the manifest folders by `service_catalog`. Jobs record its SHA-256 (`models.manifest_sha256`), so results
keep saying which manifest they measured after it is replaced or removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carml.accounts.access import check_may_publish
from carml.accounts.caller import Caller
from carml.artifacts import ArtifactCache
from carml.catalog import Catalog
from carml.db.base import utcnow
from carml.db.models import Job, JobStatus, PublishedModel
from carml.db.session import DatabaseError, session_scope
from carml.manifest import LoadedManifest, ModelManifest
from carml.publishing.checks import CheckedManifest, check_manifest_text
from carml.publishing.errors import PublishError
from carml.publishing.files import is_published_file
from carml.settings import Settings


class Outcome(StrEnum):
    CREATED = "created"
    REPLACED = "replaced"  # the same name and framework with other text
    UNCHANGED = "unchanged"  # the very text already published: nothing written, so a retried request is harmless


@dataclass(frozen=True)
class PublishedModelInfo:
    """A published model as listings show it (its text stays in the database; the catalog serves it)."""

    name: str
    framework: str
    version: str
    owner: str
    manifest_sha256: str
    published_at: datetime

    @property
    def key(self) -> str:
        return f"{self.name}@{self.framework}"


@dataclass(frozen=True)
class PublishResult:
    """What `publish_model` did, and the manifest now published."""

    model: PublishedModelInfo
    outcome: Outcome
    manifest: ModelManifest


def _info(row: PublishedModel) -> PublishedModelInfo:
    return PublishedModelInfo(row.name, row.framework, row.version, row.owner, row.manifest_sha256, row.published_at)


def _folder_manifest(settings: Settings, name: str, framework: str | None) -> str | None:
    """The manifest file that defines `name` (for `framework`, when given) in a manifest folder, or None; named
    from its manifest folder (`manifests/models/x.yaml`), since callers of the API need not know server paths."""
    for loaded in Catalog.load(settings.manifest_dirs).models:
        m = loaded.manifest
        if m.name == name and framework in (None, m.framework.name):
            return _shown(settings, loaded.source)
    return None


def _shown(settings: Settings, path: Path) -> str:
    for root in settings.manifest_dirs:
        root = root.resolve()
        if path.is_relative_to(root):
            return (Path(root.name) / path.relative_to(root)).as_posix()
    return path.name


def _active_jobs(session: Session, name: str, framework: str) -> int:
    query = (
        select(func.count())
        .select_from(Job)
        .where(
            Job.model_name == name,
            Job.framework == framework,
            Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)),
        )
    )
    return session.scalar(query) or 0


def _refuse_while_used(session: Session, key: str, name: str, framework: str, action: str) -> None:
    busy = _active_jobs(session, name, framework)
    if busy:
        raise PublishError(
            f"{busy} queued or running job(s) use {key}; {action} it when they have finished, or cancel them",
            field="name",
            status=409,
        )


def _locked_row(session: Session, name: str, framework: str) -> PublishedModel | None:
    # FOR UPDATE (PostgreSQL): a replacement and a removal of one model happen one after the other.
    query = select(PublishedModel).where(PublishedModel.name == name, PublishedModel.framework == framework)
    return session.scalar(query.with_for_update())


def still_published(session: Session, loaded: LoadedManifest[ModelManifest]) -> bool:
    """For a job being recorded in `session`: whether `loaded` is still the published text of its model (always
    True for a manifest folder's model).

    NB: the row stays locked (FOR SHARE on PostgreSQL) until `session` ends. A replacement or removal that comes
    meanwhile waits, then counts the job (409); one that came first makes this False. Without it, a job resolved
    just before a replacement would be recorded with a text no longer published, and fail on its worker."""
    path = Path(loaded.source)
    if not (is_published_file(path) and path.stem == loaded.digest):
        return True
    m = loaded.manifest
    query = select(PublishedModel.manifest_sha256).where(
        PublishedModel.name == m.name, PublishedModel.framework == m.framework.name
    )
    return session.scalar(query.with_for_update(read=True)) == loaded.digest


def publish_model(settings: Settings, caller: Caller, yaml_text: str, source: str = "manifest") -> PublishResult:
    """Publish a model manifest as `caller`, or replace the one of the same name and framework (its publisher or
    an admin only, and not while queued or running jobs use it). `source` names the text in messages."""
    check_may_publish(caller, "publishing a model")
    checked = check_manifest_text(yaml_text, ArtifactCache(settings, confine_local_files=True), source)
    m = checked.manifest
    defined_by = _folder_manifest(settings, m.name, m.framework.name)
    if defined_by is not None:
        raise PublishError(
            f"{m.key} is defined by the manifest file {defined_by}; choose another name, or change that file",
            field="name",
            status=409,
        )
    try:
        with session_scope(settings.database) as session:
            return _write(session, caller, checked)
    except DatabaseError as exc:
        # Two first publications of one name at once: the unique constraint decides, the loser hears why.
        if isinstance(exc.__cause__, IntegrityError):
            raise PublishError(f"{m.key} was published by someone else at the same moment", "name", 409) from None
        raise


def _write(session: Session, caller: Caller, checked: CheckedManifest) -> PublishResult:
    m = checked.manifest
    row = _locked_row(session, m.name, m.framework.name)
    if row is None:
        row = PublishedModel(
            name=m.name,
            framework=m.framework.name,
            version=m.version,
            owner=caller.name,
            manifest_yaml=checked.text,
            manifest_sha256=checked.digest,
        )
        session.add(row)
        session.flush()
        return PublishResult(_info(row), Outcome.CREATED, m)
    if not caller.owns(row.owner):
        raise PublishError(
            f"{m.key} is already published by {row.owner}; only they or an admin may replace it: choose another name",
            field="name",
            status=409,
        )
    if row.manifest_sha256 == checked.digest:
        return PublishResult(_info(row), Outcome.UNCHANGED, m)
    _refuse_while_used(session, m.key, m.name, m.framework.name, "replace")
    # NB: the owner stays: an admin replacing someone's model does not take it over.
    row.version, row.manifest_yaml, row.manifest_sha256 = m.version, checked.text, checked.digest
    row.published_at = utcnow()
    return PublishResult(_info(row), Outcome.REPLACED, m)


def list_published(settings: Settings) -> list[PublishedModelInfo]:
    """Every published model, by name and framework."""
    query = select(PublishedModel).order_by(PublishedModel.name, PublishedModel.framework)
    with session_scope(settings.database) as session:
        return [_info(row) for row in session.scalars(query)]


def remove_model(settings: Settings, caller: Caller, name: str, framework: str | None = None) -> PublishedModelInfo:
    """Remove a published model as `caller` (its publisher or an admin), unless queued or running jobs use it.
    `framework` may be left out when only one framework of `name` is published. Returns what was removed.

    Jobs that used it keep their results, and their `models` row keeps the manifest's SHA-256."""
    check_may_publish(caller, "removing a model")
    with session_scope(settings.database) as session:
        query = select(PublishedModel.framework).where(PublishedModel.name == name).order_by(PublishedModel.framework)
        published = list(session.scalars(query))
        frameworks = [f for f in published if framework in (None, f)]
        if not frameworks:
            _refuse_unknown(settings, name, framework, published)
        if len(frameworks) > 1:
            raise PublishError(
                f"model {name!r} is published for {', '.join(frameworks)}; pick one with framework", "framework"
            )
        row = _locked_row(session, name, frameworks[0])
        if row is None:  # removed by someone else a moment ago
            raise PublishError(f"no published model {name}@{frameworks[0]}", field="name", status=404)
        if not caller.owns(row.owner):
            raise PublishError(
                f"{name}@{row.framework} was published by {row.owner}; only they or an admin may remove it",
                field="name",
                status=403,
            )
        _refuse_while_used(session, f"{name}@{row.framework}", name, row.framework, "remove")
        removed = _info(row)
        session.delete(row)
    return removed


def _refuse_unknown(settings: Settings, name: str, framework: str | None, published: list[str]) -> None:
    """Nothing to remove: a manifest file's model (409: remove the file), another framework (404 naming those
    published), or no model at all (404)."""
    defined_by = _folder_manifest(settings, name, framework)
    if defined_by is not None:
        raise PublishError(
            f"model {name!r} is defined by the manifest file {defined_by}, not published through the service: "
            "remove the file to remove it",
            field="name",
            status=409,
        )
    if published:
        have = ", ".join(published)
        raise PublishError(f"model {name!r} is published for {have}, not {framework}", field="framework", status=404)
    raise PublishError(f"no published model {name!r}", field="name", status=404)
