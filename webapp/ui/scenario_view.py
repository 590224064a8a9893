"""A performance scenario's outcome arranged for the job page: verdict, reasons, windows, what was measured."""

from __future__ import annotations

from typing import Any

SETTING_LABELS = {
    "target_qps": "Target queries/s",
    "latency_bound_ms": "p99 latency bound (ms)",
    "min_duration_s": "Minimum duration (s)",
    "min_query_count": "Minimum queries",
    "max_duration_s": "Maximum duration (s)",
    "sample_count": "Sample count",
    "warmup_queries": "Warm-up queries",
    "batch_size": "Samples per query",
    "seed": "Seed",
}


def scenario_view(outcome: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the job page shows of `results.scenario_outcome`; None for an accuracy pass."""
    if not outcome:
        return None
    settings = outcome.get("settings") or {}
    stable = outcome.get("stable")
    return {
        "scenario": outcome["scenario"],
        "verdict": outcome["verdict"],
        "valid": outcome["valid"],
        "reasons": outcome.get("reasons") or [],
        "stability": {True: "stable", False: "UNSTABLE", None: "stability unknown"}[stable],
        "stability_class": {True: "valid", False: "unstable", None: "unknown"}[stable],
        "stability_note": outcome.get("stability_note", ""),
        "metric": outcome["metric"],
        "windows": outcome.get("windows") or [],
        "latency": outcome.get("latency_ms") or {},
        "throughput": outcome.get("throughput_samples_per_s"),
        "achieved_qps": outcome.get("achieved_qps"),
        "duration_s": outcome.get("duration_s"),
        "queries": outcome.get("queries") or {},
        "samples": outcome.get("samples") or {},
        "sample_order": outcome.get("sample_order") or {},
        "settings": [(label, settings[key]) for key, label in SETTING_LABELS.items() if settings.get(key) is not None],
    }
