"""A shard's spans, built after it ran from the timings its batches recorded (no span is made in the loop).

Each batch dict (see `carml.evaluation.runner`) has milliseconds per stage ("load", "preprocess",
"predict", "postprocess", optionally "decode", which is part of "preprocess") and "started": the epoch
seconds at which stages began. A stage without its own start follows the previous stage; one with
neither is left out. Reading, decoding and the other preprocessing steps alternate item by item inside a
batch, so their spans lie end to end from the moment the batch's reading began, each as long as its
items took in total. Batches overlap one another, as the prefetch threads made them.

The shape of a shard's trace:

    submit (root, from the submitting process)
    ├── queue            job created → shard claimed
    └── shard
        ├── load_model   (cold loads only)
        ├── batch        one per batch
        │   ├── fetch, decode, preprocess, predict, postprocess
        │   └──          predict: operators (trace level `framework`)
        └── store        outputs to the object store and the database
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from carml.tracing.propagation import TraceParent
from carml.tracing.records import SpanRecord, new_span_ids
from predictors.profiling import OperatorEvent

#: Batch timing key -> span name, in pipeline order.
STAGE_SPANS = (
    ("load", "fetch"),
    ("decode", "decode"),
    ("preprocess", "preprocess"),
    ("predict", "predict"),
    ("postprocess", "postprocess"),
)


@dataclass(frozen=True)
class ShardTraceContext:
    """Where a shard's spans attach, what they all carry, and how many may be kept."""

    parent: TraceParent  # the job's `submit` span
    shard_index: int
    attributes: dict[str, Any]  # job id, model, framework, batch size, hardware tag, worker: shared by every span
    queued_ns: int  # when the job was recorded
    started_ns: int  # when this shard was claimed by its worker
    max_spans: int


@dataclass(frozen=True)
class Window:
    """A stretch of time with what to say about it."""

    start_ns: int
    end_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)


