"""Saving a shard's trace pauses Python's cyclic garbage collector, process-wide: it must leave it as it found it,
whether the save succeeds or fails."""

from __future__ import annotations

import gc

from sqlalchemy import text

from carml.db.session import session_scope
from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache
from carml.jobs.service import EvaluationRequest, get_job, submit_evaluation
from carml.settings import Settings

WORKER_ID = "cpu-test@host"  # the live worker of the `settings` fixture's database


def _submit(settings: Settings) -> str:
    request = EvaluationRequest(
        model="digits-cnn", framework="onnxruntime", dataset="digits", limit=8, batch_size=4, trace_level="stage"
    )
    return submit_evaluation(settings, request, lambda *_: None)


def test_the_collector_is_left_as_it_was_found(settings: Settings) -> None:
    assert gc.isenabled()
    assert run_shard(settings, _submit(settings), 0, WORKER_ID, ModelCache()) == "succeeded"
    assert gc.isenabled()

    gc.disable()  # a process that runs with the collector off keeps it off
    try:
        assert run_shard(settings, _submit(settings), 0, WORKER_ID, ModelCache()) == "succeeded"
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_failed_save_turns_the_collector_back_on(settings: Settings) -> None:
    job_id = _submit(settings)
    with session_scope(settings.database) as session:
        session.execute(text("DROP TABLE span_sets"))  # the shard's spans cannot be written
    assert run_shard(settings, job_id, 0, WORKER_ID, ModelCache()) == "failed"  # a DatabaseError ends the job
    assert "span_sets" in get_job(settings, job_id).error
    assert gc.isenabled()
