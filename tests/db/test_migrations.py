"""The migrations build exactly the models' schema, on PostgreSQL and SQLite, and `carml db` drives them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, inspect, pool, text

import carml.db.models  # noqa: F401  (registers every table on Base.metadata)
from carml.db import migrate
from carml.db.base import Base
from carml.db.session import DatabaseError

UNREACHABLE = "postgresql+psycopg://nobody:secret@127.0.0.1:1/x"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind: a SQLite file, and a PostgreSQL database of its own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'carml.db'}"
    return request.getfixturevalue("fresh_postgres_url")


@contextmanager
def _connect(url: str) -> Iterator[Connection]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _differences(url: str) -> list[object]:
    with _connect(url) as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def _tables(url: str) -> set[str]:
    with _connect(url) as connection:
        return set(inspect(connection).get_table_names())


def test_migrations_have_exactly_one_head() -> None:
    heads = ScriptDirectory.from_config(migrate.alembic_config()).get_heads()
    assert heads == [migrate.head()]


def test_upgrade_builds_exactly_the_models(database_url: str) -> None:
    assert migrate.upgrade(database_url) == migrate.head()
    assert _differences(database_url) == []
    assert _tables(database_url) == set(Base.metadata.tables) | {"alembic_version"}


def test_downgrade_to_base_drops_every_table_and_upgrade_rebuilds_them(database_url: str) -> None:
    migrate.upgrade(database_url)
    assert migrate.downgrade(database_url, "base") is None
    assert _tables(database_url) <= {"alembic_version"}

    assert migrate.upgrade(database_url) == migrate.head()
    assert migrate.upgrade(database_url) == migrate.head()  # already there: a no-op
    assert _differences(database_url) == []


def test_require_current_refuses_a_database_that_is_not_at_head(database_url: str) -> None:
    with pytest.raises(migrate.SchemaOutOfDate, match=rf"revision none, this CarML needs {migrate.head()}: run"):
        migrate.require_current(database_url)
    migrate.upgrade(database_url)
    migrate.require_current(database_url)


def test_require_current_names_a_revision_from_a_newer_carml(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'carml.db'}"
    migrate.upgrade(url)
    with _connect(url) as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed1234'"))
        connection.commit()
    with pytest.raises(migrate.SchemaOutOfDate, match="f00dfeed1234, which this CarML does not know"):
        migrate.require_current(url)


def test_revision_writes_nothing_when_the_models_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    # A copy of migrations/: were the models ahead of the migrations, the real folder must not get a stray file.
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", scripts)
    migrate.upgrade(database_url)
    before = sorted((scripts / "versions").iterdir())

    assert migrate.revision(database_url, "nothing to do") is None
    assert sorted((scripts / "versions").iterdir()) == before


def test_cli_upgrades_and_reports_the_revision(run_cli, database_url: str) -> None:
    head = migrate.head()
    code, out, err = run_cli("db", "current", "--url", database_url)
    assert (code, err) == (0, "")
    assert out.startswith("none ") and "carml db upgrade" in out

    code, out, err = run_cli("db", "upgrade", "--url", database_url)
    assert (code, err) == (0, "")
    assert out.strip().endswith(f"upgraded to {head} (head)")

    code, out, err = run_cli("db", "current", "--url", database_url)
    assert (code, out, err) == (0, f"{head} (head)\n", "")

    code, out, _ = run_cli("db", "downgrade", "-1", "--url", database_url)
    previous = ScriptDirectory.from_config(migrate.alembic_config()).get_revision(head).down_revision
    assert code == 0 and out.strip().endswith(f"downgraded to {previous}")
    code, out, _ = run_cli("db", "downgrade", "base", "--url", database_url)
    assert code == 0 and out.strip().endswith("downgraded to base (no CarML tables)")


def test_cli_upgrades_the_configured_database_by_default(run_cli, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("CARML_DATABASE_URL", raising=False)
    monkeypatch.setenv("CARML_HOME", str(tmp_path / "home"))
    code, out, _ = run_cli("db", "upgrade")
    assert code == 0
    assert f"sqlite:///{tmp_path / 'home' / 'carml.db'}" in out
    assert (tmp_path / "home" / "carml.db").is_file()


@pytest.mark.parametrize("command", [("current",), ("upgrade",), ("downgrade", "base")])
def test_cli_reports_an_unreachable_database_in_one_line(run_cli, command: tuple[str, ...]) -> None:
    code, out, err = run_cli("db", *command, "--url", UNREACHABLE)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: cannot ") and "127.0.0.1:1/x" in err
    assert "secret" not in err  # the password is masked


def test_unreachable_database_is_a_database_error() -> None:
    with pytest.raises(DatabaseError, match=r"nobody:\*\*\*@127\.0\.0\.1:1/x"):
        migrate.require_current(UNREACHABLE)
