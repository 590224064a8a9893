"""Fixtures of the web UI tests: the API tests' app (SQLite, a local store, a recording enqueuer, a live `cpu`
worker), reused from tests/webapp/conftest.py, plus finished jobs made by running their shards in-process."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from support import webapp_conftest

from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache
from carml.settings import Settings

_api = webapp_conftest("ui")
settings = _api.settings
enqueued = _api.enqueued
app = _api.app
client = _api.client
digits_zip = _api.digits_zip
WORKER_ID: str = _api.WORKER_ID

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, page: str = "/try") -> str:
    """The session's CSRF token, read from a form as a browser would."""
    found = _TOKEN.search(client.get(page).get_data(as_text=True))
    assert found, f"no CSRF token on {page}"
    return found.group(1)


def run_job(settings: Settings, job_id: str, shards: int = 1) -> None:
    """Run every shard of a job in this process, as a worker would."""
    models = ModelCache()
    for index in range(shards):
        assert run_shard(settings, job_id, index, WORKER_ID, models) == "succeeded"


@pytest.fixture()
def worker_id() -> str:
    """The id of the live `cpu` worker the app's database knows."""
    return WORKER_ID


@pytest.fixture()
def token(client: FlaskClient) -> str:
    return csrf_token(client)


@pytest.fixture()
def evaluate(client: FlaskClient) -> Callable[..., str]:
    """Submits a digits-cnn evaluation through the API; returns the job id (queued: nothing runs it)."""

    def submit(**changes: object) -> str:
        body = {"kind": "evaluate", "model": "digits-cnn", "framework": "onnxruntime", "dataset": "digits"}
        response = client.post("/api/v1/jobs", json={**body, "limit": 20, **changes})
        assert response.status_code == 201, response.json
        return str(response.json["id"])

    return submit


@pytest.fixture()
def finished_evaluation(settings: Settings, evaluate: Callable[..., str]) -> str:
    """A succeeded evaluation of 48 digits in 2 shards of batches of 8 (run in-process)."""
    job_id = evaluate(limit=48, batch_size=8, shards=2)
    run_job(settings, job_id, shards=2)
    return job_id


@pytest.fixture()
def predict(client: FlaskClient, token: str, settings: Settings) -> Callable[..., str]:
    """Submits a prediction through the Try it form and runs it; returns the job id."""

    def submit(model: str, sample: str, framework: str = "onnxruntime", run: bool = True) -> str:
        form = {"csrf_token": token, "model": model, "framework": framework, "sample": sample, "hardware_tag": "cpu"}
        response = client.post("/try", data=form)
        assert response.status_code == 303, response.get_data(as_text=True)
        job_id = response.headers["Location"].rsplit("/", 1)[-1]
        if run:
            run_job(settings, job_id)
        return job_id

    return submit
