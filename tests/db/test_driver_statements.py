"""Statements run as the driver's SQL (`DriverStatement`): what they write and return is what the ORM's own statements
write and read, on each backend, and their failures are SQLAlchemy's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import bindparam, inspect, or_, select, update

from carml.db.driver_statements import DriverStatement, driver_insert, loaded
from carml.db.migrate import upgrade
from carml.db.models import Job, JobShard, JobStatus, Result
from carml.db.session import DatabaseError, session_scope

JOB = "00000000-0000-4000-8000-000000000001"
WHEN = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
JOB_COLUMNS = ("id", "kind", "owner", "model_name", "framework", "hardware_tag", "batch_size", "parameters")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgresql":
        url = request.getfixturevalue("fresh_postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'driver.db'}"
    upgrade(url)
    yield url


def _job_values(**changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "id": JOB,
        "kind": "predict",
        "owner": "ada",
        "model_name": "m",
        "framework": "f",
        "hardware_tag": "cpu",
        "batch_size": 1,
        "parameters": {"inputs": [{"name": "a.png", "data": "iVBOR"}], "top_k": None, "ratio": 0.5},
    }
    return values | changes


def _columns(row: object) -> dict[str, object]:
    return {attribute.key: getattr(row, attribute.key) for attribute in inspect(type(row)).column_attrs}


def test_an_insert_takes_the_column_defaults_an_orm_insert_would(database: str) -> None:
    insert_job = driver_insert(Job.__table__, JOB_COLUMNS)
    before = datetime.now(UTC)
    with session_scope(database) as session:
        _, count = insert_job.execute(session, _job_values())
    assert count == 1
    with session_scope(database) as session:
        job = session.get(Job, JOB)
        assert job is not None
        assert (job.status, job.shard_count, job.progress_done, job.cancel_requested) == ("queued", 1, 0, False)
        assert job.scenario == "accuracy" and job.parameters == _job_values()["parameters"]
        assert before <= job.created_at <= datetime.now(UTC)
        assert job.started_at is None and job.price_per_hour is None


def test_returned_rows_hold_what_an_orm_read_of_the_row_gives(database: str) -> None:
    with session_scope(database) as session:
        driver_insert(Job.__table__, (*JOB_COLUMNS, "price_per_hour")).execute(session, _job_values(price_per_hour=2.5))
    start = DriverStatement(
        update(Job.__table__)
        .where(
            Job.__table__.c.id == bindparam("p_job"),
            or_(Job.__table__.c.status == JobStatus.QUEUED, Job.__table__.c.status == JobStatus.RUNNING),
        )
        .values(status=JobStatus.RUNNING, started_at=bindparam("p_at", type_=Job.started_at.type))
        .returning(*Job.__table__.c)
    )
    # A time given in another zone is stored as its instant and read back in UTC, as the ORM's statements do.
    eastern = WHEN.astimezone(timezone(timedelta(hours=3)))
    with session_scope(database) as session:
        rows, count = start.execute(session, {"p_job": JOB, "p_at": eastern})
    assert count == 1 and len(rows) == 1
    job = loaded(Job, rows[0])
    with session_scope(database) as session:
        read = session.get(Job, JOB)
        assert read is not None
        assert _columns(job) == _columns(read)
    assert job.started_at == WHEN and job.status == "running" and job.price_per_hour == 2.5
    assert isinstance(job.parameters, dict) and job.parameters["ratio"] == 0.5
    # As a read leaves it: nothing changed, nothing for a session to flush.
    state = inspect(job)
    assert all(not state.attrs[key].history.has_changes() for key in _columns(job))


def test_an_update_matching_nothing_returns_nothing_and_counts_none(database: str) -> None:
    finish = DriverStatement(
        update(JobShard.__table__)
        .where(JobShard.__table__.c.job_id == bindparam("p_job"), JobShard.__table__.c.attempts == bindparam("p_n"))
        .values(status=JobStatus.SUCCEEDED)
    )
    with session_scope(database) as session:
        driver_insert(Job.__table__, JOB_COLUMNS).execute(session, _job_values())
        driver_insert(JobShard.__table__, ("job_id", "index", "item_start", "item_stop")).execute(
            session, {"job_id": JOB, "index": 0, "item_start": 0, "item_stop": 1}
        )
    with session_scope(database) as session:
        assert finish.execute(session, {"p_job": JOB, "p_n": 7}) == ([], 0)
        assert finish.execute(session, {"p_job": JOB, "p_n": 0}) == ([], 1)
    with session_scope(database) as session:
        assert session.scalars(select(JobShard.status)).all() == ["succeeded"]


def test_an_insert_returning_its_row_gives_the_stored_json_and_defaults(database: str) -> None:
    with session_scope(database) as session:
        driver_insert(Job.__table__, JOB_COLUMNS).execute(session, _job_values())
    insert_result = driver_insert(Result.__table__, ("job_id", "items", "errors", "metrics"), returning=True)
    metrics = {"predictions": [{"item": "a.png", "top_k": [{"label": "7", "probability": 0.25}]}]}
    with session_scope(database) as session:
        rows, _ = insert_result.execute(session, {"job_id": JOB, "items": 1, "errors": 0, "metrics": metrics})
    stored = loaded(Result, rows[0])
    with session_scope(database) as session:
        read = session.scalars(select(Result)).one()
        assert _columns(stored) == _columns(read)
    assert stored.metrics == metrics and stored.latency == {} and stored.error_items == [] and stored.top1 is None


def test_a_statement_refused_by_the_database_fails_its_transaction_as_any_statement_would(database: str) -> None:
    insert_shard = driver_insert(JobShard.__table__, ("job_id", "index", "item_start", "item_stop"))
    with pytest.raises(DatabaseError, match="IntegrityError"), session_scope(database) as session:
        driver_insert(Job.__table__, JOB_COLUMNS).execute(session, _job_values())
        insert_shard.execute(session, {"job_id": "no such job", "index": 0, "item_start": 0, "item_stop": 1})
    with session_scope(database) as session:
        assert session.scalars(select(Job)).all() == []  # the job of the failed transaction is not kept


def test_a_missing_or_unknown_parameter_and_an_expanding_in_are_refused_before_anything_runs(database: str) -> None:
    with session_scope(database) as session:
        with pytest.raises(ValueError, match="no value for kind"):
            driver_insert(Job.__table__, JOB_COLUMNS).execute(session, {"id": JOB})
        with pytest.raises(ValueError, match="dataset_name not in"):  # it would be dropped, not written
            driver_insert(Job.__table__, JOB_COLUMNS).execute(session, _job_values(dataset_name="digits"))
        expanding = DriverStatement(select(Job.id).where(Job.status.in_(["queued", "running"])))
        with pytest.raises(ValueError, match="expanding IN"):
            expanding.execute(session, {})
    with session_scope(database) as session:
        assert session.scalars(select(Job)).all() == []
