"""The catalog page (`/`) and one page per model (`/models/<name>`)."""

from __future__ import annotations

from typing import Any

from flask import abort, render_template, request
from sqlalchemy import select

from carml.catalog import Catalog
from carml.db.models import Job
from carml.db.session import session_scope
from webapp.context import settings
from webapp.ui import queries
from webapp.ui.forms import frameworks_of, model_choices
from webapp.ui.manifest_view import describe
from webapp.ui.pages import ui_blueprint

blueprint = ui_blueprint("ui_catalog", __name__)

RECENT_JOBS = 10


def _entries(catalog: Catalog) -> list[dict[str, Any]]:
    """One entry per model name: its frameworks, versions and claims, and the best measured results."""
    best = queries.best_measured(settings())
    entries = []
    for choice in model_choices(catalog):
        manifests = [m.manifest for m in catalog.models if m.manifest.name == choice.name and not m.manifest.hidden]
        claims = [m.attributes.top1 for m in manifests if m.attributes.top1 is not None]
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
            }
        )
    return entries


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
    filters = {key: request.args.get(key, "").strip()[:100] for key in ("task", "framework", "modality", "q")}
    loaded = Catalog.load(settings().manifest_dirs)
    entries = _entries(loaded)
    shown = [e for e in entries if _matches(e, filters)]
    return render_template(
        "catalog.html",
        entries=shown,
        total=len(entries),
        filters=filters,
        tasks=sorted({e["task"] for e in entries}),
        modalities=sorted({e["modality"] for e in entries}),
        frameworks=frameworks_of(model_choices(loaded)),
        problems=loaded.problems,
    )


@blueprint.get("/models/<name>")
def model_page(name: str) -> str:
    """A model's manifests (one per framework), its measured results and its latest jobs."""
    matches = [m for m in Catalog.load(settings().manifest_dirs).models if m.manifest.name == name]
    if not matches:
        abort(404, f"There is no model named {name[:100]!r} in the catalog.")
    manifests = [describe(m) for m in sorted(matches, key=lambda m: m.manifest.framework.name)]
    query = select(Job).where(Job.model_name == name).order_by(Job.created_at.desc(), Job.id).limit(RECENT_JOBS)
    with session_scope(settings().database) as session:
        recent = list(session.scalars(query))
    return render_template(
        "model.html",
        name=name,
        manifests=manifests,
        results=queries.model_results(settings(), name),
        recent=recent,
    )
