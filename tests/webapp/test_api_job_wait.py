"""Waiting for a job's end through the API: `wait` on a submission and on GET /api/v1/jobs/ID (embedded backends:
the waiting request reads the database until the job ends; a worker's part runs in a thread of this process)."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from sqlalchemy import func, select

from carml.datasets.digits import load_digits_split
from carml.db.models import Job
from carml.db.session import session_scope
from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache
from carml.zoo.digits_png import encode_png_gray

WORKER_ID = "cpu-test@host"  # registered by the settings fixture (tests/webapp/conftest.py)

EVALUATE = {"kind": "evaluate", "model": "digits-cnn", "framework": "onnxruntime", "dataset": "digits", "limit": 8}


def _digit_png(index: int = 3) -> tuple[bytes, str]:
    images, labels = load_digits_split("test")
    return encode_png_gray(np.asarray(images[index], dtype=np.uint8)), str(labels[index])


def _predict_form(**extra: str) -> dict:
    png, _ = _digit_png()
    form = {"kind": "predict", "model": "digits-cnn", "framework": "onnxruntime", "files": (io.BytesIO(png), "d.png")}
    return form | extra


class _Worker:
    """Runs each enqueued shard after `delay_s`, in a thread, as a worker process would."""

    def __init__(self, settings, enqueued: list, delay_s: float):
        self.settings, self.enqueued, self.delay_s = settings, enqueued, delay_s
        self.models = ModelCache()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        done = 0
        while not self.stop.is_set():
            if len(self.enqueued) > done:
                job_id, shard, _ = self.enqueued[done]
                done += 1
                time.sleep(self.delay_s)
                run_shard(self.settings, job_id, shard, WORKER_ID, self.models)
            time.sleep(0.01)

    def __enter__(self) -> _Worker:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def test_a_prediction_submitted_with_wait_is_answered_with_its_result(client, settings, enqueued) -> None:
    _, label = _digit_png()
    with _Worker(settings, enqueued, delay_s=0.2):
        response = client.post("/api/v1/jobs", data=_predict_form(wait="30"))
    assert response.status_code == 201, response.json
    job = response.json
    assert job["status"] == "succeeded", job
    assert job["result"]["predictions"][0]["outputs"]["logits"]["top_k"][0]["label"] == label


def test_an_evaluation_submitted_with_wait_is_answered_once_it_ended(client, settings, enqueued) -> None:
    with _Worker(settings, enqueued, delay_s=0.2):
        response = client.post("/api/v1/jobs", json={**EVALUATE, "wait": 30})
    assert response.status_code == 201, response.json
    assert response.json["status"] == "succeeded" and response.json["result"]["items"] == 8


def test_get_with_wait_answers_when_the_job_ends(client, settings, enqueued) -> None:
    job_id = client.post("/api/v1/jobs", json=EVALUATE).json["id"]
    with _Worker(settings, enqueued, delay_s=0.3):
        started = time.monotonic()
        response = client.get(f"/api/v1/jobs/{job_id}?wait=30")
    assert response.status_code == 200 and response.json["status"] == "succeeded", response.json
    assert time.monotonic() - started < 20


def test_a_wait_that_runs_out_answers_with_the_job_as_it_is(client) -> None:
    job_id = client.post("/api/v1/jobs", json=EVALUATE).json["id"]  # nothing runs it
    started = time.monotonic()
    response = client.get(f"/api/v1/jobs/{job_id}", query_string={"wait": "1"})
    assert response.status_code == 200 and response.json["status"] == "queued"
    assert 1 <= time.monotonic() - started < 5


def test_the_server_caps_the_wait(app, client, settings) -> None:
    from dataclasses import replace

    from webapp.context import SETTINGS_KEY

    app.extensions[SETTINGS_KEY] = replace(settings, api_max_wait_s=0)  # CARML_API_MAX_WAIT_S=0: never wait
    job_id = client.post("/api/v1/jobs", json=EVALUATE).json["id"]
    started = time.monotonic()
    response = client.get(f"/api/v1/jobs/{job_id}?wait=60")
    assert response.status_code == 200 and response.json["status"] == "queued"
    assert time.monotonic() - started < 1


def test_past_the_limit_of_waiting_requests_a_wait_is_answered_at_once(app, client, settings) -> None:
    from dataclasses import replace

    from carml.jobs.job_events import waiting_requests
    from webapp.context import SETTINGS_KEY

    app.extensions[SETTINGS_KEY] = replace(settings, api_max_waiting=1)  # CARML_API_MAX_WAITING=1
    job_id = client.post("/api/v1/jobs", json=EVALUATE).json["id"]  # nothing runs it
    with waiting_requests.slot(1) as taken:  # another request of this process is waiting
        assert taken
        started = time.monotonic()
        response = client.get(f"/api/v1/jobs/{job_id}?wait=30")
        assert response.status_code == 200 and response.json["status"] == "queued"
        assert time.monotonic() - started < 1
        submitted = client.post("/api/v1/jobs", json={**EVALUATE, "wait": 30})
        assert submitted.status_code == 201 and submitted.json["status"] == "queued"
        assert time.monotonic() - started < 2
    assert waiting_requests.count == 0
    started = time.monotonic()
    assert client.get(f"/api/v1/jobs/{job_id}?wait=1").json["status"] == "queued"
    assert time.monotonic() - started >= 1  # the slot is free again: this one waited


@pytest.mark.parametrize("wait", ["-1", "61", "x", "1.5", "1e3"])
def test_a_bad_wait_is_a_400_naming_it_and_records_no_job(client, settings, wait) -> None:
    with session_scope(settings.database) as session:
        before = session.scalar(select(func.count()).select_from(Job))
    submitted = client.post("/api/v1/jobs", data=_predict_form(wait=wait))
    assert submitted.status_code == 400 and submitted.json["error"]["field"] == "wait", submitted.json
    with session_scope(settings.database) as session:
        assert session.scalar(select(func.count()).select_from(Job)) == before  # nothing half-written
    job_id = client.post("/api/v1/jobs", json=EVALUATE).json["id"]
    read = client.get(f"/api/v1/jobs/{job_id}", query_string={"wait": wait})
    assert read.status_code == 400 and read.json["error"]["field"] == "wait", read.json


def test_a_json_wait_must_be_a_whole_number_of_seconds(client) -> None:
    for wait in (-1, 61, "5", True, 2.5):
        response = client.post("/api/v1/jobs", json={**EVALUATE, "wait": wait})
        assert response.status_code == 400 and response.json["error"]["field"] == "wait", (wait, response.json)


def test_waiting_on_someone_elses_job_is_a_404_at_once(client, app, settings) -> None:
    from carml.accounts import create_token, create_user

    job_id = client.post("/api/v1/jobs", json=EVALUATE).json["id"]
    create_user(settings, "other", role="user")
    token = create_token(settings, "other", "test")
    started = time.monotonic()
    response = app.test_client().get(f"/api/v1/jobs/{job_id}?wait=30", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404 and time.monotonic() - started < 5
