"""Database faults for tests on PostgreSQL: a connection killed by the server before a statement, and a statement or a
COMMIT whose answer is lost after the server applied it. They act on this process's real connections: statements
are watched at psycopg's cursor, which runs them whether SQLAlchemy executes them or they run as the driver's SQL
(carml.db.driver_statements); commits at the engine's dialect (see engine_for)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from carml.db.session import engine_for


def _admin_connection(url: str) -> psycopg.Connection:
    """A separate plain connection to the same database, to end another one's backend."""
    parsed = make_url(url)
    return psycopg.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database, autocommit=True
    )


@contextmanager
def connection_killed_before(url: str, statement_start: str, times: int = 1) -> Iterator[list[str]]:
    """The first `times` statements starting with `statement_start` (e.g. "INSERT INTO results") find their
    connection terminated by the server (pg_terminate_backend), as in a restart or a failover; yields the
    statements that met a dead connection."""
    killed: list[str] = []

    def kill_first(cursor: Any, statement: str) -> None:
        if len(killed) >= times or not _starts(statement, statement_start):
            return
        killed.append(statement)
        pid = cursor.connection.info.backend_pid
        with _admin_connection(url) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            # NB: the signal is asynchronous: wait until the backend is gone, so the statement meets a dead socket.
            deadline = time.monotonic() + 10
            while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
                assert time.monotonic() < deadline, f"backend {pid} did not end"
                time.sleep(0.01)

    with _each_statement(before=kill_first):
        yield killed


@contextmanager
def answer_lost_once(statement_start: str) -> Iterator[list[str]]:
    """The first statement starting with `statement_start` is run (in autocommit mode: applied for good), then the
    driver reports a dropped connection instead of its answer; yields the statements whose answer was lost."""
    lost: list[str] = []

    def lose_the_answer(_cursor: Any, statement: str) -> None:
        if not lost and _starts(statement, statement_start):
            lost.append(statement)
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    with _each_statement(after=lose_the_answer):
        yield lost


def _starts(statement: str, start: str) -> bool:
    return statement.lstrip().upper().startswith(start.upper())


@contextmanager
def _each_statement(
    before: Callable[[Any, str], None] | None = None, after: Callable[[Any, str], None] | None = None
) -> Iterator[None]:
    """`before(cursor, statement)` and `after(...)` around every statement a psycopg cursor of this process
    executes."""
    execute = psycopg.Cursor.execute

    def watched(self: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        statement = query if isinstance(query, str) else str(query)
        if before is not None:
            before(self, statement)
        result = execute(self, query, *args, **kwargs)
        if after is not None:
            after(self, statement)
        return result

    psycopg.Cursor.execute = watched  # type: ignore[assignment,method-assign]
    try:
        yield
    finally:
        psycopg.Cursor.execute = execute  # type: ignore[method-assign]


@contextmanager
def commit_answer_lost_once(url: str, after: str = "") -> Iterator[list[bool]]:
    """The next COMMIT (of a transaction that ran a statement starting with `after`, when given) is applied by
    PostgreSQL, then the driver reports a dropped connection instead of its answer: what a worker sees when the
    network or the server fails between the two."""
    engine = engine_for(url)
    dialect = engine.dialect
    lost: list[bool] = []
    armed = [not after]

    def arm(_cursor: Any, statement: str) -> None:
        if _starts(statement, after):
            armed[0] = True

    def commit_then_lose_the_answer(dbapi_connection: Any) -> None:
        type(dialect).do_commit(dialect, dbapi_connection)
        if armed[0] and not lost:
            lost.append(True)
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    dialect.do_commit = commit_then_lose_the_answer  # type: ignore[method-assign]
    try:
        with _each_statement(before=arm):
            yield lost
    finally:
        del dialect.do_commit
