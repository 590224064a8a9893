"""Tracing fixtures: a real OTLP/HTTP collector on loopback; the API tests' app and settings (SQLite, a local
store, a live `cpu` worker row) for in-process runs; the service area's fixtures for runs through the queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

# PostgreSQL + Redis + S3 + `carml worker` processes, for the end-to-end tests.
from service.conftest import service_env, start_worker  # noqa: F401
from support import webapp_conftest

_api = webapp_conftest("tracing")
settings = _api.settings
enqueued = _api.enqueued
app = _api.app
client = _api.client


@pytest.fixture()
def worker_id() -> str:
    """The id of the live `cpu` worker the `settings` database knows."""
    return str(_api.WORKER_ID)


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    service: str
    start_ns: int
    end_ns: int
    attributes: dict[str, object]


@dataclass
class Collector:
    """What an OTLP collector received: every span of every ExportTraceServiceRequest, decoded."""

    endpoint: str
    spans: list[ReceivedSpan] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[ReceivedSpan]:
        with self.lock:
            return list(self.spans)

    def wait_for(self, span_ids: set[str], timeout: float = 15) -> dict[str, ReceivedSpan]:
        """The received spans with these ids, once all have arrived (fails after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            found = {s.span_id: s for s in self.received() if s.span_id in span_ids}
            if set(found) == span_ids or time.monotonic() > deadline:
                assert set(found) == span_ids, f"the collector lacks {len(span_ids - set(found))} spans"
                return found
            time.sleep(0.1)


def _value(any_value: object) -> object:
    kind = any_value.WhichOneof("value")  # type: ignore[attr-defined]
    return getattr(any_value, kind) if kind else None


def _decode(body: bytes) -> list[ReceivedSpan]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        name=span.name,
                        service=str(resource.get("service.name")),
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes={a.key: _value(a.value) for a in span.attributes},
                    )
                )
    return spans


@pytest.fixture()
def otlp_collector() -> Iterator[Collector]:
    """An OTLP/HTTP traces endpoint (protobuf, as OTLPSpanExporter sends it) on a free loopback port."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    collector: Collector

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
                self.send_error(404)
                return
            spans = _decode(body)
            with collector.lock:
                collector.spans.extend(spans)
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:  # the test output is clearer without access logs
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    collector = Collector(f"http://127.0.0.1:{server.server_port}/v1/traces")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield collector
    finally:
        server.shutdown()
        server.server_close()
