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


# --- database ----------------------------------------------------------------------------------------------

POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
POSTGRES_ROLES = ("postgres", "root")  # the first that may connect is used; it must be allowed to CREATE DATABASE


def _postgres_admin(role: str) -> Any:
    import psycopg

    return psycopg.connect(
        host=POSTGRES_HOST, port=POSTGRES_PORT, user=role, dbname="postgres", autocommit=True, connect_timeout=5
    )


def _create_postgres_database(role: str) -> str:
    """Create an empty database with a random name; returns its SQLAlchemy URL."""
    import secrets

    from psycopg import sql

    name = f"carml_test_{secrets.token_hex(6)}"
    with _postgres_admin(role) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"postgresql+psycopg://{role}@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"


def _drop_postgres_database(role: str, url: str) -> None:
    from psycopg import sql

    name = url.rsplit("/", 1)[-1]
    # FORCE: pooled connections left by the code under test must not keep the database alive.
    with _postgres_admin(role) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def postgres_role() -> str:
    """The role that reaches PostgreSQL on loopback; skips when none does (fails instead when CI=true)."""
    import os

    import psycopg

    failures = []
    for role in POSTGRES_ROLES:
        try:
            with _postgres_admin(role):
                return role
        except psycopg.OperationalError as exc:
            failures.append(f"{role}: {str(exc).strip().splitlines()[0]}")
    reason = f"PostgreSQL unreachable at {POSTGRES_HOST}:{POSTGRES_PORT} ({'; '.join(failures)})"
    # CI provides PostgreSQL: there a missing server is a broken setup, and a skip would hide every database test.
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url(postgres_role: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database shared by the session (tests create what they need, e.g. `upgrade(url)`)."""
    url = _create_postgres_database(postgres_role)
    try:
        yield url
    finally:
        _drop_postgres_database(postgres_role, url)


@pytest.fixture()
def fresh_postgres_url(postgres_role: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test only: for tests that migrate or drop the schema."""
    url = _create_postgres_database(postgres_role)
    try:
        yield url
    finally:
        _drop_postgres_database(postgres_role, url)
