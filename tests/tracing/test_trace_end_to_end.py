"""A job's trace across processes: submitted here, queued on Redis, run by a real worker; read back from
PostgreSQL with every stage span and its duration, and received by an OTLP collector with the same ids."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import text
from support import unique_tag

from carml.db.models import JobStatus
from carml.db.session import session_scope
from carml.jobs.service import EvaluationRequest, get_job, submit_evaluation
from carml.jobs.summary import job_summary
from carml.settings import load_settings
from carml.tracing import export
from worker.celery_app import celery_enqueuer, create_celery_app

STAGES = ("fetch", "decode", "preprocess", "predict", "postprocess")
SPANS_SQL = text(
    "SELECT trace_id, span_id, parent_span_id, name, shard_index, batch_index, started_at, duration_ms, attributes "
    "FROM spans WHERE job_id = :job_id ORDER BY started_at"
)


def approx(value: float) -> Any:
    return pytest.approx(value, abs=1e-3)  # ms: spans keep nanoseconds, the timings their float


def _submit(env: dict[str, str], **request: Any) -> str:
    settings = load_settings(env)
    return submit_evaluation(settings, EvaluationRequest(**request), celery_enqueuer(create_celery_app(settings)))


def _wait(env: dict[str, str], job_id: str, timeout: float = 120) -> dict[str, Any]:
    settings = load_settings(env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        summary = job_summary(get_job(settings, job_id))
        if JobStatus(summary["status"]).final:
            return summary
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def _sql(env: dict[str, str], statement: Any, **params: Any) -> list[dict[str, Any]]:
    with session_scope(load_settings(env).database) as session:
        return [dict(row._mapping) for row in session.execute(statement, params)]


def test_a_job_trace_is_in_sql_and_at_the_collector(service_env, start_worker, otlp_collector) -> None:
    env = {**service_env, "CARML_OTLP_ENDPOINT": otlp_collector.endpoint}
    tag = unique_tag("cpu")
    start_worker(env, tag)
    request = {"model": "digits-cnn", "framework": "onnxruntime", "dataset": "digits-png", "hardware_tag": tag}
    traced = _submit(env, **request, batch_size=32, limit=96)
    untraced = _submit(env, **request, batch_size=32, limit=32, trace_level="none")
    assert _wait(env, traced)["status"] == _wait(env, untraced)["status"] == "succeeded"

    spans = _sql(env, SPANS_SQL, job_id=traced)
    (trace_id,) = {s["trace_id"] for s in spans}
    assert _sql(env, text("SELECT trace_id FROM jobs WHERE id = :id"), id=traced) == [{"trace_id": trace_id}]
    names = sorted(s["name"] for s in spans)
    assert names == sorted(["submit", "queue", "shard", "load_model", "store", *["batch", *STAGES] * 3])

    # Parent links, across the submitting process and the worker: submit -> queue | shard -> batch -> stages.
    by_id = {s["span_id"]: s for s in spans}
    (submit,) = [s for s in spans if s["name"] == "submit"]
    assert submit["parent_span_id"] is None
    for span in spans:
        parent = by_id.get(span["parent_span_id"]) if span["parent_span_id"] else None
        expected = {
            "submit": None,
            "queue": "submit",
            "shard": "submit",
            "load_model": "shard",
            "store": "shard",
            "batch": "shard",
        }.get(span["name"], "batch")
        assert (parent["name"] if parent else None) == expected, span["name"]
        if expected == "batch":
            assert parent["batch_index"] == span["batch_index"]
            # A stage lies inside its batch (to the microsecond the database keeps).
            assert parent["started_at"] <= span["started_at"]
        assert span["duration_ms"] >= 0
    assert all(s["duration_ms"] > 0 for s in spans if s["name"] in ("predict", "decode", "shard", "store", "queue"))
    worker_attributes = {k: spans[-1]["attributes"][k] for k in ("model", "framework", "batch_size", "hardware_tag")}
    assert worker_attributes == {
        "model": "digits-cnn",
        "framework": "onnxruntime",
        "batch_size": 32,
        "hardware_tag": tag,
    }
    assert spans[-1]["attributes"]["worker"].startswith(f"{tag}-")

    # The stage spans are the stage timings: fetch is `load`, decode + preprocess is `preprocess`.
    timings = {
        (row["batch_index"], row["stage"]): row["duration_ms"]
        for row in _sql(env, text("SELECT * FROM stage_timings WHERE job_id = :id"), id=traced)
    }
    durations = {(s["batch_index"], s["name"]): s["duration_ms"] for s in spans if s["name"] in STAGES}
    for batch in range(3):
        assert durations[batch, "fetch"] == approx(timings[batch, "load"])
        assert durations[batch, "decode"] + durations[batch, "preprocess"] == approx(timings[batch, "preprocess"])
        assert durations[batch, "predict"] == approx(timings[batch, "predict"])

    # The collector got the very same spans (ids, parents, names) from both processes.
    received = otlp_collector.wait_for(set(by_id))
    for span_id, span in received.items():
        assert (span.trace_id, span.parent_span_id, span.name) == (
            trace_id,
            by_id[span_id]["parent_span_id"],
            by_id[span_id]["name"],
        )
        assert span.service == ("carml" if span.name == "submit" else "carml-worker")
    assert received[submit["span_id"]].attributes["job_id"] == traced
    # Each worker span carries its shard's attributes there too (the database keeps them once per shard).
    for span in received.values():
        if span.name != "submit":
            assert {k: span.attributes.get(k) for k in worker_attributes} == worker_attributes, span.name

    # Trace level none: no trace id, no spans, nothing sent.
    assert _sql(env, text("SELECT trace_id FROM jobs WHERE id = :id"), id=untraced) == [{"trace_id": None}]
    assert _sql(env, SPANS_SQL, job_id=untraced) == []
    export.flush()
    time.sleep(1)  # longer than the worker's export delay: anything it had queued has arrived
    assert not [s for s in otlp_collector.received() if s.attributes.get("job_id") == untraced]
