"""A job's trace through the REST API (as its OpenAPI schema says) and on the job page, and the trace_level field."""

from __future__ import annotations

import pytest

from carml.db.models import TraceSpan
from carml.db.session import session_scope
from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache

WORKER_ID = "cpu-test@host"  # the live worker of the `settings` fixture's database


def _run(client, settings, **changes) -> str:
    body = {"kind": "evaluate", "model": "digits-cnn", "framework": "onnxruntime", "dataset": "digits", "limit": 24}
    created = client.post("/api/v1/jobs", json={**body, "batch_size": 8, **changes})
    assert created.status_code == 201, created.json
    assert run_shard(settings, created.json["id"], 0, WORKER_ID, ModelCache()) == "succeeded"
    return str(created.json["id"])


def test_the_trace_endpoint_gives_every_span_as_documented(client, settings) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    job_id = _run(client, settings)
    components = client.get("/api/openapi.json").json["components"]
    response = client.get(f"/api/v1/jobs/{job_id}/trace")
    assert response.status_code == 200
    jsonschema.Draft202012Validator({"$ref": "#/components/schemas/Trace", "components": components}).validate(
        response.json
    )
    trace = response.json
    with session_scope(settings.database) as session:
        stored = session.query(TraceSpan).filter_by(job_id=job_id).count()
    assert trace["total"] == len(trace["spans"]) == stored == 1 + 4 + 3 * 6  # submit; queue, shard, model, store
    assert trace["trace_level"] == "stage" and len(trace["trace_id"]) == 32
    assert client.get(f"/api/v1/jobs/{job_id}").json["trace_id"] == trace["trace_id"]
    starts = [span["started_at"] for span in trace["spans"]]
    assert starts == sorted(starts)
    page = client.get(f"/api/v1/jobs/{job_id}/trace?limit=5&offset=5").json
    assert [s["span_id"] for s in page["spans"]] == [s["span_id"] for s in trace["spans"][5:10]]


def test_trace_level_is_a_checked_request_field(client, settings) -> None:
    body = {"kind": "evaluate", "model": "digits-cnn", "framework": "onnxruntime", "dataset": "digits"}
    refused = client.post("/api/v1/jobs", json={**body, "trace_level": "verbose"})
    assert refused.status_code == 400
    assert (
        refused.json["error"]["field"] == "trace_level" and "none, stage, framework" in refused.json["error"]["message"]
    )
    untraced = _run(client, settings, trace_level="none")
    trace = client.get(f"/api/v1/jobs/{untraced}/trace").json
    assert (trace["trace_id"], trace["trace_level"], trace["total"], trace["spans"]) == (None, "none", 0, [])
    assert client.get("/api/v1/jobs/0123abcd/trace").status_code == 404
    bad_limit = client.get(f"/api/v1/jobs/{untraced}/trace?limit=0")
    assert bad_limit.status_code == 400 and bad_limit.json["error"]["field"] == "limit"


def test_the_job_page_shows_the_trace_and_its_timeline(client, settings) -> None:
    job_id = _run(client, settings)
    html = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert 'id="trace"' in html and 'id="trace-chart"' in html and "trace.js" in html
    for name in ("submit", "queue", "shard", "batch", "fetch", "decode", "preprocess", "predict", "store"):
        assert f'<tr data-span="{name}">' in html, name
    timeline = client.get(f"/jobs/{job_id}/timeline.json").json["timeline"]
    rows = timeline["rows"]
    assert timeline["total"] == timeline["drawn"] == len(rows) == 23
    assert [(r["label"], r["depth"]) for r in rows[:3]] == [("submit", 0), ("queue 0", 1), ("shard 0", 1)]
    # Depth first: each batch row is followed by its five stages, one level deeper.
    first = next(i for i, r in enumerate(rows) if r["label"] == "batch 0")
    assert [r["name"] for r in rows[first + 1 : first + 6]] == [
        "fetch",
        "decode",
        "preprocess",
        "predict",
        "postprocess",
    ]
    assert {r["depth"] for r in rows[first + 1 : first + 6]} == {rows[first]["depth"] + 1} == {3}
    assert all(0 <= r["start_ms"] <= r["end_ms"] for r in rows)

    untraced = _run(client, settings, trace_level="none")
    assert 'id="trace"' not in client.get(f"/jobs/{untraced}").get_data(as_text=True)


def test_cli_trace_level_is_for_jobs_only(run_cli) -> None:
    code, _, err = run_cli("evaluate", "digits-cnn", "-d", "digits", "--local", "--trace-level", "stage")
    assert code == 2 and "--trace-level applies to jobs" in err
    code, _, err = run_cli("evaluate", "digits-cnn", "-d", "digits", "--trace-level", "everything")
    assert code == 2 and "'everything' is not one of 'none', 'stage', 'framework'" in err
