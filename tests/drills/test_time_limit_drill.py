"""Drill: a job past its time limit ends TIMED_OUT between two batches, and its worker goes on working.

The shard checks its deadline between batches (`CARML_JOB_TIME_LIMIT_S`, here 1 s), so the pool process is
not killed: Celery's own hard limit (90 s later) is only a backstop for a batch that never returns.
"""

from __future__ import annotations

import pytest
from conftest import repeated_digits
from drill_jobs import report, submit, wait_final
from sqlalchemy import func, select
from support import unique_tag

from carml.db.migrate import upgrade
from carml.db.models import Job, OutputObject, Result
from carml.db.session import session_scope
from carml.settings import load_settings

LIMIT_S = 1


@pytest.mark.slow
def test_job_past_its_time_limit_is_timed_out_and_the_worker_stays_healthy(
    private_redis, fresh_postgres_url, s3_endpoint, drill_env, workers, tmp_path
) -> None:
    upgrade(fresh_postgres_url)
    env = drill_env(fresh_postgres_url, private_redis.url, s3_endpoint, CARML_JOB_TIME_LIMIT_S=str(LIMIT_S))
    tag = unique_tag("drill-limit")
    (worker,) = workers.start(env, tag)
    pool_before = worker.pool_children()
    # 14,400 items one at a time: over ten seconds of work, far past the limit however fast the machine is.
    dataset = str(repeated_digits(tmp_path / "digits-x40.npz", 40))
    job_id = submit(env, model="digits-cnn", framework="onnxruntime", dataset=dataset, hardware_tag=tag, batch_size=1)
    summary = wait_final(env, job_id, timeout=60)

    assert summary["status"] == "timed_out", (summary, worker.output())
    assert f"past the {LIMIT_S} s limit" in summary["error"]
    assert 0 < summary["progress"]["done"] < summary["progress"]["total"]
    settings = load_settings(env)
    with session_scope(settings.database) as session:
        job = session.get(Job, summary["id"])
        ran_s = (job.finished_at - job.shards[0].started_at).total_seconds()
        for table in (Result, OutputObject):
            assert session.scalar(select(func.count()).select_from(table).where(table.job_id == job.id)) == 0

    follow_up = submit(env, model="digits-cnn", framework="onnxruntime", dataset="digits", hardware_tag=tag, limit=64)
    assert wait_final(env, follow_up, timeout=60)["status"] == "succeeded"
    assert worker.alive() and worker.pool_children() == pool_before  # the same pool process ran both
    report(
        "time limit",
        limit_s=LIMIT_S,
        shard_ran_s=round(ran_s, 2),
        items_done=f"{summary['progress']['done']}/{summary['progress']['total']}",
    )
