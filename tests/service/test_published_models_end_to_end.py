"""A model published through the API runs on a real worker process that shares no disk with the web app: its
manifest comes from PostgreSQL, its ONNX file and labels from S3. Removal waits for the jobs that use it."""

from __future__ import annotations

import secrets
from pathlib import Path

from publishing.manifest_texts import s3_manifest_text
from support import sign_in, unique_tag, wait_for_api_job

from carml.jobs.workers import register_worker
from carml.publishing import published_path
from carml.runs import evaluate_model
from carml.settings import load_settings
from webapp import create_app


def _evaluate(client, tag: str) -> str:
    body = {"kind": "evaluate", "model": "digits-s3", "framework": "onnxruntime", "dataset": "digits"}
    created = client.post("/api/v1/jobs", json={**body, "hardware_tag": tag})
    assert created.status_code == 201, created.json
    return created.json["id"]


def test_a_published_model_on_s3_runs_on_a_worker_without_a_shared_disk(
    service_env, start_worker, s3_client, tmp_path: Path
) -> None:
    tag = unique_tag("cpu")
    worker_cache = tmp_path / "worker-cache"  # the worker's own disk: nothing the web app writes reaches it
    start_worker({**service_env, "CARML_CACHE_DIR": str(worker_cache)}, tag)
    settings = load_settings(service_env)
    publisher = sign_in(create_app(settings).test_client(), settings, "pat", "publisher", web=False)

    manifest = s3_manifest_text(s3_client, f"models-{secrets.token_hex(4)}", "digits-s3")
    published = publisher.post("/api/v1/models", data=manifest, content_type="application/yaml")
    assert published.status_code == 201, published.json
    digest = published.json["manifest_sha256"]

    job = wait_for_api_job(publisher, _evaluate(publisher, tag))
    assert job["status"] == "succeeded", job
    local = evaluate_model(settings, "digits-cnn", "digits", framework="onnxruntime")  # the same weights, on disk
    assert abs(job["result"]["top1"] - 0.98) < 0.01 and job["result"]["top1"] == local["top1"]
    assert job["result"]["items"] == 360 and job["result"]["reproducibility"]["manifest_sha256"] == digest
    assert published_path(load_settings({**service_env, "CARML_CACHE_DIR": str(worker_cache)}), digest).is_file()
    assert not published_path(settings, digest).exists()

    # A tag whose only worker never takes work: its job stays queued, and the model cannot be removed meanwhile.
    idle_tag = unique_tag("idle")
    register_worker(settings, f"{idle_tag}@nowhere", idle_tag)
    queued = _evaluate(publisher, idle_tag)
    refused = publisher.delete("/api/v1/models/digits-s3")
    assert (
        refused.status_code == 409
        and "1 queued or running job(s) use digits-s3@onnxruntime" in refused.json["error"]["message"]
    )
    assert publisher.post(f"/api/v1/jobs/{queued}/cancel").status_code == 202
    assert publisher.delete("/api/v1/models/digits-s3").status_code == 204
    assert publisher.get("/api/v1/models/digits-s3").status_code == 404
    assert publisher.get(f"/api/v1/jobs/{job['id']}").json["result"]["top1"] == job["result"]["top1"]  # history
