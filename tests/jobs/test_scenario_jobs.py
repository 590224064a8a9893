"""Performance-scenario jobs through submission and the shard machinery, run in this process on SQLite:
the result row takes the scenario's numbers, one shard only, cancellation and the time limit still work."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from carml.db.migrate import upgrade
from carml.db.models import Job, OutputObject, Result, StageTiming
from carml.db.session import session_scope
from carml.jobs import execution
from carml.jobs.comparisons import ComparisonRequest, submit_comparison
from carml.jobs.model_cache import ModelCache
from carml.jobs.service import EvaluationRequest, JobRequestError, cancel_job, get_job, submit_evaluation
from carml.jobs.summary import job_summary
from carml.jobs.workers import register_worker
from carml.settings import load_settings
from webapp.ui.retry import retry_job

WORKER = "cpu-test@host"


def _settings(tmp_path: Path, **extra: str):
    env = {"CARML_HOME": str(tmp_path / "home"), "CARML_CACHE_DIR": str(tmp_path / "cache"), **extra}
    settings = load_settings(env)
    upgrade(settings.database)
    register_worker(settings, WORKER, "cpu")
    return settings


def _submit(settings, **fields) -> str:
    request = EvaluationRequest(model="digits-cnn", framework="onnxruntime", dataset="digits", **fields)
    return submit_evaluation(settings, request, lambda *_: None)


def test_a_scenario_job_stores_its_outcome_and_query_latencies(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    job_id = _submit(settings, scenario="single-stream", min_duration_s=0.3, min_query_count=50, seed=5)
    with session_scope(settings.database) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.scenario == "single-stream" and job.progress_total == 100
        assert job.parameters["scenario_options"]["seed"] == 5
    assert execution.run_shard(settings, job_id, 0, WORKER, ModelCache()) == "succeeded"
    with session_scope(settings.database) as session:
        result = session.scalar(select(Result).where(Result.job_id == job_id))
        rows = session.scalar(select(func.count()).select_from(StageTiming).where(StageTiming.job_id == job_id))
        output = session.scalar(select(OutputObject).where(OutputObject.job_id == job_id))
        job = session.get(Job, job_id)
        assert job is not None and job.progress_done == 100
    assert result is not None and result.valid is True and result.stable in (True, False)
    outcome = result.scenario_outcome
    assert outcome is not None and outcome["verdict"] == "VALID" and outcome["seed"] == 5
    assert outcome["queries"]["timed"] >= 50
    latency = outcome["latency_ms"]
    assert (result.latency_p50_ms, result.latency_p90_ms, result.latency_p99_ms) == (
        latency["p50"],
        latency["p90"],
        latency["p99"],
    )
    assert result.throughput_items_per_s == outcome["throughput_samples_per_s"]
    assert result.reproducibility["seed"] == 5 and result.reproducibility["scenario"] == "single-stream"
    assert result.metrics["timed_items"] == outcome["timed_samples"]
    assert result.top1 is not None and result.top1 > 0.9
    # One row per stage of every warm-up query and of each timed query (a long run keeps an even sample of them).
    kept, timed = rows // 4 - outcome["queries"]["warmup"], outcome["queries"]["timed"]
    assert rows % 4 == 0 and (kept == timed if timed <= 5000 else 2500 <= kept <= 5000)
    assert output is not None and 0 < output.items <= outcome["samples"]["loaded"]  # each sample's first answer
    summary = job_summary(get_job(settings, job_id))
    assert summary["scenario"] == "single-stream" and summary["result"]["scenario_outcome"]["verdict"] == "VALID"
    assert summary["result"]["valid"] is True


def test_a_batch_size_sweep_of_offline_legs_runs_each_leg_at_its_batch_size(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    sweep = ComparisonRequest(
        models=["digits-cnn"],
        frameworks=["onnxruntime"],
        dataset="digits",
        batch_sizes=[8, 24],
        leg_options={"scenario": "offline", "min_duration_s": 0.2, "min_query_count": 100},
    )
    comparison_id = submit_comparison(settings, sweep, lambda *_: None)
    with session_scope(settings.database) as session:
        legs = list(session.scalars(select(Job).where(Job.comparison_id == comparison_id).order_by(Job.batch_size)))
        job_ids = [job.id for job in legs]
    for job_id in job_ids:
        assert execution.run_shard(settings, job_id, 0, WORKER, ModelCache()) == "succeeded"
    with session_scope(settings.database) as session:
        for job_id, batch_size in zip(job_ids, (8, 24), strict=True):
            sizes = set(session.scalars(select(StageTiming.items).where(StageTiming.job_id == job_id)))
            result = session.scalar(select(Result).where(Result.job_id == job_id))
            assert sizes == {batch_size}
            assert result is not None and result.scenario_outcome["scenario"] == "offline"
            assert result.scenario_outcome["settings"]["batch_size"] == batch_size


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"scenario": "offline", "shards": 2}, "shards", "one shard; shards must be 1"),
        ({"scenario": "server", "latency_bound_ms": 10}, "target_qps", "needs target_qps"),
        ({"scenario": "server", "target_qps": 10, "latency_bound_ms": -1}, "latency_bound_ms", "greater than 0"),
        ({"scenario": "warp-speed"}, "scenario", "scenario must be one of"),
        ({"min_duration_s": 3}, "min_duration_s", "not accuracy"),
        ({"scenario": "single-stream", "warmup_batches": -1}, "warmup_batches", "warm-up must be between"),
    ],
)
def test_bad_scenario_requests_are_refused_with_their_field(tmp_path: Path, fields, field, message) -> None:
    settings = _settings(tmp_path)
    with pytest.raises(JobRequestError, match=message) as caught:
        _submit(settings, **fields)
    assert caught.value.field == field and caught.value.status == 400
    with session_scope(settings.database) as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0  # nothing half-written


def test_a_scenario_job_stops_at_the_time_limit(tmp_path: Path) -> None:
    settings = _settings(tmp_path, CARML_JOB_TIME_LIMIT_S="1")
    job_id = _submit(settings, scenario="single-stream", min_duration_s=60, max_duration_s=60)
    started = time.monotonic()
    assert execution.run_shard(settings, job_id, 0, WORKER, ModelCache()) == "timed_out"
    assert time.monotonic() - started < 10
    job = get_job(settings, job_id)
    assert job.status == "timed_out"
    retried = get_job(settings, retry_job(settings, job, lambda *_: None))  # the same scenario, submitted again
    assert (
        retried.scenario == "single-stream"
        and retried.parameters["scenario_options"] == job.parameters["scenario_options"]
    )


def test_a_server_job_can_be_cancelled_while_it_runs(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    job_id = _submit(settings, scenario="server", target_qps=50, latency_bound_ms=100, min_duration_s=60)
    outcome: list[str] = []
    runner = threading.Thread(
        target=lambda: outcome.append(execution.run_shard(settings, job_id, 0, WORKER, ModelCache()))
    )
    runner.start()
    deadline = time.monotonic() + 30
    while get_job(settings, job_id).progress_done < 1 and time.monotonic() < deadline:
        time.sleep(0.05)  # until the timed run has begun
    cancel_job(settings, job_id)
    runner.join(timeout=30)
    assert outcome == ["cancelled"] and get_job(settings, job_id).status == "cancelled"
