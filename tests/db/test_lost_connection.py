"""A database that is briefly away: which errors are waited out, and that a unit of work is done again."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlalchemy import text

from carml.db.retry import is_lost_connection, retried_on_lost_connection, skipped_while_database_away
from carml.db.session import DatabaseError, session_scope


def closed_port_url() -> str:
    """PostgreSQL on a loopback port that nothing listens on: every connection is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql+psycopg://carml@127.0.0.1:{port}/carml"


def _error(url: str, sql: str = "SELECT 1") -> DatabaseError:
    with pytest.raises(DatabaseError) as caught, session_scope(url) as session:
        session.execute(text(sql))
    return caught.value


def test_an_unreachable_server_is_a_lost_connection_but_a_bad_statement_is_not(tmp_path: Path, postgres_url) -> None:
    assert is_lost_connection(_error(closed_port_url()))
    assert not is_lost_connection(_error(postgres_url, "SELECT * FROM no_such_table"))
    # SQLite reports a missing table as an "operational" error too; it has no server to wait for anyway.
    assert not is_lost_connection(_error(f"sqlite:///{tmp_path / 'a.db'}", "SELECT * FROM no_such_table"))


def test_a_unit_of_work_is_done_again_once_the_database_answers(tmp_path: Path) -> None:
    # The first two tries meet a server that is down, the third one answers (a restart, as the worker sees it).
    urls = iter([closed_port_url(), closed_port_url(), f"sqlite:///{tmp_path / 'b.db'}"])
    tries: list[str] = []

    @retried_on_lost_connection
    def unit_of_work() -> int:
        tries.append(url := next(urls))
        with session_scope(url) as session:
            return int(session.execute(text("SELECT 41 + 1")).scalar_one())

    assert unit_of_work() == 42 and len(tries) == 3


def test_a_bad_statement_is_not_retried_and_is_not_skipped(tmp_path: Path) -> None:
    url, tries = f"sqlite:///{tmp_path / 'c.db'}", []

    @retried_on_lost_connection
    def unit_of_work() -> None:
        tries.append(1)
        with session_scope(url) as session:
            session.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(DatabaseError, match="no_such_table"):
        unit_of_work()
    assert tries == [1]
    with pytest.raises(DatabaseError), skipped_while_database_away("a progress write"):
        unit_of_work()


def test_a_progress_write_while_the_database_is_away_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    with skipped_while_database_away("a progress write"), session_scope(closed_port_url()) as session:
        session.execute(text("SELECT 1"))
    assert "a progress write skipped, the database is away" in caplog.text
