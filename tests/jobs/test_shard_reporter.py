"""A running shard's progress and cancellation go through a thread beside the batches: the batch loop makes no
database round trip, yet progress reaches the job, a cancellation stops the shard, and the time limit is exact."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from carml.db.migrate import upgrade
from carml.db.session import DatabaseError
from carml.jobs import execution
from carml.jobs.service import EvaluationRequest, cancel_job, get_job, submit_evaluation
from carml.jobs.shard_reporter import BackgroundReporter
from carml.jobs.workers import register_worker
from carml.settings import Settings, load_settings

INTERVAL_S = 0.02


@pytest.fixture()
def settings(tmp_path: Path, fresh_postgres_url: str) -> Settings:
    settings = load_settings(
        {
            "CARML_HOME": str(tmp_path / "home"),
            "CARML_CACHE_DIR": str(tmp_path / "cache"),
            "CARML_DATABASE_URL": fresh_postgres_url,
        }
    )
    upgrade(settings.database)
    register_worker(settings, "cpu-test@host", "cpu")
    return settings


@pytest.fixture()
def job_id(settings: Settings) -> str:
    """A queued evaluation of 40 digits in one shard (nothing runs it: the tests report for it)."""
    request = EvaluationRequest(model="digits-cnn", framework="onnxruntime", dataset="digits", limit=40)
    return submit_evaluation(settings, request, lambda *_: None)


def _eventually(condition, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_progress_reaches_the_job_from_the_thread(settings: Settings, job_id: str) -> None:
    inner = execution._ShardProgress(settings, job_id, 0)
    with BackgroundReporter(inner, INTERVAL_S) as reporter:
        reporter.progress(16, 40)
        assert get_job(settings, job_id).progress_done in (0, 16)  # handed over, not written by the caller
        assert _eventually(lambda: get_job(settings, job_id).progress_done == 16)
        reporter.progress(32, 40)
        assert _eventually(lambda: get_job(settings, job_id).shards[0].items_done == 32)
        assert not reporter.should_stop()
    assert inner.reported == 32


def test_a_cancellation_is_seen_between_batches(settings: Settings, job_id: str) -> None:
    inner = execution._ShardProgress(settings, job_id, 0)
    with BackgroundReporter(inner, INTERVAL_S) as reporter:
        assert not reporter.should_stop()
        cancel_job(settings, job_id)
        assert _eventually(reporter.should_stop)
    assert inner.stopped and not inner.timed_out


def test_the_time_limit_is_checked_by_the_caller_without_waiting_for_the_thread(settings: Settings, job_id) -> None:
    inner = execution._ShardProgress(settings, job_id, 0)
    with BackgroundReporter(inner, 3600) as reporter:  # the thread never gets to run a round
        assert not reporter.should_stop()
        inner.deadline = time.monotonic() - 1
        assert reporter.should_stop() and inner.timed_out


def test_a_failure_in_the_thread_fails_the_batch_loop(settings: Settings) -> None:
    inner = execution._ShardProgress(settings, "no-such-job", 0)  # the cancellation check finds no row
    with BackgroundReporter(inner, INTERVAL_S) as reporter, pytest.raises(DatabaseError, match="No row was found"):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the batch loop asks before each batch
            reporter.should_stop()
            time.sleep(0.01)
