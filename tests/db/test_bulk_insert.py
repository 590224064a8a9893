"""Bulk rows (stage timings, and a table of span-like rows made here) on PostgreSQL's COPY (or, for a few rows, one
INSERT with their values) and SQLite's executemany: what is read back, and failures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Float, Integer, MetaData, String, UniqueConstraint, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from carml.db import bulk
from carml.db.base import TYPE_ANNOTATION_MAP
from carml.db.bulk import insert_rows, replace_rows
from carml.db.migrate import upgrade
from carml.db.models import Job, StageTiming
from carml.db.retry import is_lost_connection
from carml.db.session import DatabaseError, session_scope
from carml.jobs.execution import TIMING_COLUMNS


class _ProbeBase(DeclarativeBase):
    metadata = MetaData()
    type_annotation_map = TYPE_ANNOTATION_MAP


class ProbeSpan(_ProbeBase):
    """Rows with every kind of column bulk rows carry: text, nullable integers, an aware time, a float, JSON with a
    Python default, and a unique constraint."""

    __tablename__ = "bulk_probe_spans"
    __table_args__ = (UniqueConstraint("trace_id", "span_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(String(36))
    trace_id: Mapped[str] = mapped_column(String(32))
    span_id: Mapped[str] = mapped_column(String(16))
    parent_span_id: Mapped[str | None] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    shard_index: Mapped[int | None] = mapped_column(Integer)
    batch_index: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column()
    duration_ms: Mapped[float] = mapped_column(Float)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)


SPAN_COLUMNS = (
    *("job_id", "trace_id", "span_id", "parent_span_id", "name", "shard_index", "batch_index", "started_at"),
    *("duration_ms", "attributes"),
)
JOB = "00000000-0000-4000-8000-000000000001"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
STARTED = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-copy"])
def database(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated database with one job, on each backend; on PostgreSQL both ways, the few rows of these tests
    written as one INSERT, and as a COPY (`postgresql-copy`)."""
    if request.param.startswith("postgresql"):
        url = request.getfixturevalue("fresh_postgres_url")
        if request.param == "postgresql-copy":
            monkeypatch.setattr(bulk, "MAX_VALUES_ROWS", 0)
    else:
        url = f"sqlite:///{tmp_path / 'bulk.db'}"
    upgrade(url)
    with session_scope(url) as session:
        _ProbeBase.metadata.create_all(session.connection())
        session.add(
            Job(
                id=JOB,
                kind="evaluation",
                owner="local",
                model_name="m",
                framework="f",
                hardware_tag="cpu",
                batch_size=1,
            )
        )
    yield url


def _span(span_id: str, name: str, attributes: dict, parent: str | None = "00f067aa0ba902b7") -> tuple:
    return (JOB, TRACE, span_id, parent, name, 0, 3, STARTED, 1.25, attributes)


def test_rows_read_back_as_an_insert_would_store_them(database: str) -> None:
    # Text that COPY's format escapes (tab, newline, backslash), non-ASCII, and every JSON type.
    awkward = 'a\tb\nc\\d µs "quoted"'
    attributes = {
        "items": 32,
        "warmup": False,
        "ratio": 0.5,
        "note": awkward,
        "shape": [1, 28, 28],
        "nested": {"k": None},
    }
    with session_scope(database) as session:
        insert_rows(
            session,
            ProbeSpan.__table__,
            SPAN_COLUMNS,
            [_span("0000000000000001", awkward, attributes), _span("0000000000000002", "shard", {}, parent=None)],
        )
        insert_rows(session, StageTiming.__table__, TIMING_COLUMNS, [(JOB, 0, 3, "predict", 32, 4.5, True)])
    with session_scope(database) as session:
        spans = session.scalars(select(ProbeSpan).order_by(ProbeSpan.span_id)).all()
        timing = session.scalars(select(StageTiming)).one()
        assert [(s.name, s.parent_span_id, s.attributes) for s in spans] == [
            (awkward, "00f067aa0ba902b7", attributes),
            ("shard", None, {}),
        ]
        assert spans[0].started_at == STARTED and spans[0].duration_ms == 1.25 and spans[0].batch_index == 3
        assert (timing.stage, timing.items, timing.duration_ms, timing.warmup) == ("predict", 32, 4.5, True)


def test_rows_written_again_replace_their_shards_earlier_copy_and_no_other(database: str) -> None:
    def timings(shard: int, duration_ms: float) -> list[tuple]:
        return [(JOB, shard, batch, "predict", 4, duration_ms, False) for batch in range(3)]

    with session_scope(database) as session:
        insert_rows(session, StageTiming.__table__, TIMING_COLUMNS, timings(1, 9.0))
    for duration_ms in (1.0, 2.0):  # a shard finished twice (redelivered, or its transaction done again)
        with session_scope(database) as session:
            shard = {"job_id": JOB, "shard_index": 0}
            replace_rows(session, StageTiming.__table__, shard, TIMING_COLUMNS, timings(0, duration_ms))
    with session_scope(database) as session:
        rows = session.execute(select(StageTiming.shard_index, StageTiming.duration_ms)).all()
    assert sorted(rows) == [(0, 2.0)] * 3 + [(1, 9.0)] * 3


