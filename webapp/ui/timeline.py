"""A job's trace arranged for its page: rows of a timeline, each span under its parent, as the API gives them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from carml.db.models import Job
from carml.settings import Settings
from carml.tracing.store import span_totals

MAX_ROWS = 250
#: Stage spans in pipeline order; a row's colour says which stage (or kind of span) it is.
KINDS = ("submit", "queue", "shard", "load_model", "batch", "fetch", "decode", "preprocess", "predict")
KINDS += ("postprocess", "store")


def _label(span: dict[str, Any]) -> str:
    name = span["name"]
    if span.get("batch_index") is not None and name == "batch":
        return f"batch {span['batch_index']}"
    if span.get("shard_index") is not None and name in ("queue", "shard"):
        return f"{name} {span['shard_index']}"
    return name


def _depth_first(spans: Sequence[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(depth, span) with every span after its parent and siblings by start; orphans count as roots."""
    known = {span["span_id"] for span in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = span["parent_span_id"] if span["parent_span_id"] in known else None
        children.setdefault(parent, []).append(span)
    ordered: list[tuple[int, dict[str, Any]]] = []
    stack = [(0, span) for span in sorted(children.get(None, []), key=lambda s: s["started_at"], reverse=True)]
    while stack:
        depth, span = stack.pop()
        ordered.append((depth, span))
        below = sorted(children.get(span["span_id"], []), key=lambda s: s["started_at"], reverse=True)
        stack.extend((depth + 1, child) for child in below)
    return ordered


def timeline(spans: Sequence[dict[str, Any]], total: int, max_rows: int = MAX_ROWS) -> dict[str, Any] | None:
    """Rows (label, depth, start and end in ms after the trace began) for a Gantt-like chart; None if no spans."""
    if not spans:
        return None
    starts = {span["span_id"]: datetime.fromisoformat(span["started_at"]) for span in spans}
    origin = min(starts.values())
    rows = []
    for depth, span in _depth_first(spans)[:max_rows]:
        start_ms = (starts[span["span_id"]] - origin).total_seconds() * 1000
        rows.append(
            {
                "label": _label(span),
                "name": span["name"],
                "kind": span["name"] if span["name"] in KINDS else "operator",
                "depth": depth,
                "start_ms": start_ms,
                "end_ms": start_ms + span["duration_ms"],
                "duration_ms": span["duration_ms"],
            }
        )
    return {"origin": origin.isoformat(), "rows": rows, "total": total, "drawn": len(rows)}


def trace_view(settings: Settings, job: Job) -> dict[str, Any] | None:
    """What the job page says about the trace without scripts: its id, level and per-span-name totals."""
    if not job.trace_id:
        return None
    level = (job.parameters or {}).get("trace_level")
    # The trace's own spans in pipeline order, then operators, longest first (as span_totals gives them).
    totals = sorted(
        span_totals(settings, job.id), key=lambda t: KINDS.index(t["name"]) if t["name"] in KINDS else len(KINDS)
    )
    return {"trace_id": job.trace_id, "level": level, "totals": totals}
