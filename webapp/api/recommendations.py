"""GET /api/v1/recommendations: measured model+hardware pairs that meet constraints, ranked, Pareto front first."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from carml.recommend import CONSTRAINT_FIELDS, parse_constraints, recommend
from webapp.api.params import NAME, single_values, text
from webapp.callers import current_caller
from webapp.context import settings

blueprint = Blueprint("recommendations", __name__)


@blueprint.get("/recommendations")
def get_recommendations() -> dict[str, Any]:
    """The ranking for the query's constraints; a bad value is a 400 naming its field (see carml.recommend).

    Nothing meeting the constraints is not an error: the answer has no candidates and says what excluded them.
    Other users' private uploads are left out (carml.accounts.result_visibility).
    """
    values = single_values(request.args, CONSTRAINT_FIELDS)
    text(values, "dataset", pattern=NAME, max_length=100)  # only published names: a 400 for anything else
    constraints = parse_constraints(values)
    return recommend(settings(), constraints, current_caller()).as_dict()
