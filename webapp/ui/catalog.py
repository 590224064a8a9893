"""The catalog page (`/`) and one page per model (`/models/<name>`)."""

from __future__ import annotations

from typing import Any

from flask import abort, render_template, request
from sqlalchemy import select

from carml.catalog import Catalog
from carml.db.models import Job
from carml.db.session import session_scope
from carml.publishing import service_catalog
from webapp.callers import current_caller
from webapp.context import settings
from webapp.ui import queries
from webapp.ui.forms import Form, frameworks_of, model_choices
from webapp.ui.manifest_view import describe
from webapp.ui.pages import ui_blueprint

blueprint = ui_blueprint("ui_catalog", __name__)

RECENT_JOBS = 10


def _entries(catalog: Catalog) -> list[dict[str, Any]]:
    """One entry per model name: its frameworks, versions and claims, and the best measured results."""
    best = queries.best_measured(settings(), current_caller())
    entries = []
    for choice in model_choices(catalog):
        loaded = [m for m in catalog.models if m.manifest.name == choice.name and not m.manifest.hidden]
        manifests = [m.manifest for m in loaded]
        claims = [m.attributes.top1 for m in manifests if m.attributes.top1 is not None]
        publications = [p for p in map(catalog.publication, loaded) if p is not None]
        entries.append(
            {
                "name": choice.name,
                "task": choice.task,
                "modality": choice.modality,
                "frameworks": choice.frameworks,
                "versions": sorted({m.version for m in manifests}),
                "claimed_top1": max(claims) if claims else None,
                "description": manifests[0].description.strip(),
                "measured": dict(sorted(best.get(choice.name, {}).items())),
                "published_by": sorted({p.owner for p in publications}),
            }
        )
    return entries


def _published(catalog: Catalog) -> list[dict[str, Any]]:
    """The models published through the service (hidden ones too: their publisher may remove them), by name."""
    caller = current_caller()
    rows = []
    for loaded in sorted(catalog.models, key=lambda m: (m.manifest.name, m.manifest.framework.name)):
        publication = catalog.publication(loaded)
        if publication is not None:
            m = loaded.manifest
            rows.append(
                {
                    "name": m.name,
                    "framework": m.framework.name,
                    "version": m.version,
                    "owner": publication.owner,
                    "published_at": publication.published_at,
                    "removable": caller.can_publish and caller.owns(publication.owner),
                }
            )
    return rows


def _matches(entry: dict[str, Any], filters: dict[str, str]) -> bool:
    return (
        (not filters["task"] or entry["task"] == filters["task"])
        and (not filters["modality"] or entry["modality"] == filters["modality"])
        and (not filters["framework"] or filters["framework"] in entry["frameworks"])
        and (not filters["q"] or filters["q"].lower() in entry["name"].lower())
    )


@blueprint.get("/")
def catalog() -> str:
    """Every model, filtered by task, framework and modality, searched by name."""
    return render_catalog(Form())[0]


def render_catalog(publish_form: Form, status: int = 200) -> tuple[str, int]:
    """The catalog page; a publisher also gets the publish form (`publish_form`: what was sent, and its errors)."""
    filters = {key: request.args.get(key, "").strip()[:100] for key in ("task", "framework", "modality", "q")}
    loaded = service_catalog(settings())
    entries = _entries(loaded)
    shown = [e for e in entries if _matches(e, filters)]
    html = render_template(
        "catalog.html",
        entries=shown,
        total=len(entries),
        filters=filters,
        tasks=sorted({e["task"] for e in entries}),
        modalities=sorted({e["modality"] for e in entries}),
        frameworks=frameworks_of(model_choices(loaded)),
        problems=loaded.problems,
        can_publish=current_caller().can_publish,
        published=_published(loaded),
        publish_form=publish_form,
    )
    return html, status


@blueprint.get("/models/<name>")
def model_page(name: str) -> str:
    """A model's manifests (one per framework), its measured results and its latest jobs."""
    catalog = service_catalog(settings())
    matches = [m for m in catalog.models if m.manifest.name == name]
    if not matches:
        abort(404, f"There is no model named {name[:100]!r} in the catalog.")
    caller = current_caller()
    manifests = []
    for loaded in sorted(matches, key=lambda m: m.manifest.framework.name):
        publication = catalog.publication(loaded)
        removable = publication is not None and caller.can_publish and caller.owns(publication.owner)
        manifests.append({**describe(loaded), "publication": publication, "removable": removable})
    query = select(Job).where(Job.model_name == name).order_by(Job.created_at.desc(), Job.id).limit(RECENT_JOBS)
    if not caller.is_admin:  # jobs are their owner's, as on the Jobs page
        query = query.where(Job.owner == caller.name)
    with session_scope(settings().database) as session:
        recent = list(session.scalars(query))
    return render_template(
        "model.html",
        name=name,
        manifests=manifests,
        results=queries.model_results(settings(), name, caller),
        recent=recent,
    )