def test_a_naive_datetime_is_refused_and_nothing_of_the_transaction_is_written(database: str) -> None:
    naive = (*_span("0000000000000002", "bad", {})[:7], datetime(2030, 1, 2), 1.0, {})
    with pytest.raises(DatabaseError, match="naive datetime"), session_scope(database) as session:
        insert_rows(session, StageTiming.__table__, TIMING_COLUMNS, [(JOB, 0, 0, "predict", 1, 1.0, False)])
        insert_rows(session, ProbeSpan.__table__, SPAN_COLUMNS, [_span("0000000000000001", "good", {}), naive])
    with session_scope(database) as session:
        assert session.scalars(select(ProbeSpan)).all() == [] and session.scalars(select(StageTiming)).all() == []


def test_a_row_breaking_a_constraint_fails_the_transaction_without_looking_like_a_lost_connection(
    database: str,
) -> None:
    duplicate = _span("0000000000000001", "twice", {})
    with pytest.raises(DatabaseError) as caught, session_scope(database) as session:
        insert_rows(session, ProbeSpan.__table__, SPAN_COLUMNS, [duplicate, duplicate])
    assert not is_lost_connection(caught.value)
    with session_scope(database) as session:
        assert session.scalars(select(ProbeSpan)).all() == []


def test_a_column_with_a_python_default_must_be_given(database: str) -> None:
    with pytest.raises(ValueError, match="attributes"), session_scope(database) as session:
        insert_rows(session, ProbeSpan.__table__, SPAN_COLUMNS[:-1], [_span("0000000000000001", "x", {})[:-1]])


@pytest.mark.parametrize("values_rows", [bulk.MAX_VALUES_ROWS, 0], ids=["insert", "copy"])
def test_a_connection_lost_during_bulk_rows_is_a_lost_connection_and_the_next_session_gets_a_new_one(
    fresh_postgres_url: str, postgres_role: str, values_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "MAX_VALUES_ROWS", values_rows)
    upgrade(fresh_postgres_url)
    with pytest.raises(DatabaseError) as caught, session_scope(fresh_postgres_url) as session:
        backend = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with psycopg.connect(host="127.0.0.1", user=postgres_role, dbname="postgres", autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        insert_rows(session, StageTiming.__table__, TIMING_COLUMNS, [(JOB, 0, 0, "predict", 1, 1.0, False)])
    assert is_lost_connection(caught.value)  # so a shard's writes wait for the database and are done again
    with session_scope(fresh_postgres_url) as session:
        assert session.execute(text("SELECT 1")).scalar_one() == 1


def test_null_and_empty_text_stay_apart_and_times_keep_their_instant(database: str) -> None:
    # COPY's text format writes NULL as \N: an empty string, and the text "\N" itself, must not become NULL.
    eastern = datetime(2030, 1, 2, 5, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    rows = [
        (JOB, TRACE, "0000000000000001", None, "", None, None, eastern, 0.0, {}),
        (JOB, TRACE, "0000000000000002", "", "\\N", 0, 0, STARTED, 1.0, {"empty": "", "null": None}),
    ]
    with session_scope(database) as session:
        insert_rows(session, ProbeSpan.__table__, SPAN_COLUMNS, rows)
    with session_scope(database) as session:
        spans = session.scalars(select(ProbeSpan).order_by(ProbeSpan.span_id)).all()
        assert [(s.parent_span_id, s.name, s.shard_index, s.batch_index) for s in spans] == [
            (None, "", None, None),
            ("", "\\N", 0, 0),
        ]
        assert spans[0].started_at == STARTED  # 05:04 at +02:00 is 03:04 UTC: the same instant
        assert spans[0].started_at.utcoffset() == timedelta(0)
        assert spans[1].attributes == {"empty": "", "null": None}


def test_a_nul_character_is_taken_or_refused_as_an_insert_would_be(database: str) -> None:
    row = _span("0000000000000001", "a\x00b", {})
    if database.startswith("sqlite"):  # SQLite keeps it
        with session_scope(database) as session:
            insert_rows(session, ProbeSpan.__table__, SPAN_COLUMNS, [row])
        with session_scope(database) as session:
            assert session.scalars(select(ProbeSpan.name)).all() == ["a\x00b"]
        return
    with pytest.raises(DatabaseError) as caught, session_scope(database) as session:  # PostgreSQL's text cannot
        insert_rows(session, ProbeSpan.__table__, SPAN_COLUMNS, [row])
    assert not is_lost_connection(caught.value)  # bad data is not retried
    with session_scope(database) as session:  # the connection is usable, and nothing was written
        assert session.scalars(select(ProbeSpan)).all() == []


def test_past_the_few_rows_of_one_insert_a_copy_writes_them(database: str) -> None:
    # Either side of the limit, on every backend: the same rows read back.
    count = bulk.MAX_VALUES_ROWS + 2
    rows = [_span(f"{index:016x}", f"span {index}", {"index": index}) for index in range(count)]
    with session_scope(database) as session:
        insert_rows(session, ProbeSpan.__table__, SPAN_COLUMNS, rows[:-1])  # one past the limit
        insert_rows(session, ProbeSpan.__table__, SPAN_COLUMNS, rows[-1:])
        replace_rows(session, StageTiming.__table__, {"job_id": JOB, "shard_index": 0}, TIMING_COLUMNS, [])
    with session_scope(database) as session:
        spans = session.scalars(select(ProbeSpan).order_by(ProbeSpan.span_id)).all()
    assert [(s.name, s.attributes, s.started_at) for s in spans] == [
        (f"span {index}", {"index": index}, STARTED) for index in range(count)
    ]
