"""Drills: the broker (Redis) or the database (PostgreSQL) restarted while an evaluation runs.

Both servers are private to the drill (see `fault_servers`): the shared ones on the standard ports are never
stopped. Each drill ends with a second job on the same worker, to show that it recovered and still works.
"""

from __future__ import annotations

import time

import pytest
from conftest import LONG_BATCH_SIZE, LONG_ITEMS
from drill_jobs import assert_one_copy_of_everything, assert_same_accuracy, report, submit, wait_final, wait_running
from support import unique_tag

from carml.db.migrate import upgrade
from carml.jobs.service import get_job
from carml.settings import load_settings

#: How long each server stays down: several progress writes and polls of the worker fail meanwhile.
DOWN_S = 2.0


def _still_serves(env: dict[str, str], tag: str) -> None:
    follow_up = submit(env, model="digits-cnn", framework="onnxruntime", dataset="digits", hardware_tag=tag, limit=64)
    assert wait_final(env, follow_up, timeout=60)["status"] == "succeeded"


@pytest.mark.slow
def test_redis_restarted_during_a_run_the_job_still_completes(
    private_redis, fresh_postgres_url, s3_endpoint, drill_env, workers, long_job, undisturbed
) -> None:
    upgrade(fresh_postgres_url)
    env = drill_env(fresh_postgres_url, private_redis.url, s3_endpoint)
    tag = unique_tag("drill-redis")
    (worker,) = workers.start(env, tag)
    # Two shards on one worker: while the first runs, the second waits in Redis and must survive the restart.
    job_id = submit(env, hardware_tag=tag, shards=2, **long_job)
    wait_running(env, job_id, fraction=0.1)
    stopped_at = time.monotonic()
    private_redis.stop()
    time.sleep(DOWN_S)
    private_redis.start()
    summary = wait_final(env, job_id, timeout=120)
    done_after = time.monotonic() - stopped_at

    assert summary["status"] == "succeeded", (summary, worker.output())
    assert_same_accuracy(summary["result"], undisturbed)
    assert_one_copy_of_everything(env, job_id, items=LONG_ITEMS, batch_size=LONG_BATCH_SIZE)
    attempts = [s.attempts for s in get_job(load_settings(env), job_id).shards]
    _still_serves(env, tag)
    assert worker.alive()
    report(
        "Redis restart",
        down_s=DOWN_S,
        job_done_after_stop_s=round(done_after, 2),
        shard_attempts=attempts,
        items=summary["result"]["items"],
    )


@pytest.mark.slow
def test_postgres_restarted_during_a_run_loses_no_result(
    private_postgres, private_redis, s3_endpoint, drill_env, workers, long_job, undisturbed
) -> None:
    env = drill_env(private_postgres.url, private_redis.url, s3_endpoint)
    tag = unique_tag("drill-postgres")
    (worker,) = workers.start(env, tag)
    job_id = submit(env, hardware_tag=tag, **long_job)
    wait_running(env, job_id, fraction=0.1)
    stopped_at = time.monotonic()
    private_postgres.stop()  # fast shutdown: every connection of the worker is cut
    time.sleep(DOWN_S)
    private_postgres.start()
    summary = wait_final(env, job_id, timeout=120)
    done_after = time.monotonic() - stopped_at

    assert summary["status"] == "succeeded", (summary, worker.output())
    assert_same_accuracy(summary["result"], undisturbed)
    assert_one_copy_of_everything(env, job_id, items=LONG_ITEMS, batch_size=LONG_BATCH_SIZE)
    (shard,) = get_job(load_settings(env), job_id).shards
    assert shard.attempts == 1  # the shard rode the outage out; it was not run again
    _still_serves(env, tag)
    assert worker.alive()
    report(
        "PostgreSQL restart",
        down_s=DOWN_S,
        job_done_after_stop_s=round(done_after, 2),
        shard_attempts=shard.attempts,
        items=summary["result"]["items"],
    )
