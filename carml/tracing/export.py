"""OTLP/HTTP export of finished spans, when `CARML_OTLP_ENDPOINT` is set (e.g. Jaeger's port 4318).

One exporter per process, endpoint and service, created on first use (never at import, and so never
before a worker forks). Spans are handed to a `BatchSpanProcessor`, whose thread sends them in the
background: a slow or absent collector never holds up a job, and the spans are in the database anyway.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from carml.tracing.records import SpanRecord

# Spans leave within this long of being recorded, so a trace shows up in Jaeger while one looks at the job.
SCHEDULE_DELAY_MS = 500
EXPORT_TIMEOUT_S = 5.0
INSTRUMENTATION_SCOPE = "carml"


@dataclass(frozen=True)
class _Pipeline:
    processor: Any  # BatchSpanProcessor
    resource: Any  # the process's OpenTelemetry Resource (service.name)


#: Spans the exporter may hold: several shards at the default CARML_TRACE_MAX_SPANS. NB: a full queue drops spans
#: silently, so `export` also flushes as it goes when handed more than half of this at once.
QUEUE_SPANS = 65_536

_pipelines: dict[tuple[str, str], _Pipeline] = {}
_lock = threading.Lock()


def _pipeline(endpoint: str, service: str) -> _Pipeline:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    with _lock:
        key = (endpoint, service)
        if key not in _pipelines:
            exporter = OTLPSpanExporter(endpoint=endpoint, timeout=EXPORT_TIMEOUT_S)
            processor = BatchSpanProcessor(
                exporter, schedule_delay_millis=SCHEDULE_DELAY_MS, max_queue_size=QUEUE_SPANS
            )
            # A short-lived process (the CLI) sends what is still queued when it exits.
            atexit.register(processor.shutdown)
            _pipelines[key] = _Pipeline(processor, Resource.create({"service.name": service}))
        return _pipelines[key]


def _readable_span(record: SpanRecord, resource: Any) -> Any:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, TraceFlags

    def context(span_id: str) -> SpanContext:
        return SpanContext(int(record.trace_id, 16), int(span_id, 16), is_remote=False, trace_flags=TraceFlags(1))

    attributes = {k: v for k, v in record.all_attributes.items() if isinstance(v, (str, bool, int, float))}
    if record.shard_index is not None:
        attributes["shard"] = record.shard_index
    if record.batch_index is not None:
        attributes["batch"] = record.batch_index
    # NB: the spans were measured without OpenTelemetry (see shard_spans) and already carry the ids the
    # database has, so they are handed to the exporter as finished ReadableSpans rather than re-created.
    return ReadableSpan(
        name=record.name,
        context=context(record.span_id),
        parent=context(record.parent_span_id) if record.parent_span_id else None,
        resource=resource,
        attributes=attributes,
        instrumentation_scope=InstrumentationScope(INSTRUMENTATION_SCOPE),
        start_time=record.start_ns,
        end_time=record.end_ns,
    )


def export(endpoint: str, service: str, records: Iterable[SpanRecord]) -> None:
    """Queue finished spans for the collector at `endpoint`; a no-op when no endpoint is configured."""
    if not endpoint:
        return
    pipeline = _pipeline(endpoint, service)
    for count, record in enumerate(records, start=1):
        pipeline.processor.on_end(_readable_span(record, pipeline.resource))
        if count % (QUEUE_SPANS // 2) == 0:
            pipeline.processor.force_flush(int(EXPORT_TIMEOUT_S * 1000))


def flush(timeout_s: float = EXPORT_TIMEOUT_S) -> None:
    """Send every queued span now (tests, and processes about to exit)."""
    with _lock:
        pipelines = list(_pipelines.values())
    for pipeline in pipelines:
        pipeline.processor.force_flush(int(timeout_s * 1000))
