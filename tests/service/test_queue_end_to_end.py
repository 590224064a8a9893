"""The service end to end: jobs go through Redis to real worker processes; results land in PostgreSQL,
per-item outputs in S3."""

from __future__ import annotations

import json
import time

import numpy as np
from sqlalchemy import func, select
from support import unique_tag

from carml.db.models import Job, JobStatus, OutputObject, Result, StageTiming
from carml.db.session import session_scope
from carml.jobs.service import EvaluationRequest, cancel_job, get_job, submit_evaluation
from carml.jobs.summary import job_summary
from carml.runs import evaluate_model
from carml.settings import load_settings
from carml.storage import open_object_store
from worker.celery_app import celery_enqueuer, create_celery_app


def _submit(env: dict[str, str], **request) -> str:
    settings = load_settings(env)
    return submit_evaluation(settings, EvaluationRequest(**request), celery_enqueuer(create_celery_app(settings)))


def _wait(env: dict[str, str], job_id: str, timeout: float = 120) -> dict:
    settings = load_settings(env)
    deadline = time.monotonic() + timeout
    progress = []
    while time.monotonic() < deadline:
        summary = job_summary(get_job(settings, job_id))
        progress.append(summary["progress"]["done"])
        if JobStatus(summary["status"]).final:
            summary["seen_progress"] = progress
            return summary
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {summary}")


def test_evaluation_through_the_queue_matches_the_local_run(service_env, start_worker) -> None:
    tag = unique_tag("cpu")
    start_worker(service_env, tag)
    job_id = _submit(
        service_env, model="digits-cnn", framework="onnxruntime", dataset="digits-png", hardware_tag=tag, batch_size=32
    )
    summary = _wait(service_env, job_id)
    assert summary["status"] == "succeeded", summary
    local = evaluate_model(load_settings(service_env), "digits-cnn", "digits-png", framework="onnxruntime")
    result = summary["result"]
    assert result["top1"] == local["top1"] and result["items"] == local["items"] == 360
    assert result["confusion_matrix"] == local["confusion_matrix"]
    assert summary["seen_progress"][0] <= summary["seen_progress"][-1] == 360

    settings = load_settings(service_env)
    with session_scope(settings.database) as session:
        outputs = session.scalars(select(OutputObject).where(OutputObject.job_id == job_id)).all()
        timings = session.scalar(select(func.count()).select_from(StageTiming).where(StageTiming.job_id == job_id))
        row = session.scalar(select(Result).where(Result.job_id == job_id))
    assert row is not None and row.reproducibility["manifest_sha256"] and row.latency_p50_ms > 0
    assert timings == 12 * 4  # 12 batches of up to 32 items, four stages each
    lines = open_object_store(settings).get_bytes(outputs[0].key).decode().splitlines()
    assert len(outputs) == 1 and len(lines) == outputs[0].items == 360
    assert "top_k" in json.loads(lines[0])["outputs"]["logits"]


def test_jobs_only_run_on_workers_of_their_tag(service_env, start_worker) -> None:
    tag_a, tag_b = unique_tag("cpu-a"), unique_tag("cpu-b")
    start_worker(service_env, tag_a)
    start_worker(service_env, tag_b)
    jobs = {
        tag: [
            _submit(
                service_env, model="digits-cnn", framework="onnxruntime", dataset="digits", hardware_tag=tag, limit=40
            )
            for _ in range(3)
        ]
        for tag in (tag_a, tag_b)
    }
    settings = load_settings(service_env)
    for tag, ids in jobs.items():
        for job_id in ids:
            assert _wait(service_env, job_id)["status"] == "succeeded"
            shards = get_job(settings, job_id).shards
            assert all(s.worker_id.startswith(f"{tag}-") for s in shards), (tag, [s.worker_id for s in shards])


def test_sharded_evaluation_merges_once_and_equals_one_worker(service_env, start_worker) -> None:
    tag = unique_tag("cpu")
    start_worker(service_env, tag)
    start_worker(service_env, tag)
    single = _wait(
        service_env, _submit(service_env, model="digits-cnn", framework="pytorch", dataset="digits", hardware_tag=tag)
    )
    sharded_id = _submit(
        service_env, model="digits-cnn", framework="pytorch", dataset="digits", hardware_tag=tag, shards=4
    )
    sharded = _wait(service_env, sharded_id)
    assert sharded["status"] == "succeeded"
    for key in ("items", "errors", "top1", "top5", "confusion_matrix", "per_class"):
        assert sharded["result"][key] == single["result"][key], key
    settings = load_settings(service_env)
    with session_scope(settings.database) as session:
        results = session.scalar(select(func.count()).select_from(Result).where(Result.job_id == sharded_id))
        outputs = session.scalar(
            select(func.count()).select_from(OutputObject).where(OutputObject.job_id == sharded_id)
        )
        workers = {s.worker_id for s in session.get(Job, sharded_id).shards}
    assert results == 1 and outputs == 4
    assert sharded["result"]["reproducibility"]["shards"][3]["items"] == 90
    assert all(worker.startswith(f"{tag}-") for worker in workers)


