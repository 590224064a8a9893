"""Jobs on published models, run in this process: the worker side writes the published manifest from the database
into its own cache (no disk shared with the web app), checks its digest, and fails clearly once it is gone."""

from __future__ import annotations

import io
import secrets
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image
from publishing.manifest_texts import s3_manifest_text
from sqlalchemy import delete
from support import MANIFESTS

from carml.accounts import Caller
from carml.datasets.digits import load_digits_split
from carml.db.migrate import upgrade
from carml.db.models import Job, PublishedModel, Result, Role
from carml.db.session import session_scope
from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache
from carml.jobs.predictions import PredictionRequest, submit_prediction
from carml.jobs.service import EvaluationRequest, get_job, submit_evaluation
from carml.jobs.summary import job_summary
from carml.jobs.workers import register_worker
from carml.publishing import publish_model, published_path
from carml.settings import Settings, load_settings
from webapp.ui.job_view import prediction_view

PUBLISHER = Caller("pat", Role.PUBLISHER)
WORKER_ID = "cpu-test@elsewhere"


@pytest.fixture()
def web(tmp_path: Path, s3_settings_fields: dict) -> Settings:
    """The web app's settings: SQLite, a local object store, the test S3 server for s3:// artifacts."""
    settings = load_settings({"CARML_HOME": str(tmp_path / "home"), "CARML_CACHE_DIR": str(tmp_path / "web-cache")})
    upgrade(settings.database)
    register_worker(settings, WORKER_ID, "cpu")
    return replace(settings, **s3_settings_fields)


@pytest.fixture()
def worker(web: Settings, tmp_path: Path) -> Settings:
    """A worker's settings: the same database, object store and S3, its own cache folder."""
    return replace(web, cache_dir=tmp_path / "worker-cache")


def _evaluate(web: Settings, model: str, limit: int = 120) -> str:
    request = EvaluationRequest(model=model, framework="onnxruntime", dataset="digits", limit=limit, owner="pat")
    return submit_evaluation(web, request, lambda *_: None)


def test_a_worker_writes_the_published_manifest_it_runs_from_the_database(web, worker, s3_client) -> None:
    text = s3_manifest_text(s3_client, f"models-{secrets.token_hex(4)}")
    digest = publish_model(web, PUBLISHER, text).model.manifest_sha256
    job_id = _evaluate(web, "digits-published")
    recorded = get_job(web, job_id).parameters["manifest"]
    assert recorded == str(published_path(web, digest)) and not Path(recorded).exists()  # the web app wrote nothing

    assert run_shard(worker, job_id, 0, WORKER_ID, ModelCache()) == "succeeded"
    written = published_path(worker, digest)
    assert written.read_text() == text
    result = job_summary(get_job(web, job_id))["result"]
    assert result["items"] == 120 and result["top1"] > 0.95
    assert result["reproducibility"]["manifest_sha256"] == digest


def test_a_job_whose_published_manifest_is_gone_fails_saying_so(web, worker, s3_client) -> None:
    publish_model(web, PUBLISHER, s3_manifest_text(s3_client, f"models-{secrets.token_hex(4)}"))
    job_id = _evaluate(web, "digits-published", limit=8)
    with session_scope(web.database) as session:  # as if it was removed the moment the job was recorded
        session.execute(delete(PublishedModel))
    assert run_shard(worker, job_id, 0, WORKER_ID, ModelCache()) == "failed"
    error = get_job(web, job_id).error or ""
    assert "is no longer published: the model was removed or replaced after the job was submitted" in error


def test_a_published_manifest_changed_on_disk_is_refused(web, worker, s3_client) -> None:
    text = s3_manifest_text(s3_client, f"models-{secrets.token_hex(4)}")
    digest = publish_model(web, PUBLISHER, text).model.manifest_sha256
    job_id = _evaluate(web, "digits-published", limit=8)
    tampered = published_path(worker, digest)
    tampered.parent.mkdir(parents=True)
    tampered.write_text(text + "# edited on this machine\n")  # not the text the job was submitted with
    assert run_shard(worker, job_id, 0, WORKER_ID, ModelCache()) == "failed"
    assert "changed after the job was submitted" in (get_job(web, job_id).error or "")


def test_a_prediction_on_a_published_model_runs_where_its_manifest_was_never_written(web, worker, s3_client) -> None:
    publish_model(web, PUBLISHER, s3_manifest_text(s3_client, f"models-{secrets.token_hex(4)}"))
    images, labels = load_digits_split("test")
    png = io.BytesIO()
    Image.fromarray(images[3]).save(png, format="PNG")
    request = PredictionRequest("digits-published", [("three.png", png.getvalue())], "onnxruntime", owner="pat")
    job_id = submit_prediction(web, request, lambda *_: None)
    assert run_shard(worker, job_id, 0, WORKER_ID, ModelCache()) == "succeeded"
    [answer] = job_summary(get_job(web, job_id))["result"]["predictions"]
    assert answer["outputs"]["logits"]["top_k"][0]["label"] == str(labels[3])


def test_the_job_page_frames_a_published_audio_model_from_the_database(web: Settings) -> None:
    """The web app has no copy of a published manifest: the clip length of an audio answer (frames × 32 ms) comes
    from the text in the database, as a worker's does."""
    text = (MANIFESTS / "models" / "silero-vad-onnxruntime.yaml").read_text().replace("name: silero-vad", "name: vad")
    digest = publish_model(web, PUBLISHER, text).model.manifest_sha256
    job = Job(parameters={"manifest": str(published_path(web, digest)), "inputs": [{"name": "a.wav", "data": ""}]})
    answer = {"outputs": {"speech_probs": {"segments": [{"start_s": 0.1, "end_s": 0.5}], "frames": 100}}}
    job.result = Result(metrics={"predictions": [answer]}, reproducibility={"manifest_sha256": digest})
    [view] = prediction_view(web, job)
    assert view["duration_s"] == pytest.approx(100 * 512 / 16000)  # not just the last segment's end
