"""Submitting, listing, reading and cancelling jobs through the API, with a recording enqueuer (no broker)."""

from __future__ import annotations

import base64
import io
import json

import pytest
from support import TEST_USER

from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache
from carml.jobs.service import get_job

EVALUATE = {"kind": "evaluate", "model": "digits-cnn", "framework": "onnxruntime", "dataset": "digits"}


def _post(client, **changes):
    body = {**EVALUATE, **changes}
    return client.post("/api/v1/jobs", json={k: v for k, v in body.items() if v is not ...})


def test_an_evaluation_is_recorded_and_enqueued(client, enqueued) -> None:
    response = _post(client, batch_size=16, limit=40, shards=2)
    assert response.status_code == 201, response.json
    job = response.json
    assert response.headers["Location"] == f"/api/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["owner"] == TEST_USER and job["kind"] == "evaluate"
    assert job["progress"] == {"done": 0, "total": 40} and job["shards"] == 2 and job["batch_size"] == 16
    assert enqueued == [(job["id"], 0, "cpu"), (job["id"], 1, "cpu")]
    assert client.get(f"/api/v1/jobs/{job['id']}").json == job


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"batch_size": "x"}, "batch_size"),
        ({"batch_size": -1}, "batch_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"batch_size": 3.5}, "batch_size"),
        ({"limit": 0}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"shards": 65}, "shards"),
        ({"shards": False}, "shards"),
        ({"model": ...}, "model"),
        ({"model": 7}, "model"),
        ({"model": "/etc/passwd.yaml"}, "model"),
        ({"dataset": ...}, "dataset"),
        ({"dataset": "../data/x.csv"}, "dataset"),
        ({"framework": ["onnxruntime"]}, "framework"),
        ({"hardware_tag": "cpu queue"}, "hardware_tag"),
        ({"kind": "train"}, "kind"),
        ({"kind": "predict"}, "kind"),
        ({"kind": ...}, "kind"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_each_bad_field_is_a_400_naming_it(client, enqueued, changes, field) -> None:
    response = _post(client, **changes)
    assert response.status_code == 400, response.json
    assert response.json["error"]["field"] == field and response.json["error"]["status"] == 400
    assert enqueued == []


def test_bodies_that_are_not_json_objects_are_refused(client) -> None:
    not_object = client.post("/api/v1/jobs", json=[1, 2])
    assert not_object.status_code == 400 and "JSON object" in not_object.json["error"]["message"]
    broken = client.post("/api/v1/jobs", data="{nope", content_type="application/json")
    assert broken.status_code == 400
    plain = client.post("/api/v1/jobs", data="kind=evaluate", content_type="text/plain")
    assert plain.status_code == 415 and plain.json["error"]["status"] == 415


def test_unknown_model_dataset_and_framework_are_404s(client) -> None:
    model = _post(client, model="no-such-model")
    assert model.status_code == 404 and model.json["error"]["field"] == "model"
    assert "unknown model 'no-such-model'" in model.json["error"]["message"]
    dataset = _post(client, dataset="no-such-data")
    assert dataset.status_code == 404 and dataset.json["error"]["field"] == "dataset"
    framework = _post(client, framework="caffe")
    assert framework.status_code == 404 and "has no caffe manifest" in framework.json["error"]["message"]
    assert framework.json["error"]["field"] == "framework"


def test_a_tag_without_live_workers_is_a_409_saying_how_to_start_one(client, enqueued) -> None:
    response = _post(client, hardware_tag="nvidia-h100")
    assert response.status_code == 409
    assert response.json["error"]["field"] == "hardware_tag"
    assert "carml worker --hardware nvidia-h100" in response.json["error"]["message"]
    assert enqueued == []


def test_list_filters_and_paging(client) -> None:
    ids = [_post(client, limit=10).json["id"] for _ in range(3)]
    other = client.post(
        "/api/v1/jobs",
        data={"kind": "predict", "model": "digits-cnn", "framework": "pytorch", "files": (io.BytesIO(b"x"), "a.png")},
    ).json["id"]
    client.post(f"/api/v1/jobs/{ids[0]}/cancel")

    def listed(query: str) -> list[str]:
        response = client.get(f"/api/v1/jobs{query}")
        assert response.status_code == 200, response.json
        return [j["id"] for j in response.json["jobs"]]

    assert listed("") == [other, *reversed(ids)]
    assert listed("?status=cancelled") == [ids[0]]
    assert listed("?status=queued&model=digits-cnn") == [other, ids[2], ids[1]]
    assert listed("?hardware_tag=gpu") == [] and listed(f"?owner={TEST_USER}&limit=2") == [other, ids[2]]
    assert listed("?limit=2&offset=2") == [ids[1], ids[0]]
    for query, field in (
        ("status=done", "status"),
        ("limit=x", "limit"),
        ("limit=0", "limit"),
        ("offset=-1", "offset"),
    ):
        response = client.get(f"/api/v1/jobs?{query}")
        assert response.status_code == 400 and response.json["error"]["field"] == field, query


def test_cancel_a_queued_job_then_again(client) -> None:
    job_id = _post(client).json["id"]
    cancelled = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert cancelled.status_code == 202 and cancelled.json["status"] == "cancelled"
    again = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409 and "already finished" in again.json["error"]["message"]
    assert client.post("/api/v1/jobs/nope/cancel").status_code == 404
    assert client.get("/api/v1/jobs/nope").json["error"] == {
        "message": "no job 'nope'",
        "field": "job_id",
        "status": 404,
    }


def test_results_are_404_until_the_job_is_done_then_served(client, settings) -> None:
    job_id = _post(client, limit=40, batch_size=8).json["id"]
    for path in (f"/api/v1/results/{job_id}", f"/api/v1/results/{job_id}/outputs"):
        response = client.get(path)
        assert response.status_code == 404 and "it is queued" in response.json["error"]["message"], path
    # A worker's part, run in this process: the shard reads the job rows and writes the local object store.
    assert run_shard(settings, job_id, 0, "cpu-test@host", ModelCache()) == "succeeded"
    result = client.get(f"/api/v1/results/{job_id}")
    assert result.status_code == 200
    assert result.json["job_id"] == job_id and result.json["items"] == 40 and result.json["top1"] > 0.9
    outputs = client.get(f"/api/v1/results/{job_id}/outputs")
    assert outputs.status_code == 200 and outputs.mimetype == "application/x-ndjson"
    assert outputs.headers["Content-Disposition"] == f'attachment; filename="{job_id}.jsonl"'
    lines = [json.loads(line) for line in outputs.get_data(as_text=True).splitlines()]
    assert len(lines) == 40 and {"item", "outputs", "true_class"} <= set(lines[0])


def test_a_prediction_job_from_multipart_files(client, enqueued, settings) -> None:
    from carml.storage import open_object_store

    response = client.post(
        "/api/v1/jobs",
        data={
            "kind": "predict",
            "model": "digits-cnn",
            "framework": "onnxruntime",
            "top_k": "3",
            "files": [(io.BytesIO(b"one"), "a.png"), (io.BytesIO(b"two"), "../b.png")],
        },
    )
    assert response.status_code == 201, response.json
    job = response.json
    assert job["kind"] == "predict" and job["progress"]["total"] == 2 and job["dataset"] is None
    assert enqueued == [(job["id"], 0, "cpu")]
    # Small inputs are kept in the job's row (carml.jobs.prediction_io): nothing in the object store.
    assert open_object_store(settings).list(f"jobs/{job['id']}/") == []
    entries = get_job(settings, job["id"]).parameters["inputs"]
    assert [(e["name"], base64.b64decode(e["data"])) for e in entries] == [("a.png", b"one"), ("../b.png", b"two")]


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"kind": "predict", "model": "digits-cnn"}, "files"),
        ({"kind": "predict", "model": "digits-cnn", "top_k": "x"}, "top_k"),
        ({"kind": "predict", "model": "digits-cnn", "top_k": "0"}, "top_k"),
        ({"kind": "predict", "model": "digits-cnn", "shards": "2"}, "shards"),
        ({"kind": "evaluate", "model": "digits-cnn"}, "kind"),
        ({"model": "digits-cnn"}, "kind"),
        ({"kind": "predict"}, "model"),
    ],
)
def test_bad_prediction_forms_are_400s(client, enqueued, form, field) -> None:
    files = {"files": (io.BytesIO(b"png"), "a.png")} if field != "files" else {}
    response = client.post("/api/v1/jobs", data={**form, **files})
    assert response.status_code == 400, response.json
    assert response.json["error"]["field"] == field
    assert enqueued == []
