"""carml.report_aggregates repeats the SQL of the hardware_comparison and model_leaderboard views so that it can
leave runs out before grouping. Over many varied runs (every status, both scenarios, ties on top-1 and on
throughput, missing measurements, a null dataset), on SQLite and PostgreSQL: with nothing left out the queries
give the views' rows, and for a user they give what grouping the runs that user may count gives."""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from carml.accounts import Caller
from carml.db.migrate import upgrade
from carml.db.models import Job, JobKind, JobStatus, RegisteredDataset, RegisteredModel, Result, Role, Scenario
from carml.db.session import engine_for, session_scope
from carml.reporting import REPORTS, run_report
from carml.settings import Settings, load_settings

OWNERS = ("alice", "bob", "pat", "carol")
# name -> (owner, shared): a catalog dataset, two private uploads and a shared one.
DATASETS = {"digits": (None, False), "alice-own": ("alice", False), "bob-own": ("bob", False), "team": ("pat", True)}
MODELS = (("m-a", "onnxruntime", 0.9), ("m-a", "pytorch", None), ("m-b", "onnxruntime", 0.5))
STATUSES = (JobStatus.SUCCEEDED,) * 6 + (JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT)
GROUP_KEYS = {
    "hardware_comparison": ("model", "framework", "dataset", "hardware_tag", "batch_size", "scenario"),
    "model_leaderboard": ("model", "framework", "dataset"),
}


@pytest.fixture(params=["sqlite", "postgresql"])
def runs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Settings, list[dict[str, Any]]]]:
    """A migrated database holding 240 finished evaluations drawn at random (seeded), and each run as written."""
    env = {"CARML_HOME": str(tmp_path / "home")}
    if request.param == "postgresql":
        env["CARML_DATABASE_URL"] = request.getfixturevalue("fresh_postgres_url")
    settings = load_settings(env)
    upgrade(settings.database)
    yield settings, _write_runs(settings, random.Random(20261127), 240)


def _write_runs(settings: Settings, rng: random.Random, count: int) -> list[dict[str, Any]]:
    written = []
    with session_scope(settings.database) as session:
        models = []
        for name, framework, claimed in MODELS:
            model = RegisteredModel(
                name=name,
                version="1",
                framework=framework,
                task="image-classification",
                modality="image",
                manifest_path=f"{name}.yaml",
                manifest_sha256=f"{name}-{framework}",
                claimed_top1=claimed,
            )
            models.append(model)
        datasets = {
            name: RegisteredDataset(name=name, format="image-folder", modality="image", digest=name, owner=o, shared=s)
            for name, (o, s) in DATASETS.items()
        }
        session.add_all([*models, *datasets.values()])
        session.flush()
        for i in range(count):
            model = rng.choice(models)
            # A removed upload keeps its name but loses its row; a null name exercises the view's IS NULL match.
            dataset_name = rng.choice([*DATASETS, "removed-upload", None])
            dataset = datasets.get(dataset_name or "")
            top1 = rng.choice([None, 0.5, 0.75, 0.75, 0.9, round(rng.random(), 3)])
            run = {
                "job_id": f"{i:08d}-0000-4000-8000-000000000000",
                "owner": rng.choice(OWNERS),
                "dataset_owner": dataset.owner if dataset else None,
                "dataset_shared": dataset.shared if dataset else False,
                "has_dataset_row": dataset is not None,
                "model": model.name,
                "framework": model.framework,
                "claimed_top1": model.claimed_top1,
                "dataset": dataset_name,
                "hardware_tag": rng.choice(["cpu", "gpu-a", "gpu-b"]),
                "batch_size": rng.choice([8, 32]),
                "scenario": rng.choice([Scenario.ACCURACY.value] * 3 + [Scenario.OFFLINE.value]),
                "status": rng.choice(STATUSES).value,
                "top1": top1,
                # Measured whenever top-1 is (NULLs sort apart on the two backends); ties on purpose.
                "throughput_items_per_s": rng.choice([100.0, 100.0, round(rng.uniform(50, 500), 3)]),
                "latency_p50_ms": rng.choice([None, round(rng.uniform(1, 20), 3)]),
                "latency_p99_ms": rng.choice([None, round(rng.uniform(20, 90), 3)]),
                "joules_per_item": rng.choice([None, round(rng.uniform(0.1, 2), 4)]),
                "cost_per_1000_items": rng.choice([None, round(rng.uniform(0.001, 0.1), 5)]),
            }
            session.add(
                Job(
                    id=run["job_id"],
                    kind=JobKind.EVALUATE,
                    status=run["status"],
                    owner=run["owner"],
                    model_name=model.name,
                    framework=model.framework,
                    model_id=model.id,
                    dataset_name=dataset_name,
                    dataset_id=dataset.id if dataset else None,
                    hardware_tag=run["hardware_tag"],
                    batch_size=run["batch_size"],
                    scenario=run["scenario"],
                )
            )
            session.flush()
            session.add(
                Result(
                    job_id=run["job_id"],
                    items=10,
                    errors=0,
                    **{k: run[k] for k in ("top1", "throughput_items_per_s", "latency_p50_ms", "latency_p99_ms")},
                    joules_per_item=run["joules_per_item"],
                    cost_per_1000_items=run["cost_per_1000_items"],
                )
            )
            written.append(run)
    return written


