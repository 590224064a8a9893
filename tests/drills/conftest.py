"""Fault drills: real worker processes, real signals and real servers, some of them private so that a drill
can take them down without touching the servers the rest of the test suite shares."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from drill_jobs import DrillWorkers
from fault_servers import MotoS3Server, PostgresServer, RedisServer
from service.conftest import deployment_env

from carml.db.migrate import upgrade

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"

#: The drills' evaluation: digits-cnn on ONNX Runtime over the digits test split repeated this many times,
#: at batch size 4, runs for a few seconds on a worker: long enough to hit it mid-run, short enough to run twice.
LONG_DATASET_REPEATS = 20
LONG_BATCH_SIZE = 4
LONG_ITEMS = 360 * LONG_DATASET_REPEATS


def _unreachable(reason: str) -> None:
    # CI provides every server: there a missing one is a broken set-up, and a skip would hide the drill.
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """The shared RabbitMQ; drills use it only through queues of their own (unique hardware tags)."""
    from kombu import Connection

    try:
        with Connection(RABBITMQ_URL, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        _unreachable(f"RabbitMQ unreachable at {RABBITMQ_URL}: {exc}")
    return RABBITMQ_URL


@pytest.fixture()
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def private_postgres() -> Iterator[PostgresServer]:
    """A migrated database on a PostgreSQL cluster of the drill's own (see `PostgresServer` for root)."""
    try:
        server = PostgresServer()
    except RuntimeError as exc:
        _unreachable(str(exc))
    try:
        server.init()
        upgrade(server.url)
        yield server
    finally:
        server.destroy()


@pytest.fixture()
def private_s3(tmp_path: Path) -> Iterator[MotoS3Server]:
    server = MotoS3Server(tmp_path / "moto.log")
    server.start()
    yield server
    server.kill()


@pytest.fixture()
def workers(tmp_path: Path) -> Iterator[DrillWorkers]:
    started = DrillWorkers(tmp_path)
    yield started
    started.stop_all()


@pytest.fixture()
def drill_env(tmp_path: Path) -> Callable[..., dict[str, str]]:
    """The environment of the service under drill: `drill_env(database_url, broker_url, s3_endpoint, **more)`;
    heartbeats every second, so that a dead worker is noticed within `CARML_WORKER_ALIVE_S`."""

    def env(database_url: str, broker_url: str, s3_endpoint: str, **more: str) -> dict[str, str]:
        return {
            **deployment_env(tmp_path, database_url, broker_url, s3_endpoint),
            # Spans are still checked for duplicates, but a shard of 1,800 batches need not write 10,000 of them.
            "CARML_TRACE_MAX_SPANS": "2000",
            **more,
        }

    return env


def repeated_digits(path: Path, repeats: int) -> Path:
    """The digits test split (360 images) repeated: an evaluation as long as a drill needs, in an .npz file."""
    from carml.datasets.digits import load_digits_split

    images, labels = load_digits_split("test")
    np.savez(path, x=np.tile(images, (repeats, 1, 1)), y=np.tile(labels, repeats))
    return path


@pytest.fixture(scope="session")
def long_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return repeated_digits(tmp_path_factory.mktemp("drill-data") / "digits-repeated.npz", LONG_DATASET_REPEATS)


@pytest.fixture(scope="session")
def undisturbed(long_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The drills' evaluation run once, undisturbed, in this process: what every disturbed run must equal."""
    from carml.evaluation.runner import EvaluationOptions
    from carml.runs import evaluate_model
    from carml.settings import load_settings

    settings = load_settings({"CARML_CACHE_DIR": str(tmp_path_factory.mktemp("drill-cache"))})
    return evaluate_model(
        settings,
        "digits-cnn",
        str(long_dataset),
        framework="onnxruntime",
        options=EvaluationOptions(batch_size=LONG_BATCH_SIZE),
    )


@pytest.fixture()
def long_job(long_dataset: Path) -> dict[str, Any]:
    """The request of the drills' evaluation, less its hardware tag."""
    return {
        "model": "digits-cnn",
        "framework": "onnxruntime",
        "dataset": str(long_dataset),
        "batch_size": LONG_BATCH_SIZE,
    }
