"""Hardware sampling and cost on real jobs run in this process (SQLite; PostgreSQL too for the first test):
samples rows, the merged summary, the configured price and cost per 1,000 items, and a redelivered shard
replacing its samples."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select, update

from carml.datasets.digits import load_digits_split
from carml.db.base import utcnow
from carml.db.migrate import upgrade
from carml.db.models import HardwareSample, Job, JobShard, JobStatus
from carml.db.session import session_scope
from carml.jobs import execution
from carml.jobs.model_cache import ModelCache
from carml.jobs.predictions import PredictionRequest, submit_prediction
from carml.jobs.service import EvaluationRequest, get_job, submit_evaluation
from carml.jobs.summary import job_summary
from carml.jobs.workers import register_worker
from carml.settings import Settings, load_settings

WORKER = "cpu-test@host"


def _settings(tmp_path: Path, **extra: str) -> Settings:
    settings = load_settings(
        {
            "CARML_HOME": str(tmp_path / "home"),
            "CARML_CACHE_DIR": str(tmp_path / "cache"),
            "CARML_SAMPLE_INTERVAL_S": "0.02",
            **extra,
        }
    )
    upgrade(settings.database)
    register_worker(settings, WORKER, "cpu")
    return settings


def _submit(settings: Settings, shards: int) -> str:
    request = EvaluationRequest(
        model="digits-cnn", framework="onnxruntime", dataset="digits", shards=shards, limit=120, batch_size=8
    )
    return submit_evaluation(settings, request, lambda *_: None)


def _samples(settings: Settings, job_id: str) -> list[HardwareSample]:
    with session_scope(settings.database) as session:
        query = select(HardwareSample).where(HardwareSample.job_id == job_id).order_by(HardwareSample.id)
        return list(session.scalars(query))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_finished_job_has_its_samples_summary_price_and_cost(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    database = {"CARML_DATABASE_URL": request.getfixturevalue("fresh_postgres_url")} if backend == "postgresql" else {}
    settings = _settings(tmp_path, CARML_HARDWARE_PRICES="cpu=0.36,nvidia-h100=3.50", **database)
    job_id = _submit(settings, shards=2)
    models = ModelCache()
    for index in range(2):
        assert execution.run_shard(settings, job_id, index, WORKER, models) == JobStatus.SUCCEEDED

    job = get_job(settings, job_id)
    assert job.price_per_hour == 0.36
    result = job.result
    assert result is not None
    # The cost counts each shard's own timed window (warm-up excluded), read back from its partial result.
    windows = [shard.partial["partial"]["timed_window"] for shard in job.shards]
    busy = sum(end - start for start, end in windows)
    timed_items = result.metrics["timed_items"]
    assert result.cost_per_1000_items == pytest.approx(0.36 / 3600 * busy / timed_items * 1000)
    metrics = result.hardware_metrics
    assert metrics["shards"] == 2 and metrics["busy_s"] == pytest.approx(busy)
    assert metrics["cpu_percent"]["max"] > 0 and metrics["peak_rss_mib"] > 10
    # The model ran on the CPU: no GPU was read, so there is no energy to divide.
    assert metrics["gpus"] == [] and result.energy_joules is None and result.joules_per_item is None

    rows = _samples(settings, job_id)
    for index in range(2):
        shard_rows = [r for r in rows if r.shard_index == index]
        assert len(shard_rows) >= 2  # at least the readings at the start and at the end of the run
        assert all(r.worker_id == WORKER and r.gpu_index is None and r.rss_mib > 10 for r in shard_rows)
        assert [r.elapsed_s for r in shard_rows] == sorted(r.elapsed_s for r in shard_rows)
    assert metrics["samples"] == len(rows)

    summary = job_summary(job)["result"]
    assert summary["price_per_hour"] == 0.36 and summary["cost_per_1000_items"] == result.cost_per_1000_items
    assert summary["hardware_metrics"] == metrics and summary["joules_per_item"] is None


def test_a_redelivered_shard_replaces_its_samples_and_no_price_means_no_cost(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    job_id = _submit(settings, shards=2)
    models = ModelCache()
    assert execution.run_shard(settings, job_id, 0, WORKER, models) == JobStatus.SUCCEEDED
    assert _samples(settings, job_id)
    between = utcnow()
    # As if the worker died after writing its samples but before the shard's end was committed.
    with session_scope(settings.database) as session:
        session.execute(
            update(JobShard).where(JobShard.job_id == job_id, JobShard.index == 0).values(status=JobStatus.RUNNING)
        )
    assert execution.run_shard(settings, job_id, 0, WORKER, models) == JobStatus.SUCCEEDED
    again = _samples(settings, job_id)
    assert again and all(r.taken_at > between for r in again)  # the first delivery's rows are gone
    assert execution.run_shard(settings, job_id, 1, WORKER, models) == JobStatus.SUCCEEDED
    with session_scope(settings.database) as session:
        assert session.scalar(select(Job.price_per_hour).where(Job.id == job_id)) is None
    result = get_job(settings, job_id).result
    assert result is not None and result.hardware_metrics["shards"] == 2 and result.cost_per_1000_items is None


def test_a_prediction_job_keeps_its_tags_price(tmp_path: Path) -> None:
    settings = _settings(tmp_path, CARML_HARDWARE_PRICES="cpu=0.12")
    images, _ = load_digits_split("test")
    png = io.BytesIO()
    Image.fromarray(images[0]).save(png, format="PNG")
    request = PredictionRequest(model="digits-cnn", framework="onnxruntime", inputs=[("digit.png", png.getvalue())])
    job_id = submit_prediction(settings, request, lambda *_: None)
    with session_scope(settings.database) as session:
        assert session.scalar(select(Job.price_per_hour).where(Job.id == job_id)) == 0.12
