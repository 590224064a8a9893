"""The performance-scenario fields of an evaluate request: read here with their JSON types; what they mean
(ranges, which scenario takes which option) is checked by the service, which names the field at fault."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from carml.evaluation.scenario_options import SCENARIO_OPTION_FIELDS
from webapp.api.errors import ApiError
from webapp.api.params import text

SCENARIO_FIELDS = ("scenario", *SCENARIO_OPTION_FIELDS)
WHOLE_NUMBER_FIELDS = ("min_query_count", "sample_count", "seed")


def scenario_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """`scenario` and its options as `EvaluationRequest` keyword arguments; absent or null ones are left out."""
    fields: dict[str, Any] = {}
    scenario = text(body, "scenario", max_length=32)
    if scenario is not None:
        fields["scenario"] = scenario
    for name in SCENARIO_OPTION_FIELDS:
        value = body.get(name)
        if value is None:
            continue
        whole = name in WHOLE_NUMBER_FIELDS
        if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
            raise ApiError(f"{name} must be {'an integer' if whole else 'a number'}", field=name)
        if isinstance(value, float) and not math.isfinite(value):  # NB: isfinite overflows on huge integers
            raise ApiError(f"{name} must be a finite number", field=name)
        fields[name] = value
    return fields
