"""Riding out a database that is briefly away: a restart, a failover, a dropped connection.

A worker's writes about a shard (its claim, its outcome) are idempotent units of work, so they can simply
be done again once the database answers; the pool then replaces the dead connections
(carml.db.session pings idle ones).
Errors that the database would give again (a constraint, bad SQL) are not retried.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError

from carml.db.session import DatabaseError
from carml.storage.retry import RetryPolicy

P = ParamSpec("P")
T = TypeVar("T")

logger = logging.getLogger(__name__)

#: 8 tries, backing off from 0.25 s: about 30 s in all, more than a PostgreSQL restart takes.
DATABASE_RETRY = RetryPolicy(attempts=8, backoff_s=0.25)


def is_lost_connection(exc: BaseException) -> bool:
    """True for a database server that could not be reached or dropped the connection, or was shutting down or
    starting up (psycopg reports all of these, and deadlocks, as operational errors; bad SQL is another class).

    Never for SQLite: it has no server to lose, and reports bad SQL (a missing table) as an operational error.
    """
    if not isinstance(exc, DatabaseError) or not isinstance(exc.__cause__, OperationalError | InterfaceError):
        return False
    return not isinstance(exc.__cause__.orig, sqlite3.Error)


def retried_on_lost_connection(unit_of_work: Callable[P, T]) -> Callable[P, T]:
    """Decorate an idempotent unit of work (its own `session_scope`s) to be done again while the database is away."""

    @functools.wraps(unit_of_work)
    def retried(*args: P.args, **kwargs: P.kwargs) -> T:
        return DATABASE_RETRY.call(lambda: unit_of_work(*args, **kwargs), is_lost_connection)

    return retried


@contextmanager
def skipped_while_database_away(what: str) -> Iterator[None]:
    """For a write or read that the next one makes up for (progress, a cancellation poll): while the database
    is away it is skipped, with a warning, instead of failing the work it reports on."""
    try:
        yield
    except DatabaseError as exc:
        if not is_lost_connection(exc):
            raise
        logger.warning("%s skipped, the database is away: %s", what, exc)
