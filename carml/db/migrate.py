"""Schema migrations: bring a database to the revision this CarML needs, and refuse to run on any other.

A thin layer over alembic's command API with the scripts in the project's migrations/ folder; every
failure (cannot connect, bad URL, unknown revision) ends as one `DatabaseError` line naming the URL.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, create_engine, make_url, pool
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from carml.db.session import DatabaseError, engine_for
from carml.errors import CarmlError

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


class SchemaOutOfDate(CarmlError):
    """The database's schema is not the revision this CarML was written for."""


def masked(url: str) -> str:
    """The URL as it may be printed: any password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


def alembic_config(url: str | None = None) -> Config:
    """An alembic `Config` for the project's migrations/ folder, without any .ini file, aimed at `url`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if url is not None:
        # Main options pass through configparser interpolation: a %-encoded password must not be read as one.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if importlib.util.find_spec("ruff") is not None:
        # New revisions come out formatted and import-sorted like the rest of the code, when ruff is at hand.
        config.set_section_option("post_write_hooks", "hooks", "ruff_format, ruff_fix")
        for name, options in (("ruff_format", "format --quiet"), ("ruff_fix", "check --fix --quiet")):
            config.set_section_option("post_write_hooks", f"{name}.type", "module")
            config.set_section_option("post_write_hooks", f"{name}.module", "ruff")
            config.set_section_option("post_write_hooks", f"{name}.options", f"{options} REVISION_SCRIPT_FILENAME")
    return config


def head() -> str:
    """The newest revision in migrations/: the schema this CarML needs."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise DatabaseError(f"migrations/ must have exactly one head, found {len(heads)}: {', '.join(heads)}")
    return heads[0]


def current(url: str, *, pooled: bool = False) -> str | None:
    """The revision the database at `url` is at; None when it has none (empty, or not CarML's).

    `pooled`: on a connection from the process's pool (see carml.db.session), for a check made on every request
    (the health check) rather than once; opening a connection costs more than the query.
    """
    connect = _pooled if pooled else _connection
    with _reporting(url, "read the revision of"), connect(url) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(url: str, revision: str = "head") -> str | None:
    """Migrate the database at `url` forward to `revision`; returns the revision it is at afterwards."""
    with _reporting(url, "upgrade"):
        _make_sqlite_folder(url)
        command.upgrade(alembic_config(url), revision)
    return current(url)


def downgrade(url: str, revision: str) -> str | None:
    """Migrate the database at `url` back to `revision` ("base" drops every table); returns where it is."""
    with _reporting(url, "downgrade"):
        command.downgrade(alembic_config(url), revision)
    return current(url)


def require_current(url: str) -> None:
    """Raise `SchemaOutOfDate` unless the database at `url` is at `head()`: services call it before serving."""
    needed, found = head(), current(url)
    if found == needed:
        return
    where = f"database at {masked(url)}"
    if found is not None and not _known(found):
        raise SchemaOutOfDate(
            f"{where} is at revision {found}, which this CarML does not know (it needs {needed}): "
            "a newer CarML migrated it, upgrade CarML"
        )
    raise SchemaOutOfDate(
        f"{where} is at revision {found or 'none'}, this CarML needs {needed}: run `carml db upgrade`"
    )


def revision(url: str, message: str) -> Path | None:
    """Autogenerate a revision from how the models differ from the database at `url` (which must be at head).

    Returns the new script's path, or None when the models match the database and nothing was written.
    """

    def skip_if_empty(context: Any, revision: Any, directives: list[Any]) -> None:
        # An empty revision is noise in versions/ (and a second head to resolve): write none instead.
        if directives[0].upgrade_ops.is_empty():
            directives[:] = []

    with _reporting(url, "autogenerate a revision from"):
        script = command.revision(
            alembic_config(url), message=message, autogenerate=True, process_revision_directives=skip_if_empty
        )
    return Path(script.path) if isinstance(script, Script) else None


def _known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


@contextmanager
def _connection(url: str) -> Iterator[Connection]:
    # NullPool: these are one-off checks; the app's pooled engines (carml.db.session) are not touched.
    _make_sqlite_folder(url)
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


@contextmanager
def _pooled(url: str) -> Iterator[Connection]:
    with engine_for(url).connect() as connection:
        yield connection


@contextmanager
def _reporting(url: str, action: str) -> Iterator[None]:
    """Turn SQLAlchemy, alembic and file-system failures into one `DatabaseError` line naming the (masked) URL."""
    try:
        yield
    except (SQLAlchemyError, CommandError, OSError) as exc:
        raise DatabaseError(f"cannot {action} database {masked(url)}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    # The DBAPI's own message is the useful part; SQLAlchemy's wrapper adds the SQL and a link on more lines.
    reason = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(reason).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _make_sqlite_folder(url: str) -> None:
    # SQLite creates the file but not its folder (the default database lives under a fresh CARML_HOME).
    try:
        parsed = make_url(url)
    except ArgumentError:
        return  # _reporting names the bad URL when alembic tries it
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
