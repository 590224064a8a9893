"""The OpenAPI schemas of performance scenarios: the evaluate request's scenario fields and the outcome a
result carries (docs/scenarios.md). Plain dicts, so that openapi_schemas can build on them at import."""

from __future__ import annotations

from typing import Any

from carml.db.models import Scenario
from carml.evaluation import scenario_options as limits

Schema = dict[str, Any]

_POSITIVE = {"type": "number", "exclusiveMinimum": 0}

SCENARIO_REQUEST_PROPERTIES: dict[str, Schema] = {
    "scenario": {
        "enum": [s.value for s in Scenario],
        "default": Scenario.ACCURACY.value,
        "description": "accuracy (a pass over the dataset) or a LoadGen-style performance scenario. "
        "A scenario runs as one shard.",
    },
    "target_qps": {
        **_POSITIVE,
        "maximum": limits.MAX_TARGET_QPS,
        "description": "server only, required: the mean rate queries arrive at (Poisson), per second.",
    },
    "latency_bound_ms": {
        **_POSITIVE,
        "description": "server only, required: the p99 latency (queueing included) a valid run stays within.",
    },
    "min_duration_s": {
        **_POSITIVE,
        "maximum": limits.MAX_DURATION_S,
        "default": limits.DEFAULT_MIN_DURATION_S,
        "description": "The timed run lasts at least this long.",
    },
    "min_query_count": {
        "type": "integer",
        "minimum": 1,
        "maximum": limits.MAX_QUERIES,
        "default": limits.DEFAULT_MIN_QUERY_COUNT,
        "description": "... and at least this many queries (offline: samples).",
    },
    "max_duration_s": {
        **_POSITIVE,
        "maximum": limits.MAX_DURATION_S,
        "default": limits.DEFAULT_MAX_DURATION_S,
        "description": "The timed run is cut here (and is then INVALID); at least min_duration_s.",
    },
    "sample_count": {
        "type": "integer",
        "minimum": 1,
        "maximum": limits.MAX_SAMPLE_COUNT,
        "default": limits.DEFAULT_SAMPLE_COUNT,
        "description": "The performance sample set: at most this many items, loaded before timing starts.",
    },
    "seed": {
        "type": "integer",
        "minimum": 0,
        "default": 0,
        "description": "Fixes the order samples are issued in and the server's arrival schedule.",
    },
}

_NULLABLE_NUMBER = {"type": ["number", "null"]}

SCENARIO_OUTCOME: Schema = {
    "type": ["object", "null"],
    "description": "A performance scenario's outcome (null for an accuracy pass); see docs/scenarios.md.",
    "properties": {
        "scenario": {"enum": [s.value for s in Scenario if s != Scenario.ACCURACY]},
        "verdict": {"enum": ["VALID", "INVALID"]},
        "valid": {"type": "boolean"},
        "reasons": {"type": "array", "items": {"type": "string"}, "description": "Why the run is INVALID."},
        "stable": {"type": ["boolean", "null"], "description": "The 3 windows agree within 5 %; null: unknown."},
        "stability": {"enum": ["stable", "UNSTABLE", "unknown"]},
        "stability_note": {"type": "string"},
        "metric": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "unit": {"type": "string"}, "value": _NULLABLE_NUMBER},
        },
        "windows": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "start_s": {"type": "number"},
                    "end_s": {"type": "number"},
                    "queries": {"type": "integer"},
                    "value": _NULLABLE_NUMBER,
                },
            },
        },
        "duration_s": {"type": "number"},
        "latency_ms": {"type": "object", "description": "Query latencies: p50, p90, p99, trimmed_mean, ..."},
        "throughput_samples_per_s": _NULLABLE_NUMBER,
        "settings": {"type": "object"},
        "seed": {"type": "integer"},
        "queries": {"type": "object"},
        "samples": {"type": "object"},
        "sample_order": {"type": "object", "description": "sha256 (and the first indices) of the samples issued."},
    },
    "required": ["scenario", "verdict", "valid", "reasons", "stable", "metric", "windows", "settings", "seed"],
}

SCENARIO_RESULT_PROPERTIES: dict[str, Schema] = {
    "scenario_outcome": SCENARIO_OUTCOME,
    "valid": {"type": ["boolean", "null"], "description": "A scenario's verdict; null for an accuracy pass."},
    "stable": {"type": ["boolean", "null"], "description": "Whether a scenario's windows agreed; null: unknown."},
}

SCENARIO_JOB_PROPERTY: Schema = {
    "enum": [s.value for s in Scenario],
    "description": "accuracy, or the performance scenario the job runs.",
}
