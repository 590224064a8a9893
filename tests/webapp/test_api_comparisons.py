"""Comparisons through the API on the embedded backends: fan-out into legs, validation before anything is
written, side-by-side reading with the best leg per metric, and the CSV table."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from carml.db.models import Comparison, Job
from carml.db.session import session_scope
from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache
from carml.jobs.workers import register_worker

BODY = {"models": ["digits-cnn"], "dataset": "digits", "frameworks": ["onnxruntime"], "limit": 40}


@pytest.fixture()
def second_tag(settings) -> str:
    register_worker(settings, "cpu-1thread-test@host", "cpu-1thread")
    return "cpu-1thread"


def _conforms(client, value: dict, schema: str) -> None:
    import jsonschema

    components = client.get("/api/openapi.json").json["components"]
    root = {"$ref": f"#/components/schemas/{schema}", "components": components}
    jsonschema.Draft202012Validator(root).validate(value)


def _rows(settings) -> tuple[int, int]:
    with session_scope(settings.database) as session:
        return (
            session.scalar(select(func.count()).select_from(Comparison)),
            session.scalar(select(func.count()).select_from(Job)),
        )


def test_a_comparison_fans_out_one_job_per_leg(client, enqueued, settings, second_tag) -> None:
    body = {**BODY, "hardware_tags": ["cpu", second_tag], "batch_sizes": [8, 32]}
    response = client.post("/api/v1/comparisons", json=body)
    assert response.status_code == 201, response.json
    comparison = response.json
    assert response.headers["Location"] == f"/api/v1/comparisons/{comparison['id']}"
    legs = comparison["legs"]
    assert [(leg["hardware_tag"], leg["batch_size"]) for leg in legs] == [
        ("cpu", 8),
        ("cpu", 32),
        (second_tag, 8),
        (second_tag, 32),
    ]
    assert [leg["leg"] for leg in legs] == [0, 1, 2, 3]
    assert comparison["status"] == "queued" and comparison["legs_total"] == 4 and comparison["legs_finished"] == 0
    assert sorted(comparison["varies"]) == ["batch_sizes", "hardware_tags"]
    assert sorted((tag, shard) for _, shard, tag in enqueued) == [("cpu", 0)] * 2 + [(second_tag, 0)] * 2
    _conforms(client, comparison, "Comparison")
    _conforms(client, client.get("/api/v1/comparisons").json, "ComparisonList")
    listed = client.get("/api/v1/comparisons").json["comparisons"]
    assert [c["id"] for c in listed] == [comparison["id"]] and listed[0]["legs_by_status"] == {"queued": 4}


def test_legs_are_read_side_by_side_with_the_best_marked(client, settings, second_tag) -> None:
    response = client.post("/api/v1/comparisons", json={**BODY, "hardware_tags": ["cpu", second_tag]})
    comparison_id = response.json["id"]
    models = ModelCache()
    first = response.json["legs"][0]["job_id"]
    assert run_shard(settings, first, 0, "cpu-test@host", models) == "succeeded"
    partial = client.get(f"/api/v1/comparisons/{comparison_id}").json
    assert partial["status"] == "running" and partial["legs_finished"] == 1  # partial results while legs run
    assert partial["legs"][0]["top1"] is not None and partial["legs"][1]["top1"] is None
    assert run_shard(settings, partial["legs"][1]["job_id"], 0, "cpu-1thread-test@host", models) == "succeeded"
    done = client.get(f"/api/v1/comparisons/{comparison_id}").json
    assert done["status"] == "succeeded"
    _conforms(client, done, "Comparison")
    for leg in done["legs"]:
        assert leg["status"] == "succeeded" and leg["items"] == 40
        assert leg["latency_p50_ms"] > 0 and leg["latency_p99_ms"] >= leg["latency_p50_ms"]
        assert leg["throughput_items_per_s"] > 0 and leg["workers"]
    assert done["legs"][0]["top1"] == done["legs"][1]["top1"]  # the same model on the same items
    assert done["best"]["top1"] == [0, 1]
    fastest = min(done["legs"], key=lambda leg: leg["latency_p50_ms"])
    assert done["best"]["latency_p50_ms"] == [fastest["leg"]]
    table = client.get(f"/api/v1/comparisons/{comparison_id}?format=csv")
    assert table.status_code == 200 and table.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(table.get_data(as_text=True))))
    assert [r["hardware_tag"] for r in rows] == ["cpu", second_tag] and rows[0]["top1"] == str(done["legs"][0]["top1"])


@pytest.mark.parametrize(
    ("changes", "field", "status"),
    [
        ({"models": None}, "models", 400),
        ({"models": []}, "models", 400),
        ({"models": ["digits-cnn", "digits-cnn"], "hardware_tags": ["cpu"]}, "models", 400),
        ({"models": ["../x.yaml"]}, "models", 400),
        ({"hardware_tags": ["cpu"]}, "hardware_tags", 400),  # one leg is not a comparison
        ({"hardware_tags": ["cpu", "no such tag"]}, "hardware_tags", 400),
        ({"hardware_tags": ["cpu", "nvidia-h100"]}, "hardware_tags", 409),  # no live worker: nothing written
        ({"hardware_tags": ["cpu", "cpu-1thread"], "batch_sizes": [0]}, "batch_sizes", 400),
        ({"hardware_tags": ["cpu", "cpu-1thread"], "batch_sizes": [True]}, "batch_sizes", 400),
        ({"hardware_tags": ["cpu", "cpu-1thread"], "frameworks": ["caffe"]}, "frameworks", 404),
        ({"hardware_tags": ["cpu", "cpu-1thread"], "dataset": "no-such-data"}, "dataset", 404),
        ({"hardware_tags": ["cpu", "cpu-1thread"], "models": ["no-such-model"]}, "models", 404),
        (
            {
                "hardware_tags": ["cpu", "cpu-1thread"],
                "batch_sizes": list(range(1, 17)),
                "models": ["digits-cnn"],
                "frameworks": ["onnxruntime", "pytorch", "tensorflow"],
            },
            "models",
            400,
        ),  # 96 legs: too many
        ({"hardware_tags": ["cpu", "cpu-1thread"], "colour": "red"}, "colour", 400),
    ],
)
def test_a_bad_comparison_is_refused_and_writes_nothing(client, enqueued, settings, second_tag, changes, field, status):
    body = {k: v for k, v in {**BODY, **changes}.items() if v is not None}
    response = client.post("/api/v1/comparisons", json=body)
    assert response.status_code == status, response.json
    assert response.json["error"]["field"] == field
    assert _rows(settings) == (0, 0) and enqueued == []


def test_an_unknown_comparison_is_a_404(client) -> None:
    assert client.get("/api/v1/comparisons/0000").status_code == 404
    assert client.get("/api/v1/comparisons/not a uuid").json["error"]["field"] == "comparison_id"
    assert client.get("/api/v1/comparisons/0000?format=xml").json["error"]["field"] == "format"


def test_every_leg_runs_the_comparisons_scenario(client, settings, second_tag) -> None:
    body = {**BODY, "hardware_tags": ["cpu", second_tag], "scenario": "single-stream", "min_duration_s": 0.2}
    response = client.post("/api/v1/comparisons", json={**body, "min_query_count": 16})
    assert response.status_code == 201, response.json
    legs = response.json["legs"]
    assert [leg["scenario"] for leg in legs] == ["single-stream", "single-stream"]
    assert response.json["spec"]["scenario"] == "single-stream"
    models = ModelCache()
    for leg, worker in zip(legs, ("cpu-test@host", "cpu-1thread-test@host"), strict=True):
        assert run_shard(settings, leg["job_id"], 0, worker, models) == "succeeded"
    done = client.get(f"/api/v1/comparisons/{response.json['id']}").json
    assert all(leg["valid"] is True and leg["latency_p99_ms"] > 0 for leg in done["legs"]), done["legs"]
    page = client.get(f"/comparisons/{response.json['id']}").get_data(as_text=True)
    assert page.count('data-verdict="valid"') == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({}, "target_qps"),  # server needs a target rate
        ({"target_qps": 10, "latency_bound_ms": 50, "min_query_count": 10**400}, "min_query_count"),
        ({"target_qps": 10**400, "latency_bound_ms": 50}, "target_qps"),
        ({"target_qps": 10, "latency_bound_ms": 50, "min_query_count": 1000}, "max_duration_s"),  # 100 s > 60 s
    ],
)
def test_a_scenario_refused_for_one_leg_refuses_the_comparison(
    client, enqueued, settings, second_tag, changes, field
) -> None:
    body = {**BODY, "hardware_tags": ["cpu", second_tag], "scenario": "server", **changes}
    response = client.post("/api/v1/comparisons", json=body)
    assert response.status_code == 400, response.json
    assert response.json["error"]["field"] == field
    assert _rows(settings) == (0, 0) and enqueued == []
