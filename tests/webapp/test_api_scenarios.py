"""Performance scenarios through the REST API: accepted fields, errors naming the field, the outcome in results."""

from __future__ import annotations

import pytest

from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache

BODY = {"kind": "evaluate", "model": "digits-cnn", "framework": "onnxruntime", "dataset": "digits"}


def test_a_server_scenario_is_accepted_with_its_options(client, enqueued) -> None:
    body = {**BODY, "scenario": "server", "target_qps": 25.5, "latency_bound_ms": 40, "min_query_count": 10, "seed": 3}
    response = client.post("/api/v1/jobs", json=body)
    assert response.status_code == 201, response.json
    job = response.json
    assert job["scenario"] == "server" and job["shards"] == 1 and job["progress"]["total"] == 100
    assert enqueued == [(job["id"], 0, "cpu")]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"scenario": "turbo"}, "scenario", "scenario must be one of accuracy, single-stream, offline, server"),
        ({"scenario": "server", "latency_bound_ms": 50}, "target_qps", "needs target_qps"),
        ({"scenario": "server", "target_qps": "fast", "latency_bound_ms": 50}, "target_qps", "must be a number"),
        ({"scenario": "server", "target_qps": 10, "latency_bound_ms": 0}, "latency_bound_ms", "greater than 0"),
        ({"scenario": "offline", "min_query_count": 2.5}, "min_query_count", "must be an integer"),
        ({"scenario": "offline", "min_duration_s": True}, "min_duration_s", "must be a number"),
        ({"scenario": "offline", "shards": 2}, "shards", "shards must be 1"),
        ({"scenario": "single-stream", "target_qps": 5}, "target_qps", "server scenario only"),
        ({"seed": 1}, "seed", "not accuracy"),
        ({"scenario": "offline", "max_duration_s": 1, "min_duration_s": 5}, "max_duration_s", "at least min_dur"),
    ],
)
def test_bad_scenario_fields_are_400s_naming_the_field(client, enqueued, fields, field, message) -> None:
    response = client.post("/api/v1/jobs", json={**BODY, **fields})
    assert response.status_code == 400, response.json
    error = response.json["error"]
    assert error["field"] == field and message in error["message"] and error["status"] == 400
    assert enqueued == [] and client.get("/api/v1/jobs").json["jobs"] == []


def test_a_finished_scenario_job_reports_its_outcome(client, settings) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    body = {**BODY, "scenario": "offline", "batch_size": 8, "min_duration_s": 0.1, "min_query_count": 40}
    job_id = client.post("/api/v1/jobs", json=body).json["id"]
    assert run_shard(settings, job_id, 0, "cpu-test@host", ModelCache()) == "succeeded"
    response = client.get(f"/api/v1/results/{job_id}")
    assert response.status_code == 200
    components = client.get("/api/openapi.json").json["components"]
    jsonschema.Draft202012Validator({"$ref": "#/components/schemas/JobResult", "components": components}).validate(
        response.json
    )
    outcome = response.json["scenario_outcome"]
    assert outcome["scenario"] == "offline" and outcome["settings"]["batch_size"] == 8
    assert response.json["valid"] is outcome["valid"] and response.json["stable"] is outcome["stable"]
    assert outcome["metric"]["name"] == "throughput_samples_per_s"
    assert response.json["throughput_items_per_s"] == outcome["throughput_samples_per_s"]
    document = client.get("/api/openapi.json").json
    evaluate = document["components"]["schemas"]["EvaluateRequest"]["properties"]
    assert {"scenario", "target_qps", "latency_bound_ms", "min_duration_s", "min_query_count", "seed"} <= set(evaluate)
