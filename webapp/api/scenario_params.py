"""The performance-scenario fields of an evaluate request: read here with their JSON types; what they mean
(ranges, which scenario takes which option) is checked by the service, which names the field at fault."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from carml.evaluation.scenario_options import SCENARIO_OPTION_FIELDS
from webapp.api.errors import ApiError
from webapp.api.params import json_shown, text, whole_number

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
        if name in WHOLE_NUMBER_FIELDS:
            whole = whole_number(value)  # 64.0 from a JavaScript client is 64
            if whole is None:
                raise ApiError(f"{name} must be an integer, got {json_shown(value)}", field=name)
            fields[name] = whole
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ApiError(f"{name} must be a number", field=name)
        if isinstance(value, float) and not math.isfinite(value):  # NB: isfinite overflows on huge integers
            raise ApiError(f"{name} must be a finite number", field=name)
        fields[name] = value
    return fields
