"""The API in front of the real service: PostgreSQL, Redis, S3 and a `carml worker` process."""

from __future__ import annotations

import io
import json

import numpy as np
from support import MANIFESTS, sign_in, unique_tag, wait_for_api_job

from carml.datasets.digits import load_digits_split
from carml.runs import evaluate_model
from carml.settings import load_settings
from carml.zoo.digits_png import SCALE, encode_png_gray
from webapp import create_app


def _evaluate(client, dataset: str, tag: str) -> dict:
    body = {"kind": "evaluate", "model": "digits-cnn", "framework": "onnxruntime", "dataset": dataset}
    created = client.post("/api/v1/jobs", json={**body, "hardware_tag": tag})
    assert created.status_code == 201, created.json
    job = wait_for_api_job(client, created.json["id"])
    assert job["status"] == "succeeded", job
    return job


def _assert_confusion_views(client, job: dict) -> None:
    """`?confusion=cells` shows the matrix's non-zero cells, `none` leaves it out, on every read of a result."""
    matrix = job["result"]["confusion_matrix"]
    nonzero = [[true, predicted, n] for true, row in enumerate(matrix) for predicted, n in enumerate(row) if n]
    cells = {"classes": len(matrix), "cells": nonzero}
    for path in (f"/api/v1/jobs/{job['id']}", f"/api/v1/results/{job['id']}", "/api/v1/jobs"):
        for view, expected in (("cells", cells), ("none", None)):
            answer = client.get(path, query_string={"confusion": view})
            assert answer.status_code == 200, answer.json
            shown = answer.json["jobs"][0]["result"] if path == "/api/v1/jobs" else answer.json
            shown = shown.get("result", shown)
            assert "confusion_matrix" not in shown and shown.get("confusion") == expected
            assert shown["top1"] == job["result"]["top1"] and len(shown["per_class"]) == 10
    refused = client.get(f"/api/v1/jobs/{job['id']}", query_string={"confusion": "dense"})
    assert refused.status_code == 400 and refused.json["error"]["field"] == "confusion"
    body = {"kind": "evaluate", "model": "digits-cnn", "framework": "onnxruntime", "dataset": "digits-png"}
    waited = client.post("/api/v1/jobs?confusion=cells", json={**body, "hardware_tag": job["hardware_tag"], "wait": 60})
    assert waited.status_code == 201 and waited.json["status"] == "succeeded", waited.json
    assert waited.json["result"]["confusion"] == cells and "confusion_matrix" not in waited.json["result"]


def test_jobs_through_the_api_run_on_a_real_worker(service_env, start_worker) -> None:
    tag = unique_tag("cpu")
    start_worker(service_env, tag)
    settings = load_settings(service_env)
    client = sign_in(create_app(settings).test_client(), settings)  # the default enqueuer: Celery on Redis

    job = _evaluate(client, "digits-png", tag)
    local = evaluate_model(settings, "digits-cnn", "digits-png", framework="onnxruntime")
    assert job["result"]["top1"] == local["top1"] and job["result"]["items"] == 360
    assert job["progress"] == {"done": 360, "total": 360}
    _assert_confusion_views(client, job)
    outputs = client.get(f"/api/v1/results/{job['id']}/outputs")
    assert outputs.status_code == 200 and outputs.mimetype == "application/x-ndjson"
    lines = outputs.get_data(as_text=True).splitlines()
    assert len(lines) == 360 and all("outputs" in json.loads(line) for line in lines)

    images, labels = load_digits_split("test")
    png = encode_png_gray(np.repeat(np.repeat(images[5], SCALE, axis=0), SCALE, axis=1))
    created = client.post(
        "/api/v1/jobs",
        data={
            "kind": "predict",
            "model": "digits-cnn",
            "framework": "onnxruntime",
            "hardware_tag": tag,
            "files": (io.BytesIO(png), "five.png"),
        },
    )
    assert created.status_code == 201, created.json
    predicted = wait_for_api_job(client, created.json["id"])
    assert predicted["status"] == "succeeded", predicted
    answer = predicted["result"]["predictions"][0]
    assert answer["outputs"]["logits"]["top_k"][0]["label"] == str(labels[5])

    zipped = (MANIFESTS / "datasets" / "digits-png.zip").read_bytes()
    upload = {"name": "my-digits", "file": (io.BytesIO(zipped), "digits-png.zip")}
    uploaded = client.post("/api/v1/datasets", data=upload, content_type="multipart/form-data")
    assert uploaded.status_code == 201 and uploaded.json["items"] == 360, uploaded.json
    on_upload = _evaluate(client, "my-digits", tag)
    assert on_upload["dataset"] == "my-digits"
    assert on_upload["result"]["top1"] == job["result"]["top1"]
    assert on_upload["result"]["confusion_matrix"] == job["result"]["confusion_matrix"]


def test_a_prediction_submitted_with_wait_comes_back_answered(service_env, start_worker) -> None:
    """On Redis, the worker's announcement of the job's end answers the waiting submission (see job_events)."""
    tag = unique_tag("cpu")
    start_worker(service_env, tag)
    settings = load_settings(service_env)
    client = sign_in(create_app(settings).test_client(), settings)
    images, labels = load_digits_split("test")
    for index in (7, 8):  # the first loads the model into the worker's cache, the second finds it there
        png = encode_png_gray(np.asarray(images[index], dtype=np.uint8))
        form = {"kind": "predict", "model": "digits-cnn", "framework": "onnxruntime", "hardware_tag": tag}
        created = client.post("/api/v1/jobs", data={**form, "wait": "30", "files": (io.BytesIO(png), "d.png")})
        assert created.status_code == 201 and created.json["status"] == "succeeded", created.json
        answer = created.json["result"]["predictions"][0]
        assert answer["outputs"]["logits"]["top_k"][0]["label"] == str(labels[index])
        outputs = client.get(f"/api/v1/results/{created.json['id']}/outputs").get_data(as_text=True)
        assert [json.loads(line) for line in outputs.splitlines()] == [answer]
