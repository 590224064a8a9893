"""The web app on the embedded backends (SQLite, a local object store) with a recording enqueuer."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

# The service area's real PostgreSQL + Redis + S3 + worker fixtures, for the end-to-end test.
from service.conftest import service_env, start_worker  # noqa: F401
from support import sign_in

from carml.datasets.digits import load_digits_split
from carml.db.migrate import upgrade
from carml.jobs.workers import register_worker
from carml.settings import Settings, load_settings
from webapp import create_app

WORKER_ID = "cpu-test@host"


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    settings = load_settings(
        {
            "CARML_HOME": str(tmp_path / "home"),
            "CARML_CACHE_DIR": str(tmp_path / "cache"),
            "CARML_OBJECT_STORE": str(tmp_path / "objects"),
        }
    )
    upgrade(settings.database)
    register_worker(settings, WORKER_ID, "cpu")  # so that jobs for the tag "cpu" are accepted
    return settings


@pytest.fixture()
def enqueued() -> list[tuple[str, int, str]]:
    """Every (job id, shard, hardware tag) the app sent to the queue."""
    return []


@pytest.fixture()
def app(settings: Settings, enqueued: list[tuple[str, int, str]]) -> Flask:
    return create_app(settings, lambda job_id, shard, tag: enqueued.append((job_id, shard, tag)))


@pytest.fixture()
def client(app: Flask, settings: Settings) -> FlaskClient:
    """A client signed in as the admin `local`: a bearer token on every request, and a login session."""
    return sign_in(app.test_client(), settings)


def _member(name: str) -> zipfile.ZipInfo:
    # A fixed time: the same content must give the same bytes (and sha256) whenever it is zipped.
    return zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))


@pytest.fixture()
def digits_zip() -> Callable[..., bytes]:
    """Makes zips of the first test digits as 8x8 PNGs in class folders, inside a wrapper folder."""

    def make(count: int = 30, extra: dict[str, bytes] | None = None) -> bytes:
        images, labels = load_digits_split("test")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for i in range(count):
                png = io.BytesIO()
                Image.fromarray(images[i]).save(png, format="PNG")
                archive.writestr(_member(f"my-digits/{labels[i]}/{i:03d}.png"), png.getvalue())
            for name, data in (extra or {}).items():
                archive.writestr(_member(name), data)
        return buffer.getvalue()

    return make