def _stage_windows(batch: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(span name, start ns, end ns) of each stage of one batch that can be placed."""
    started = batch.get("started") or {}
    decode_ms = float(batch.get("decode") or 0.0)
    windows = []
    cursor: int | None = None  # where the previous stage ended
    for key, name in STAGE_SPANS:
        if key == "decode" and "decode" not in batch:
            continue
        if key not in batch:
            cursor = None
            continue
        ms = float(batch[key]) - (decode_ms if key == "preprocess" else 0.0)
        start = round(started[key] * 1e9) if started.get(key) is not None else cursor
        if start is None:
            continue
        end = start + max(0, int(ms * 1e6))
        windows.append((name, start, end))
        cursor = end
    return windows


def _operators_by_batch(windows: list[list[tuple[str, int, int]]], events: Sequence[OperatorEvent]) -> list[list[int]]:
    """Indexes of the operator events that started inside each batch's predict span."""
    predicts = sorted(
        (start, end, index) for index, stages in enumerate(windows) for name, start, end in stages if name == "predict"
    )
    starts = [start for start, _, _ in predicts]
    found: list[list[int]] = [[] for _ in windows]
    for position, event in enumerate(events):
        at = bisect.bisect_right(starts, event.start_ns) - 1
        if at >= 0 and event.start_ns <= predicts[at][1]:
            found[predicts[at][2]].append(position)
    return found


class _Spans:
    """The records of one shard, all in its trace, each carrying the shard's attributes."""

    def __init__(self, context: ShardTraceContext):
        self.context = context
        self.records: list[SpanRecord] = []
        self.unused_ids: list[str] = []
        self.trace_id, self.shard_index = context.parent.trace_id, context.shard_index

    def new_id(self) -> str:
        if not self.unused_ids:
            self.unused_ids = new_span_ids(64)
        return self.unused_ids.pop()

    def add(
        self,
        name: str,
        parent: str,
        start_ns: int,
        end_ns: int,
        attributes: dict[str, Any] | None = None,
        batch_index: int | None = None,
    ) -> SpanRecord:
        # NB: positional, and the fields read once in __init__: a batch-1 shard makes thousands of these.
        record = SpanRecord(
            name,
            self.trace_id,
            self.unused_ids.pop() if self.unused_ids else self.new_id(),
            parent,
            start_ns,
            end_ns if end_ns > start_ns else start_ns,
            attributes or {},
            self.shard_index,
            batch_index,
            self.context.attributes,
        )
        self.records.append(record)
        return record


def shard_spans(
    context: ShardTraceContext,
    batches: Sequence[dict[str, Any]],
    *,
    ended_ns: int,
    model_load: Window | None = None,
    store: Window | None = None,
    operators: Sequence[OperatorEvent] = (),
    predict_attributes: dict[str, Any] | None = None,
) -> list[SpanRecord]:
    """Every span of one shard. Past `context.max_spans`, whole batches are left out from the first that
    does not fit; the `shard` span says how many spans that dropped (`spans_dropped`)."""
    spans = _Spans(context)
    root = context.parent.span_id
    spans.add("queue", root, context.queued_ns, context.started_ns)
    shard = spans.add("shard", root, context.started_ns, ended_ns, {"batches": len(batches)})
    shard_id = shard.span_id
    if model_load is not None:
        spans.add("load_model", shard_id, model_load.start_ns, model_load.end_ns, model_load.attributes)
    if store is not None:
        spans.add("store", shard_id, store.start_ns, store.end_ns, store.attributes)
    windows = [_stage_windows(batch) for batch in batches]
    chosen = _operators_by_batch(windows, operators) if operators else [[] for _ in batches]
    budget = context.max_spans - len(spans.records)
    dropped = 0
    for index, (batch, stages, batch_operators) in enumerate(zip(batches, windows, chosen, strict=True)):
        cost = (1 + len(stages) + len(batch_operators)) if stages else 0
        if dropped or cost > budget:
            dropped += cost
            continue
        budget -= cost
        if stages:
            predict_id = _add_batch(spans, shard_id, index, batch, stages, predict_attributes)
            if predict_id is not None and batch_operators:
                _add_operators(spans, predict_id, index, operators, batch_operators)
    shard.attributes["spans_dropped"] = dropped
    return spans.records


def _add_batch(
    spans: _Spans,
    shard_id: str,
    index: int,
    batch: dict[str, Any],
    stages: list[tuple[str, int, int]],
    predict_attributes: dict[str, Any] | None,
) -> str | None:
    """The batch span and its stage spans; returns the predict span's id, if it has one."""
    attributes = {"items": batch.get("size"), "warmup": batch.get("warmup"), "item": batch.get("item")}
    start, end = min(s for _, s, _ in stages), max(e for _, _, e in stages)
    batch_id = spans.add("batch", shard_id, start, end, attributes, batch_index=index).span_id
    predict_id = None
    items = {"items": batch.get("size")}  # NB: one dict for the batch's stage spans: nothing changes them later
    for name, stage_start, stage_end in stages:
        if name == "predict":
            extra = {**items, **(predict_attributes or {})}
            predict_id = spans.add(name, batch_id, stage_start, stage_end, extra, index).span_id
        else:
            spans.add(name, batch_id, stage_start, stage_end, items, index)
    return predict_id


def _add_operators(
    spans: _Spans, predict_id: str, index: int, operators: Sequence[OperatorEvent], chosen: list[int]
) -> None:
    """Operator spans under the predict span, nested as the profiler nested them."""
    ids: dict[int, str] = {}  # position in `operators` -> span id
    # Enclosing operators start first (or at once, and end later): parents get their ids before children.
    for position in sorted(chosen, key=lambda i: (operators[i].start_ns, -operators[i].end_ns)):
        event = operators[position]
        parent = ids.get(event.parent, predict_id) if event.parent is not None else predict_id
        attributes = {"operator": True, **event.attributes}
        span = spans.add(event.name, parent, event.start_ns, event.end_ns, attributes, batch_index=index)
        ids[position] = span.span_id
