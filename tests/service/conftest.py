"""Real service parts for end-to-end tests: a migrated PostgreSQL, Redis, an S3 bucket, worker processes."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import PROJECT_ROOT, require_redis

from carml.db.migrate import upgrade
from carml.jobs.workers import live_workers
from carml.settings import load_settings


@pytest.fixture()
def service_env(tmp_path: Path, fresh_postgres_url: str, s3_endpoint: str) -> dict[str, str]:
    """Environment of a deployment: PostgreSQL, Redis, S3 (a new bucket), quick heartbeats."""
    redis_url = require_redis()
    upgrade(fresh_postgres_url)
    return deployment_env(tmp_path, fresh_postgres_url, redis_url, s3_endpoint)


def deployment_env(tmp_path: Path, database_url: str, broker_url: str, s3_endpoint: str) -> dict[str, str]:
    """The CARML_* settings of a deployment on these servers: a new S3 bucket, folders under `tmp_path`,
    heartbeats every second (so that a dead worker is noticed within CARML_WORKER_ALIVE_S)."""
    return {
        "CARML_DATABASE_URL": database_url,
        "CARML_BROKER_URL": broker_url,
        "CARML_OBJECT_STORE": f"s3://carml-{secrets.token_hex(4)}",
        "CARML_S3_ENDPOINT": s3_endpoint,
        "CARML_S3_ACCESS_KEY": "testing",
        "CARML_S3_SECRET_KEY": "testing",
        "CARML_S3_SECURE": "false",
        "CARML_S3_REGION": "us-east-1",
        "CARML_HOME": str(tmp_path / "home"),
        "CARML_CACHE_DIR": str(tmp_path / "cache"),
        "CARML_WORKER_HEARTBEAT_S": "1",
    }


@pytest.fixture()
def start_worker(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start `carml worker` processes; each is waited for until live, and stopped after the test."""
    started: list[subprocess.Popen] = []

    def start(
        env: dict[str, str], tag: str, concurrency: int = 1, timeout: float = 60, threads: int | None = None
    ) -> subprocess.Popen:
        settings = load_settings(env)
        before = {w.id for w in live_workers(settings, tag)}
        log = (tmp_path / f"worker-{tag}-{len(started)}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "carml", "worker", "--hardware", tag, "--concurrency", str(concurrency)]
            + (["--threads", str(threads)] if threads else []),
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        deadline = time.monotonic() + timeout
        while not ({w.id for w in live_workers(settings, tag)} - before):
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise AssertionError(f"worker for {tag} did not start:\n{Path(log.name).read_text()[-3000:]}")
            time.sleep(0.2)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
