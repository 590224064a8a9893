"""Drill: a worker SIGKILLed in the middle of an evaluation, on each broker.

The shard must come back, run again from its start and end the job with the accuracy and item count of an
undisturbed run, leaving one copy of every row and object. What brings it back differs:

- the whole worker (main process and pool) killed, as when a machine or container is lost:
  - Redis keeps the unacknowledged message until its visibility timeout (2 x the job time limit + 10 min),
    so the shard comes back through the heartbeat watch of another live worker, `CARML_WORKER_ALIVE_S`
    after the dead worker's last heartbeat;
  - RabbitMQ requeues the message as soon as the dead worker's connection closes, and another worker
    takes it at once (the heartbeat watch is set far beyond the drill, so it cannot be what did it);
- the pool process running the task killed, as the OOM killer does: the worker's main process sees it
  die and gives the message back (`task_reject_on_worker_lost`), and its new pool process runs it again.
"""

from __future__ import annotations

import time

import pytest
from conftest import LONG_BATCH_SIZE, LONG_ITEMS
from drill_jobs import (
    DrillWorkers,
    assert_one_copy_of_everything,
    assert_same_accuracy,
    poll,
    report,
    submit,
    wait_final,
    wait_reclaimed,
    wait_running,
)
from support import unique_tag

from carml.db.migrate import upgrade
from carml.jobs.service import get_job
from carml.settings import load_settings


def _broker(request: pytest.FixtureRequest, broker: str) -> str:
    if broker == "redis":
        return request.getfixturevalue("private_redis").url
    return request.getfixturevalue("rabbitmq_url")


@pytest.fixture()
def delete_queue_afterwards(workers: DrillWorkers):
    """What a drill declared on the shared RabbitMQ (its tag's queue and exchange) goes when it ends, once its
    workers are gone (a live consumer would declare them again). Redis here is private to the drill."""
    created: list[tuple[str, str]] = []
    yield lambda broker_url, tag: created.append((broker_url, tag))
    from kombu import Connection

    from worker.celery_app import queue_for

    workers.stop_all()
    for broker_url, tag in created:
        if broker_url.startswith("amqp"):
            with Connection(broker_url) as connection:
                connection.default_channel.queue_delete(queue_for(tag))
                connection.default_channel.exchange_delete(queue_for(tag))


@pytest.mark.slow
@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_killed_worker_shard_is_redelivered_and_the_job_equals_an_undisturbed_run(
    broker, request, fresh_postgres_url, s3_endpoint, drill_env, workers, long_job, undisturbed, delete_queue_afterwards
) -> None:
    # Redis: short, since the heartbeat watch is what recovers; RabbitMQ: far past the drill, so it cannot be.
    alive_s = 4 if broker == "redis" else 600
    upgrade(fresh_postgres_url)
    env = drill_env(fresh_postgres_url, _broker(request, broker), s3_endpoint, CARML_WORKER_ALIVE_S=str(alive_s))
    tag = unique_tag("drill-kill")
    delete_queue_afterwards(env["CARML_BROKER_URL"], tag)
    workers.start(env, tag, count=2)

    job_id = submit(env, hardware_tag=tag, **long_job)
    running = wait_running(env, job_id, fraction=0.1)
    first = running.shards[0]
    victim = workers.running(env, first.worker_id)
    killed_at = time.monotonic()
    victim.kill_group()
    again = wait_reclaimed(env, job_id, first.worker_id)
    back_after = time.monotonic() - killed_at
    summary = wait_final(env, job_id, timeout=120)
    done_after = time.monotonic() - killed_at

    assert summary["status"] == "succeeded", (summary, victim.output())
    assert_same_accuracy(summary["result"], undisturbed)
    assert_one_copy_of_everything(env, job_id, items=LONG_ITEMS, batch_size=LONG_BATCH_SIZE)
    shard = get_job(load_settings(env), job_id).shards[0]
    assert shard.attempts == 2 and shard.worker_id == again != first.worker_id
    if broker == "redis":
        # The killed worker's delivery is still unacknowledged in Redis: the broker did not bring it back.
        import redis

        assert redis.Redis.from_url(env["CARML_BROKER_URL"]).hlen("unacked") == 1
        assert back_after >= alive_s - 1
    else:
        assert back_after < alive_s
    report(
        f"worker group SIGKILL on {broker}",
        killed_at_items=f"{running.progress_done}/{running.progress_total}",
        shard_back_s=round(back_after, 2),
        job_done_s=round(done_after, 2),
        items=summary["result"]["items"],
        top1=summary["result"]["top1"],
    )


@pytest.mark.slow
@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_killed_pool_process_shard_is_run_again_by_the_same_worker(
    broker, request, fresh_postgres_url, s3_endpoint, drill_env, workers, long_job, undisturbed, delete_queue_afterwards
) -> None:
    upgrade(fresh_postgres_url)
    # The worker lives on and keeps heartbeating, so only the broker can bring the shard back.
    env = drill_env(fresh_postgres_url, _broker(request, broker), s3_endpoint)
    tag = unique_tag("drill-oom")
    delete_queue_afterwards(env["CARML_BROKER_URL"], tag)
    (worker,) = workers.start(env, tag)

    job_id = submit(env, hardware_tag=tag, **long_job)
    running = wait_running(env, job_id, fraction=0.1)
    first = running.shards[0]
    killed_at = time.monotonic()
    killed = worker.kill_pool_child()
    poll(env, job_id, lambda job: job.shards[0].attempts == 2, 60, "the shard's second start")
    back_after = time.monotonic() - killed_at
    summary = wait_final(env, job_id, timeout=120)
    done_after = time.monotonic() - killed_at

    assert summary["status"] == "succeeded", (summary, worker.output())
    assert_same_accuracy(summary["result"], undisturbed)
    assert_one_copy_of_everything(env, job_id, items=LONG_ITEMS, batch_size=LONG_BATCH_SIZE)
    shard = get_job(load_settings(env), job_id).shards[0]
    assert shard.attempts == 2 and shard.worker_id == first.worker_id
    assert worker.alive() and killed not in worker.pool_children()
    report(
        f"pool process SIGKILL on {broker}",
        killed_at_items=f"{running.progress_done}/{running.progress_total}",
        shard_back_s=round(back_after, 2),
        job_done_s=round(done_after, 2),
        items=summary["result"]["items"],
    )


@pytest.mark.slow
def test_a_shard_whose_pool_process_dies_every_time_fails_its_job_after_three_starts(
    private_redis, fresh_postgres_url, s3_endpoint, drill_env, workers, long_job
) -> None:
    upgrade(fresh_postgres_url)
    env = drill_env(fresh_postgres_url, private_redis.url, s3_endpoint)
    tag = unique_tag("drill-oom-loop")
    (worker,) = workers.start(env, tag)
    job_id = submit(env, hardware_tag=tag, **long_job)
    for attempt in (1, 2, 3):  # as a shard too big for the machine's memory would, every time
        poll(env, job_id, lambda job, n=attempt: job.shards[0].attempts == n and job.progress_done > 0, 60, "a start")
        worker.kill_pool_child()
    summary = wait_final(env, job_id, timeout=60)

    assert summary["status"] == "failed", (summary, worker.output())
    assert "died 3 times" in summary["error"] and "result" not in summary
    assert worker.alive()
    report("pool process SIGKILL on every start (Redis)", status=summary["status"], error=summary["error"])