def test_cancel_stops_a_running_evaluation_within_a_batch(service_env, start_worker, tmp_path) -> None:
    from carml.datasets.digits import load_digits_split

    images, labels = load_digits_split("test")
    big = tmp_path / "many-digits.npz"
    np.savez(big, x=np.tile(images, (60, 1, 1)), y=np.tile(labels, 60))  # 21,600 items
    tag = unique_tag("cpu")
    start_worker(service_env, tag)
    job_id = _submit(
        service_env, model="digits-cnn", framework="onnxruntime", dataset=str(big), hardware_tag=tag, batch_size=1
    )
    settings = load_settings(service_env)
    deadline = time.monotonic() + 60
    while job_summary(get_job(settings, job_id))["progress"]["done"] == 0:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    cancel_job(settings, job_id)
    summary = _wait(service_env, job_id, timeout=30)
    assert summary["status"] == "cancelled"
    assert summary["progress"]["done"] < 21_600
    with session_scope(settings.database) as session:
        assert session.scalar(select(func.count()).select_from(Result).where(Result.job_id == job_id)) == 0


def test_second_job_on_the_same_model_hits_the_worker_cache(service_env, start_worker) -> None:
    tag = unique_tag("cpu")
    start_worker(service_env, tag)
    first, second = (
        _wait(
            service_env,
            _submit(
                service_env, model="digits-cnn", framework="tensorflow", dataset="digits", hardware_tag=tag, limit=64
            ),
        )
        for _ in range(2)
    )
    hits = [
        s["model_cache_hit"]
        for s in (first["result"]["reproducibility"]["shards"], second["result"]["reproducibility"]["shards"])
        for s in s
    ]
    assert hits == [False, True]
    assert first["result"]["model_load_ms"] > 0 and second["result"]["model_load_ms"] is None


def test_a_tag_without_live_workers_is_refused(service_env) -> None:
    import pytest

    from carml.jobs.service import JobRequestError

    with pytest.raises(JobRequestError, match="no live worker serves hardware tag 'nvidia-h100'") as caught:
        _submit(service_env, model="digits-cnn", framework="onnxruntime", dataset="digits", hardware_tag="nvidia-h100")
    assert caught.value.field == "hardware_tag" and caught.value.status == 409


def test_cli_lists_and_shows_jobs(service_env, start_worker, run_cli, monkeypatch) -> None:
    for name, value in service_env.items():
        monkeypatch.setenv(name, value)
    tag = unique_tag("cpu")
    start_worker(service_env, tag)
    code, out, err = run_cli(
        "evaluate", "digits-cnn", "-f", "onnxruntime", "-d", "digits", "-n", "50", "--hardware", tag, "--json"
    )
    assert code == 0, err
    job_id = json.loads(out)["id"]
    code, out, _ = run_cli("jobs", "--hardware", tag, "--json")
    assert code == 0 and [j["id"] for j in json.loads(out)] == [job_id]
    assert json.loads(out)[0]["result"]["items"] == 50
    matrix = json.loads(out)[0]["result"]["confusion_matrix"]
    code, out, _ = run_cli("job", job_id, "--json", "--confusion", "cells")
    cells = json.loads(out)["result"]["confusion"]
    assert code == 0 and cells["classes"] == len(matrix) == 10 and "confusion_matrix" not in json.loads(out)["result"]
    assert {(t, p): n for t, p, n in cells["cells"]} == {
        (t, p): n for t, r in enumerate(matrix) for p, n in enumerate(r) if n
    }
    code, out, _ = run_cli("jobs", "--hardware", tag, "--json", "--confusion", "none")
    assert code == 0 and {"confusion", "confusion_matrix"}.isdisjoint(json.loads(out)[0]["result"])
    code, out, _ = run_cli("job", job_id)
    assert code == 0 and "succeeded" in out and "top-1" in out
    code, _, err = run_cli("cancel", job_id)
    assert code == 1 and "already finished" in err
