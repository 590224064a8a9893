"""Fixtures shared by every test folder. Keep each area's fixtures in its own section."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from minio import Minio

# --- artifacts: S3 (moto) server ---------------------------------------------------------------------------

S3_ACCESS_KEY = "testing"
S3_SECRET_KEY = "testing"
S3_REGION = "us-east-1"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API (moto's server) on loopback for the whole session; yields its 'host:port'."""
    from moto.server import ThreadedMotoServer

    # Werkzeug logs every request at INFO; the test output is clearer without it.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        yield f"127.0.0.1:{server._server.server_port}"
    finally:
        server.stop()


@pytest.fixture()
def s3_client(s3_endpoint: str) -> Minio:
    """The minio SDK talking to the session's S3 server, with the credentials it accepts."""
    import minio

    return minio.Minio(s3_endpoint, access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY, secure=False, region=S3_REGION)


@pytest.fixture()
def s3_settings_fields(s3_endpoint: str) -> dict[str, Any]:
    """The `Settings` fields that point CarML at the session's S3 server: `replace(settings, **these)`."""
    return {
        "s3_endpoint": s3_endpoint,
        "s3_access_key": S3_ACCESS_KEY,
        "s3_secret_key": S3_SECRET_KEY,
        "s3_secure": False,
        "s3_region": S3_REGION,
    }


# --- CLI ---------------------------------------------------------------------------------------------------


@pytest.fixture()
def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Run `carml ARGS...` in-process; returns (exit code, stdout, stderr). Uses a private artifact cache."""
    from carml.cli import main

    monkeypatch.setenv("CARML_CACHE_DIR", str(tmp_path / "carml-cache"))

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
