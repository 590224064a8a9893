"""Drill: the S3 server killed while an evaluation runs.

The shard's predictions are written to the object store only once all of them are done. With the store down,
that write is tried 4 times, backing off 0.2, 0.4 and 0.8 s (`S3ObjectStore`), then the job fails with a
message that names the endpoint; nothing of the run is recorded as a result. Once the store is back, the same
worker runs the next job.
"""

from __future__ import annotations

import time

import pytest
from drill_jobs import poll, report, submit, wait_final, wait_running
from sqlalchemy import func, select
from support import unique_tag

from carml.db.migrate import upgrade
from carml.db.models import Job, OutputObject, Result, StageTiming, TraceSpan
from carml.db.session import session_scope
from carml.settings import load_settings

#: The backoff between the 4 attempts of an S3 call: 0.2 + 0.4 + 0.8 s.
BACKOFF_S = 1.4


@pytest.mark.slow
def test_s3_down_fails_the_job_after_bounded_retries_and_records_no_result(
    private_s3, private_redis, fresh_postgres_url, drill_env, workers, long_job
) -> None:
    upgrade(fresh_postgres_url)
    env = drill_env(fresh_postgres_url, private_redis.url, private_s3.endpoint)
    tag = unique_tag("drill-s3")
    (worker,) = workers.start(env, tag)
    job_id = submit(env, hardware_tag=tag, **long_job)
    wait_running(env, job_id, fraction=0.1)
    private_s3.kill()
    # The evaluation itself needs no S3: it runs to its end, then its write to the store fails.
    predicted_at = time.monotonic()
    poll(env, job_id, lambda job: job.progress_done == job.progress_total, 60, "the last prediction")
    summary = wait_final(env, job_id, timeout=60)
    failed_after = time.monotonic() - predicted_at

    assert summary["status"] == "failed", (summary, worker.output())
    assert f"the S3 endpoint {private_s3.endpoint} could not be reached after 4 attempts" in summary["error"]
    assert BACKOFF_S <= failed_after < 15, failed_after
    with session_scope(load_settings(env).database) as session:
        (shard,) = session.get(Job, job_id).shards
        assert shard.status == "failed" and shard.partial is None
        for table in (Result, OutputObject, StageTiming, TraceSpan):
            where = table.job_id == job_id
            if table is TraceSpan:
                where = where & (TraceSpan.shard_index == 0)  # the job keeps its `submit` span
            assert session.scalar(select(func.count()).select_from(table).where(where)) == 0, table.__tablename__

    private_s3.start()  # the store is back, empty (moto keeps nothing): the worker works again
    follow_up = submit(env, model="digits-cnn", framework="onnxruntime", dataset="digits", hardware_tag=tag, limit=64)
    assert wait_final(env, follow_up, timeout=60)["status"] == "succeeded"
    report("S3 down", failed_after_last_prediction_s=round(failed_after, 2), error=summary["error"])
