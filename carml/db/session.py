"""Engines and sessions: one engine per database URL and process, sessions scoped to a unit of work."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from carml.errors import CarmlError


class DatabaseError(CarmlError):
    """The database could not be reached or refused an operation."""


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the web app read while a worker writes; foreign keys are off in SQLite by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # pre_ping: a worker idle for hours, or a restarted PostgreSQL, must not fail its next job.
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def engine_for(url: str) -> Engine:
    """The process's engine for a URL (created on first use, never at import)."""
    with _engines_lock:
        if url not in _engines:
            _engines[url] = _create_engine(url)
        return _engines[url]


def dispose_engines() -> None:
    """Forget pooled connections (after fork: a child must never reuse its parent's sockets)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose(close=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success, rolls back on error, and always closes."""
    session = sessionmaker(engine_for(url), expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        # The driver's first line says what went wrong; the SQL and parameters after it are not for users.
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise DatabaseError(f"database error: {type(exc).__name__}: {detail[0] if detail else ''}") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
