"""Engines and sessions: one engine per database URL and process, sessions scoped to a unit of work."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
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


#: A pooled connection idle this long is pinged before it is handed out. NB: not every checkout (`pool_pre_ping`):
#: a small prediction checks a connection out about ten times across the web app and the worker, and a round trip
#: each is a large share of its latency. A connection in steady use cannot have missed a server restart, which
#: takes longer than this; the shard writes that could still meet a dead one retry (carml.db.retry).
PING_AFTER_IDLE_S = 1.0
_IDLE_SINCE = "carml_idle_since"


def _ping_when_idle(engine: Engine) -> None:
    def checked_in(_dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
        record.info[_IDLE_SINCE] = time.monotonic()

    def checked_out(dbapi_connection, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
            return  # new (just connected), or in steady use
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out another (a new one once the server is back).
            raise DisconnectionError(f"pooled connection lost while idle: {exc}") from exc

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)


_engines: dict[str, Engine] = {}
_read_engines: dict[str, Engine] = {}  # the same, in autocommit mode (`read_scope`)
_engines_lock = threading.Lock()


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # A worker idle for hours, or a restarted PostgreSQL, must not fail its next job: idle connections are pinged.
    # LIFO keeps the connections in use warm and lets the rest go idle (and be pinged, or time out server-side).
    engine = create_engine(url, pool_size=5, max_overflow=5, pool_use_lifo=True)
    _ping_when_idle(engine)
    return engine


def engine_for(url: str) -> Engine:
    """The process's engine for a URL (created on first use, never at import)."""
    with _engines_lock:
        return _engine_unlocked(url)


def _engine_unlocked(url: str) -> Engine:
    if url not in _engines:
        _engines[url] = _create_engine(url)
    return _engines[url]


def dispose_engines() -> None:
    """Forget pooled connections (after fork: a child must never reuse its parent's sockets)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose(close=False)
        _read_engines.clear()  # they share those engines' pools: made again on first use


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success, rolls back on error, and always closes."""
    with _scope(_session_factory(engine_for(url))()) as session:
        yield session


@contextmanager
def read_scope(url: str) -> Iterator[Session]:
    """A session for one read statement: it runs in autocommit mode, so there is no transaction to begin and
    commit around it (two round trips saved on PostgreSQL, where each statement sees the latest commits anyway).

    NB: for a single statement only: without a transaction, two statements on SQLite may see different commits."""
    with _autocommit_scope(url) as session:
        yield session


@contextmanager
def statement_scope(url: str) -> Iterator[Session]:
    """A session for one statement that writes and is whole in itself (on PostgreSQL, a data-modifying WITH makes
    one statement of several tables' changes): in autocommit mode, the statement is its own transaction, without the
    round trips of a `BEGIN` and a `COMMIT`."""
    with _autocommit_scope(url) as session:
        yield session


@contextmanager
def _autocommit_scope(url: str) -> Iterator[Session]:
    with _engines_lock:
        if url not in _read_engines:
            # The same pool as `engine_for(url)`'s; a connection is put back in its usual mode on return.
            _read_engines[url] = _engine_unlocked(url).execution_options(isolation_level="AUTOCOMMIT")
        engine = _read_engines[url]
    with _scope(_session_factory(engine)()) as session:
        yield session


@functools.cache
def _session_factory(engine: Engine) -> sessionmaker[Session]:
    # NB: made once per engine: each `sessionmaker` defines a Session subclass, whose event set-up costs more than
    # a short session's own work.
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def _scope(session: Session) -> Iterator[Session]:
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
