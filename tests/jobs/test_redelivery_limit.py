"""A shard whose pool process dies every time (out of memory) is redelivered by the broker while its worker
lives on, so no heartbeat watch sees it: the claim itself gives up after `MAX_ATTEMPTS` starts."""

from __future__ import annotations

from pathlib import Path

from carml.db.migrate import upgrade
from carml.db.models import JobStatus
from carml.jobs import claim, execution
from carml.jobs.model_cache import ModelCache
from carml.jobs.recovery import MAX_ATTEMPTS
from carml.jobs.service import EvaluationRequest, get_job, submit_evaluation
from carml.jobs.workers import register_worker
from carml.settings import load_settings


def test_the_delivery_after_the_last_allowed_start_fails_the_job(tmp_path: Path) -> None:
    settings = load_settings({"CARML_HOME": str(tmp_path / "home"), "CARML_CACHE_DIR": str(tmp_path / "cache")})
    upgrade(settings.database)
    register_worker(settings, "cpu-test@host", "cpu")
    request = EvaluationRequest(model="digits-cnn", framework="onnxruntime", dataset="digits", limit=20)
    job_id = submit_evaluation(settings, request, lambda *_: None)
    for _ in range(MAX_ATTEMPTS):  # each delivery claims the shard, then its process is killed
        assert claim.start_shard(settings, job_id, 0, "cpu-test@host") is not None

    assert execution.run_shard(settings, job_id, 0, "cpu-test@host", ModelCache()) == "skipped"
    job = get_job(settings, job_id)
    assert job.status == JobStatus.FAILED and job.result is None
    assert job.error == f"its worker died {MAX_ATTEMPTS} times while running it (out of memory?)"


def test_a_shard_started_fewer_times_runs_again(tmp_path: Path) -> None:
    settings = load_settings({"CARML_HOME": str(tmp_path / "home"), "CARML_CACHE_DIR": str(tmp_path / "cache")})
    upgrade(settings.database)
    register_worker(settings, "cpu-test@host", "cpu")
    request = EvaluationRequest(model="digits-cnn", framework="onnxruntime", dataset="digits", limit=20)
    job_id = submit_evaluation(settings, request, lambda *_: None)
    for _ in range(MAX_ATTEMPTS - 1):
        claim.start_shard(settings, job_id, 0, "cpu-test@host")

    assert execution.run_shard(settings, job_id, 0, "cpu-test@host", ModelCache()) == JobStatus.SUCCEEDED
    assert get_job(settings, job_id).result.items == 20
