"""Spans stored a set per shard and read a row each through the `spans` view, on SQLite and PostgreSQL: what the view
shows, a redelivered shard's set replaced, and the migration carrying the old table's rows both ways."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, pool, select, text

from carml.db import migrate
from carml.db.models import Job, SpanSet, TraceSpan
from carml.db.session import session_scope
from carml.settings import load_settings
from carml.tracing.records import STORED_FIELDS, SpanRecord, epoch_ns
from carml.tracing.store import read_spans, save_spans

JOB = "00000000-0000-4000-8000-000000000001"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
STARTED = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
SHARED = {"job_id": JOB, "model": "digits-cnn", "batch_size": 32, "worker": "cpu-1@host"}
#: The revision before span sets: its `spans` table holds a row per span.
SPAN_ROWS_REVISION = "e3a9c4b15f60"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("fresh_postgres_url")
    return f"sqlite:///{tmp_path / 'spans.db'}"


def _add_job(url: str) -> None:
    with session_scope(url) as session:
        session.add(
            Job(id=JOB, kind="evaluate", owner="u", model_name="m", framework="f", hardware_tag="cpu", batch_size=1)
        )


def _span(span_id: str, name: str, parent: str | None, start_ns: int, ms: float, **fields) -> SpanRecord:
    return SpanRecord(name, TRACE, span_id, parent, start_ns, start_ns + int(ms * 1e6), **fields)


def _shard_spans(shard_index: int, attempt: int) -> list[SpanRecord]:
    shared = {**SHARED, "attempt": attempt}
    start = epoch_ns(STARTED) + 123  # nanoseconds below a microsecond are not kept
    return [
        _span("00000000000000a1", "shard", "00f067aa0ba902b7", start, 40.5, shard_index=shard_index, shared=shared),
        _span(
            "00000000000000a2",
            "predict",
            "00000000000000a1",
            start + 1_000,
            2.25,
            attributes={"items": 32, "item": None, "note": 'a\tb "µs"', "shape": [1, 28], "nested": {"k": None}},
            shard_index=shard_index,
            batch_index=3,
            shared=shared,
        ),
    ]


def test_a_stored_span_holds_its_fields_in_the_documented_order() -> None:
    (shard, predict) = _shard_spans(2, attempt=1)
    stored = dict(zip(STORED_FIELDS, predict.stored(), strict=True))
    assert stored == {
        "span_id": "00000000000000a2",
        "parent_span_id": "00000000000000a1",
        "name": "predict",
        "batch_index": 3,
        "start_us": (epoch_ns(STARTED) + 1_123) // 1000,
        "duration_ms": 2.25,
        "attributes": {"items": 32, "note": 'a\tb "µs"', "shape": [1, 28], "nested": {"k": None}},  # not "item": None
    }
    assert shard.stored()[1:4] == ("00f067aa0ba902b7", "shard", None)


def test_the_view_shows_each_span_as_recorded_with_its_sets_attributes(database: str) -> None:
    migrate.upgrade(database)
    _add_job(database)
    submit = _span("00f067aa0ba902b7", "submit", None, epoch_ns(STARTED) - 5_000_000, 1.0, attributes={"job_id": JOB})
    with session_scope(database) as session:
        save_spans(session, JOB, [submit], otlp_endpoint="", service="carml")
        save_spans(session, JOB, _shard_spans(0, attempt=1), otlp_endpoint="", service="carml-worker", replace=True)
    with session_scope(database) as session:
        spans = session.scalars(select(TraceSpan).order_by(TraceSpan.started_at)).all()
        rows = [(s.name, s.span_id, s.parent_span_id, s.shard_index, s.batch_index, s.trace_id) for s in spans]
        assert rows == [
            ("submit", "00f067aa0ba902b7", None, None, None, TRACE),
            ("shard", "00000000000000a1", "00f067aa0ba902b7", 0, None, TRACE),
            ("predict", "00000000000000a2", "00000000000000a1", 0, 3, TRACE),
        ]
        assert [s.started_at for s in spans[1:]] == [STARTED, STARTED.replace(microsecond=678902)]
        assert [s.duration_ms for s in spans] == [1.0, 40.5, 2.25]
        assert spans[0].attributes == {"job_id": JOB}
        assert spans[1].attributes == {**SHARED, "attempt": 1}
        # The set's attributes over the span's own; a None attribute is left out, a None inside a value is kept.
        own = {"items": 32, "note": 'a\tb "µs"', "shape": [1, 28], "nested": {"k": None}}
        assert spans[2].attributes == {**SHARED, "attempt": 1, **own}
        assert session.scalar(select(SpanSet.attributes).where(SpanSet.shard_index == 0)) == {**SHARED, "attempt": 1}


def test_a_redelivered_shard_replaces_its_own_set_and_no_other(database: str) -> None:
    migrate.upgrade(database)
    _add_job(database)
    with session_scope(database) as session:
        save_spans(session, JOB, _shard_spans(1, attempt=1), otlp_endpoint="", service="w", replace=True)
    for attempt in (1, 2):  # shard 0 finished twice: its transaction done again, or redelivered
        with session_scope(database) as session:
            save_spans(session, JOB, _shard_spans(0, attempt=attempt), otlp_endpoint="", service="w", replace=True)
    with session_scope(database) as session:
        sets = session.execute(select(SpanSet.shard_index, SpanSet.attributes["attempt"].as_integer())).all()
    assert sorted(sets) == [(0, 2), (1, 1)]
    total, page = read_spans(load_settings({"CARML_DATABASE_URL": database}), JOB, limit=3, offset=1)
    assert total == 4 and [span["name"] for span in page] == ["shard", "predict", "predict"]


OLD_ROWS = [
    # span_id, parent_span_id, name, shard_index, batch_index, started_at (UTC text), duration_ms, attributes
    ("00f067aa0ba902b7", None, "submit", None, None, "2030-01-02 03:04:05.000001", 1.5, '{"job_id": "j"}'),
    ("00000000000000a1", "00f067aa0ba902b7", "shard", 0, None, "2030-01-02 03:04:05.678901", 40.0, '{"w": "x"}'),
    ("00000000000000a2", "00000000000000a1", "predict", 0, 3, "2030-01-02 03:04:06.5", 2.25, '{"n": {"k": null}}'),
]


def test_the_migration_carries_span_rows_into_sets_and_back(database: str) -> None:
    migrate.upgrade(database, SPAN_ROWS_REVISION)
    _add_job(database)
    columns = "job_id, trace_id, span_id, parent_span_id, name, shard_index, batch_index, started_at, duration_ms"
    engine = create_engine(database, poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            for row in OLD_ROWS:
                started = row[5] + ("+00" if database.startswith("postgresql") else "")
                connection.execute(
                    text(
                        f"INSERT INTO spans ({columns}, attributes) VALUES (:j, :t, :s, :p, :n, :sh, :b, :at, :ms, :a)"
                    ),
                    dict(
                        zip(("s", "p", "n", "sh", "b"), row[:5], strict=True),
                        j=JOB,
                        t=TRACE,
                        at=started,
                        ms=row[6],
                        a=row[7],
                    ),
                )
        migrate.upgrade(database)
        with session_scope(database) as session:
            assert session.scalar(select(SpanSet.id).where(SpanSet.shard_index.is_(None))) is not None
            assert len(session.scalars(select(SpanSet)).all()) == 2  # the submitter's, shard 0's
        expected = [
            ("submit", None, None, datetime(2030, 1, 2, 3, 4, 5, 1, tzinfo=UTC), 1.5, {"job_id": "j"}),
            ("shard", 0, None, datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), 40.0, {"w": "x"}),
            ("predict", 0, 3, datetime(2030, 1, 2, 3, 4, 6, 500000, tzinfo=UTC), 2.25, {"n": {"k": None}}),
        ]
        with session_scope(database) as session:
            spans = session.scalars(select(TraceSpan).order_by(TraceSpan.started_at)).all()
            viewed = [(s.name, s.shard_index, s.batch_index, s.started_at, s.duration_ms, s.attributes) for s in spans]
            assert viewed == expected
            assert [s.parent_span_id for s in spans] == [None, "00f067aa0ba902b7", "00000000000000a1"]

        migrate.downgrade(database, SPAN_ROWS_REVISION)
        with engine.connect() as connection:
            names = connection.execute(text("SELECT name, span_id, shard_index FROM spans ORDER BY started_at")).all()
        assert [tuple(row) for row in names] == [
            ("submit", OLD_ROWS[0][0], None),
            *[(r[2], r[0], 0) for r in OLD_ROWS[1:]],
        ]
    finally:
        engine.dispose()