def _counts_for(run: dict[str, Any], viewer: Caller) -> bool:
    """The policy of carml.accounts.result_visibility, written out: benchmark data for all, uploads for owners."""
    if run["has_dataset_row"]:
        return run["dataset_owner"] is None or run["dataset_shared"] or run["dataset_owner"] == viewer.name
    return run["owner"] == viewer.name


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known else None


def _extreme(pick: Any, values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return pick(known) if known else None


def _grouped(name: str, runs: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The report's rows computed in Python from the runs, by group."""
    keys = GROUP_KEYS[name]
    succeeded = [r for r in runs if r["status"] == JobStatus.SUCCEEDED.value]
    if name == "model_leaderboard":
        succeeded = [r for r in succeeded if r["scenario"] == Scenario.ACCURACY.value]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for run in succeeded:
        groups.setdefault(tuple(run[k] for k in keys), []).append(run)
    rows = {}
    for key, members in groups.items():
        row = {**dict(zip(keys, key, strict=True)), "runs": len(members)}
        row["best_top1"] = _extreme(max, [r["top1"] for r in members])
        if name == "hardware_comparison":
            row["avg_p50_ms"] = _mean([r["latency_p50_ms"] for r in members])
            row["min_p50_ms"] = _extreme(min, [r["latency_p50_ms"] for r in members])
            row["avg_p99_ms"] = _mean([r["latency_p99_ms"] for r in members])
            row["max_throughput_items_per_s"] = _extreme(max, [r["throughput_items_per_s"] for r in members])
            row["avg_joules_per_item"] = _mean([r["joules_per_item"] for r in members])
            row["avg_cost_per_1000_items"] = _mean([r["cost_per_1000_items"] for r in members])
        else:
            row["claimed_top1"] = _extreme(max, [r["claimed_top1"] for r in members])
            ranked = sorted(
                (r for r in members if r["top1"] is not None),
                key=lambda r: (-r["top1"], -r["throughput_items_per_s"], r["job_id"]),
            )
            row["best_hardware_tag"] = ranked[0]["hardware_tag"] if ranked else None
        rows[key] = row
    return rows


def _keyed(name: str, rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    keyed = {tuple(row[k] for k in GROUP_KEYS[name]): row for row in rows}
    assert len(keyed) == len(rows), "one row per group"
    return keyed


def _assert_same_rows(name: str, got: list[dict[str, Any]], expected: dict[tuple[Any, ...], dict[str, Any]]) -> None:
    # By group, floats to rounding: two plans may sum an average's terms in another order.
    keyed = _keyed(name, got)
    assert keyed.keys() == expected.keys()
    for key, row in keyed.items():
        assert list(row) == list(REPORTS[name].columns)
        for column, value in expected[key].items():
            if isinstance(value, float):
                assert row[column] == pytest.approx(value, rel=1e-9), (key, column)
            else:
                assert row[column] == value, (key, column)


@pytest.mark.parametrize("name", ["hardware_comparison", "model_leaderboard"])
def test_with_nothing_left_out_the_queries_give_the_views_rows(runs, name: str) -> None:
    settings, written = runs
    with engine_for(settings.database).connect() as connection:
        view = [dict(row._mapping) for row in connection.execute(text(f"SELECT * FROM {name}"))]
    assert len(view) >= 15  # enough groups to mean something
    expected = _grouped(name, written)
    _assert_same_rows(name, [{c: row[c] for c in REPORTS[name].columns} for row in view], expected)
    for viewer in (None, Caller("carol", Role.ADMIN)):
        _assert_same_rows(name, run_report(settings, name, viewer=viewer), expected)


@pytest.mark.parametrize("name", ["hardware_comparison", "model_leaderboard"])
@pytest.mark.parametrize("viewer", [Caller("alice", Role.USER), Caller("bob", Role.USER)])
def test_for_a_user_the_queries_group_only_the_runs_that_user_may_count(runs, name: str, viewer: Caller) -> None:
    settings, written = runs
    counted = [run for run in written if _counts_for(run, viewer)]
    assert 0 < len(counted) < len(written)
    got = run_report(settings, name, viewer=viewer)
    _assert_same_rows(name, got, _grouped(name, counted))
    # Filters apply to the groups the user may count.
    of_m_a = run_report(settings, name, viewer=viewer, model="m-a")
    _assert_same_rows(name, of_m_a, _grouped(name, [r for r in counted if r["model"] == "m-a"]))
