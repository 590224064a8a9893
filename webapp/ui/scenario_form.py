"""The Validate form's *Scenario* section: a scenario and its options, read as request fields.

Only the form's own concern is checked here (is it a number?); ranges and which scenario takes which option
are checked by the service, whose message then shows next to the field it names.
"""

from __future__ import annotations

import math
from typing import Any

from carml.db.models import Scenario
from carml.evaluation import scenario_options as defaults
from carml.evaluation.scenario_options import SCENARIO_OPTION_FIELDS
from webapp.ui.forms import Form

SCENARIO_FORM_FIELDS = ("scenario", *SCENARIO_OPTION_FIELDS)
WHOLE_NUMBER_FIELDS = ("min_query_count", "sample_count", "seed")

#: (value, label) of each choice in the scenario select.
SCENARIO_CHOICES = (
    (Scenario.ACCURACY.value, "Accuracy: one pass over the dataset"),
    (Scenario.SINGLE_STREAM.value, "Single-stream: one query at a time (p90 latency)"),
    (Scenario.OFFLINE.value, "Offline: batches of the batch size (throughput)"),
    (Scenario.SERVER.value, "Server: Poisson arrivals at a target rate (p99 latency bound)"),
)

#: What an empty option field means, shown as its placeholder.
PLACEHOLDERS = {
    "target_qps": "required for server",
    "latency_bound_ms": "required for server",
    "min_duration_s": f"{defaults.DEFAULT_MIN_DURATION_S:g}",
    "min_query_count": str(defaults.DEFAULT_MIN_QUERY_COUNT),
    "max_duration_s": f"{defaults.DEFAULT_MAX_DURATION_S:g}",
    "sample_count": str(defaults.DEFAULT_SAMPLE_COUNT),
    "seed": "0",
}


def _number(form: Form, name: str) -> float | int | None:
    raw = form.values.get(name) or ""
    if not raw:
        return None
    what = name.replace("_", " ")
    if name in WHOLE_NUMBER_FIELDS:
        try:
            return int(raw)
        except ValueError:
            form.error(name, f"{what} must be a whole number, got {raw[:20]!r}")
            return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        form.error(name, f"{what} must be a number, got {raw[:20]!r}")
        return None
    return value


def scenario_form_fields(form: Form) -> dict[str, Any]:
    """The section's values as `EvaluationRequest` fields (empty options left out)."""
    scenario = form.values.get("scenario") or Scenario.ACCURACY.value
    if scenario not in {value for value, _ in SCENARIO_CHOICES}:
        form.error("scenario", "choose a scenario from the list")
        scenario = Scenario.ACCURACY.value
    fields: dict[str, Any] = {"scenario": scenario}
    for name in SCENARIO_OPTION_FIELDS:
        value = _number(form, name)
        if value is not None:
            fields[name] = value
    return fields
