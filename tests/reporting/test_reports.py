"""The reporting views and `carml report`, on SQLite and PostgreSQL, over real evaluations run in this process."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import create_engine, pool

import carml.db.models  # noqa: F401  (registers every table on Base.metadata)
from carml.db.base import Base
from carml.db.migrate import upgrade
from carml.errors import CarmlError
from carml.jobs import execution
from carml.jobs.model_cache import ModelCache
from carml.jobs.service import EvaluationRequest, submit_evaluation
from carml.jobs.workers import register_worker
from carml.reporting import REPORTS, run_report
from carml.settings import Settings, load_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reporting.md"
BATCH_SIZES = (10, 30)
ITEMS = 60


def _evaluated(tmp_path: Path, database_url: str = "") -> Settings:
    """A migrated database holding two finished digits-cnn evaluations that differ only in batch size."""
    env = {"CARML_HOME": str(tmp_path / "home"), "CARML_CACHE_DIR": str(tmp_path / "cache")}
    if database_url:
        env["CARML_DATABASE_URL"] = database_url
    settings = load_settings(env)
    upgrade(settings.database)
    register_worker(settings, "cpu-test@host", "cpu")
    models = ModelCache()
    for batch_size in BATCH_SIZES:
        request = EvaluationRequest(
            model="digits-cnn", framework="onnxruntime", dataset="digits", limit=ITEMS, batch_size=batch_size
        )
        job_id = submit_evaluation(settings, request, lambda *_: None)
        assert execution.run_shard(settings, job_id, 0, "cpu-test@host", models) == "succeeded"
    return settings


@pytest.fixture(scope="module")
def sqlite_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return _evaluated(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture()
def postgres_settings(tmp_path: Path, fresh_postgres_url: str) -> Settings:
    return _evaluated(tmp_path, fresh_postgres_url)


def _check_views(settings: Settings) -> None:
    summary = run_report(settings, "evaluation_summary")
    assert len(summary) == 2
    assert sorted(row["batch_size"] for row in summary) == list(BATCH_SIZES)
    for row in summary:
        assert row["status"] == "succeeded" and row["items"] == ITEMS and row["errors"] == 0
        assert row["model"] == "digits-cnn" and row["framework"] == "onnxruntime" and row["hardware_tag"] == "cpu"
        assert 0.9 <= row["top1"] <= 1.0 and row["top5"] >= row["top1"]
        assert row["latency_p50_ms"] <= row["latency_p99_ms"] and row["throughput_items_per_s"] > 0
        assert row["created_at"].tzinfo is not None and row["finished_at"] >= row["created_at"]

    comparison = run_report(settings, "hardware_comparison")
    assert [(r["batch_size"], r["runs"]) for r in comparison] == [(b, 1) for b in BATCH_SIZES]
    assert {r["best_top1"] for r in comparison} == {r["top1"] for r in summary}

    stages = run_report(settings, "stage_breakdown")
    assert len(stages) == 2 * 4
    for row in summary:
        mine = [r for r in stages if r["job_id"] == row["job_id"]]
        assert sorted(r["stage"] for r in mine) == ["load", "postprocess", "predict", "preprocess"]
        assert sum(r["share"] for r in mine) == pytest.approx(1.0)
        assert all(r["items"] <= ITEMS and r["batches"] >= 1 for r in mine)

    (leader,) = run_report(settings, "model_leaderboard")
    assert leader["model"] == "digits-cnn" and leader["runs"] == 2 and leader["best_hardware_tag"] == "cpu"
    assert leader["best_top1"] == max(r["top1"] for r in summary)


def test_views_on_sqlite(sqlite_settings: Settings) -> None:
    _check_views(sqlite_settings)


def test_views_and_documented_queries_on_postgresql(postgres_settings: Settings) -> None:
    _check_views(postgres_settings)
    queries = re.findall(r"```sql\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    assert len(queries) >= 3
    engine = create_engine(postgres_settings.database, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            for query in queries:
                # exec_driver_sql: the SQL as a user pastes it into psql, no SQLAlchemy bind-parameter parsing.
                connection.exec_driver_sql(query).fetchall()
    finally:
        engine.dispose()


def test_filters_bind_their_values(sqlite_settings: Settings) -> None:
    assert len(run_report(sqlite_settings, "evaluation_summary", model="digits-cnn", hardware="cpu")) == 2
    assert run_report(sqlite_settings, "evaluation_summary", model="x' OR 1=1 --") == []
    assert run_report(sqlite_settings, "stage_breakdown", hardware="x' OR '1'='1") == []
    assert len(run_report(sqlite_settings, "evaluation_summary", since="2000-01-01")) == 2
    assert run_report(sqlite_settings, "evaluation_summary", since="2999-01-01T00:00:00+00:00") == []
    assert len(run_report(sqlite_settings, "stage_breakdown", limit=3)) == 3


def test_bad_requests_are_carml_errors(sqlite_settings: Settings) -> None:
    with pytest.raises(CarmlError, match="unknown report 'nope': choose one of evaluation_summary, "):
        run_report(sqlite_settings, "nope")
    with pytest.raises(CarmlError, match="not an ISO date"):
        run_report(sqlite_settings, "evaluation_summary", since="last tuesday")
    with pytest.raises(CarmlError, match="cannot be filtered by --since"):
        run_report(sqlite_settings, "model_leaderboard", since="2026-01-01")


@pytest.fixture()
def cli_settings(sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CARML_DATABASE_URL", sqlite_settings.database)
    return sqlite_settings


def test_cli_prints_table_csv_and_json(run_cli, cli_settings: Settings) -> None:
    code, out, err = run_cli("report", "hardware_comparison")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("MODEL") and "BEST_TOP1" in lines[0] and len(lines) == 3

    code, out, err = run_cli("report", "evaluation_summary", "--format", "csv", "--model", "digits-cnn")
    assert (code, err) == (0, "")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == list(REPORTS["evaluation_summary"].columns) and len(rows) == 2
    assert all(0.9 <= float(r["top1"]) <= 1.0 for r in rows)

    code, out, err = run_cli("report", "stage_breakdown", "--format", "json", "--since", "2000-01-01", "--limit", "5")
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert len(rows) == 5 and {"stage", "share", "total_ms"} <= set(rows[0])


def test_cli_hostile_model_value_matches_nothing(run_cli, cli_settings: Settings) -> None:
    code, out, err = run_cli("report", "evaluation_summary", "--model", "x' OR 1=1 --", "--format", "json")
    assert (code, err) == (0, "") and json.loads(out) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("report", "evaluation_summary", "--since", "yesterday-ish"), "is not an ISO date or datetime"),
        (("report", "no_such_report"), "unknown report 'no_such_report': choose one of"),
    ],
)
def test_cli_errors_are_one_line(run_cli, cli_settings: Settings, args: tuple[str, ...], message: str) -> None:
    code, out, err = run_cli(*args)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_cli_on_an_unmigrated_database_says_what_to_do(run_cli, tmp_path: Path, monkeypatch) -> None:
    # The command reads the users table (whose view to show) before the report: neither may be a raw SQL error.
    monkeypatch.setenv("CARML_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    code, out, err = run_cli("report", "no_such_report")
    assert (code, out) == (1, "") and "unknown report 'no_such_report'" in err
    code, out, err = run_cli("report", "hardware_comparison")
    assert (code, out) == (1, "") and "run `carml db upgrade`" in err and err.count("\n") == 1


def test_schema_doc_names_every_table_column_and_view() -> None:
    text = (DOCS.parent / "schema.md").read_text()
    for table in Base.metadata.tables.values():
        assert f"### `{table.name}`" in text
        for column in table.columns:
            assert f"| `{column.name}` |" in text, f"{table.name}.{column.name}"
    for report in REPORTS.values():
        assert f"### `{report.view}`" in text and all(f"`{c}`" in text for c in report.columns)
