"""The server scenario through the queue: a live worker (Redis + PostgreSQL + S3) reports a rate it cannot
sustain as INVALID with the reason, and a low rate as VALID; the verdict reaches the SQL views and the CLI."""

from __future__ import annotations

import time

from sqlalchemy import text
from support import unique_tag

from carml.db.models import JobStatus
from carml.db.session import session_scope
from carml.jobs.service import EvaluationRequest, get_job, submit_evaluation
from carml.jobs.summary import job_summary
from carml.settings import load_settings
from worker.celery_app import celery_enqueuer, create_celery_app


def _submit(env: dict[str, str], **fields) -> str:
    settings = load_settings(env)
    request = EvaluationRequest(model="digits-cnn", framework="onnxruntime", dataset="digits", **fields)
    return submit_evaluation(settings, request, celery_enqueuer(create_celery_app(settings)))


def _wait(env: dict[str, str], job_id: str, timeout: float = 90) -> dict:
    settings = load_settings(env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        summary = job_summary(get_job(settings, job_id))
        if JobStatus(summary["status"]).final:
            return summary
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def test_the_server_scenario_is_invalid_at_a_rate_the_worker_cannot_sustain(
    service_env, start_worker, run_cli, monkeypatch
) -> None:
    tag = unique_tag("cpu")
    start_worker(service_env, tag)
    server = {"scenario": "server", "hardware_tag": tag, "seed": 11}
    low = _submit(service_env, **server, target_qps=20, latency_bound_ms=1000, min_duration_s=1, min_query_count=20)
    # 100,000 queries scheduled over 2 s: far more than one Python worker thread answers before the 2 s cap.
    high = _submit(service_env, **server, target_qps=50_000, latency_bound_ms=5, min_duration_s=2, max_duration_s=2)

    sustained = _wait(service_env, low)
    assert sustained["status"] == "succeeded", sustained
    outcome = sustained["result"]["scenario_outcome"]
    assert outcome["verdict"] == "VALID" and outcome["reasons"] == [] and sustained["result"]["valid"] is True
    assert outcome["queries"]["planned"] == outcome["queries"]["issued"] == outcome["queries"]["timed"] >= 20
    assert outcome["latency_ms"]["p99"] <= 1000 and sustained["progress"] == {"done": 100, "total": 100}

    overloaded = _wait(service_env, high)
    assert overloaded["status"] == "succeeded", overloaded  # the measurement succeeded; its verdict is INVALID
    outcome = overloaded["result"]["scenario_outcome"]
    assert outcome["verdict"] == "INVALID" and overloaded["result"]["valid"] is False
    reasons = " | ".join(outcome["reasons"])
    assert "exceeds the 5 ms bound at 50000 queries/s target (achieved" in reasons
    assert "did not complete before the 2 s cap (max_duration_s)" in reasons
    assert outcome["duration_s"] < 5  # capped: a rate it cannot sustain still ends in bounded time

    with session_scope(load_settings(service_env).database) as session:
        rows = session.execute(
            text("SELECT job_id, scenario, valid, latency_p99_ms FROM evaluation_summary WHERE job_id IN (:a, :b)"),
            {"a": low, "b": high},
        ).all()
    by_job = {row.job_id: row for row in rows}
    assert (by_job[low].scenario, by_job[low].valid) == ("server", True)
    assert (by_job[high].scenario, by_job[high].valid) == ("server", False)
    assert by_job[high].latency_p99_ms == outcome["latency_ms"]["p99"] > 5

    for name, value in service_env.items():
        monkeypatch.setenv(name, value)
    code, out, err = run_cli("job", high)
    assert code == 0, err
    assert "server: INVALID" in out and "exceeds the 5 ms bound" in out
