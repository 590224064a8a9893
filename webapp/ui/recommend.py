"""Recommend (`/recommend`): the constraint form, the ranked candidates and a scatter of top-1 against p99."""

from __future__ import annotations

from typing import Any

from flask import render_template, request, url_for

from carml.db.models import Scenario
from carml.manifest.common import Task
from carml.recommend import (
    CONSTRAINT_FIELDS,
    ConstraintError,
    Recommendation,
    describe_reason,
    parse_constraints,
    recommend,
)
from webapp.callers import current_caller
from webapp.context import settings
from webapp.ui.forms import Form
from webapp.ui.pages import ui_blueprint

blueprint = ui_blueprint("ui_recommend", __name__)


def scatter_data(found: Recommendation | None) -> dict[str, Any]:
    """What the scatter plot draws: one point per candidate with both a top-1 and a p99 (x = p99 ms, y = top-1
    in %), its cost for the point size when every point has one, and whether it is on the Pareto front."""
    points = [
        {
            "x": c.p99_ms,
            "y": c.top1 * 100,
            "cost": c.cost_per_1000_items,
            "pareto": r.pareto,
            "rank": r.rank,
            "label": f"#{r.rank} {c.model} · {c.framework} · {c.hardware_tag} · batch {c.batch_size}",
            "url": url_for("ui_jobs.job_page", job_id=c.latest_job_id),
        }
        for r in (found.ranked if found else [])
        for c in (r.candidate,)
        if c.p99_ms is not None and c.top1 is not None
    ]
    costs = [p["cost"] for p in points]
    sized = bool(points) and all(cost is not None for cost in costs)
    return {
        "points": points,
        "cost_sized": sized,
        "cost_min": min(costs) if sized else None,
        "cost_max": max(costs) if sized else None,
    }


@blueprint.get("/recommend")
def recommend_page() -> tuple[str, int]:
    """Every measured candidate that meets the constraints in the query string (none given: all of them)."""
    form = Form.of(request.args, CONSTRAINT_FIELDS)
    found = None
    try:
        constraints = parse_constraints(form.values)
    except ConstraintError as exc:
        form.error(exc.field, str(exc))
    else:
        found = recommend(settings(), constraints, current_caller())
    return (
        render_template(
            "recommend.html",
            form=form,
            found=found,
            chart=scatter_data(found),
            tasks=[t.value for t in Task],
            scenarios=[s.value for s in Scenario],
            describe_reason=describe_reason,
            api_url=url_for("recommendations.get_recommendations", **{k: v for k, v in form.values.items() if v}),
        ),
        400 if form.errors else 200,
    )
