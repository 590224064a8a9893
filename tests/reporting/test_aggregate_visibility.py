"""Whose runs the shared figures count, on PostgreSQL with real evaluations: runs on catalog and shared datasets
count for everyone; runs on a private upload only for its owner and admins, in the aggregate reports, the
recommendations and the catalog's measured results, through the API, the pages and the CLI (as CARML_USER)."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import text
from support import sign_in

from carml.accounts import Caller
from carml.datasets.digits import load_digits_split
from carml.db.migrate import upgrade
from carml.db.models import Role
from carml.db.session import engine_for
from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache
from carml.jobs.service import EvaluationRequest, submit_evaluation
from carml.jobs.upload_removal import remove_upload
from carml.jobs.uploads import store_upload
from carml.jobs.workers import register_worker
from carml.recommend import Constraints, recommend
from carml.reporting import REPORTS, run_report
from carml.settings import Settings, load_settings
from webapp import create_app
from webapp.ui import queries

WORKER = "cpu-test@host"
ALICE, BOB, PAT, CAROL = (
    Caller("alice", Role.USER),
    Caller("bob", Role.USER),
    Caller("pat", Role.PUBLISHER),
    Caller("carol", Role.ADMIN),
)
BENCHMARK = {"digits", "team-digits"}  # a catalog dataset and a shared upload
ALICES = {"alice-private", "alice-gone"}  # her private upload, and one she removed after evaluating on it


@dataclass(frozen=True)
class Measured:
    settings: Settings
    jobs: dict[str, str]  # what each job measured -> its id


def _digits_zip(path: Path, count: int = 24) -> Path:
    images, labels = load_digits_split("test")
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(count):
            png = io.BytesIO()
            Image.fromarray(images[i]).save(png, format="PNG")
            archive.writestr(zipfile.ZipInfo(f"digits/{labels[i]}/{i:03d}.png", (2024, 1, 1, 0, 0, 0)), png.getvalue())
    return path


def _evaluate(settings: Settings, owner: str, dataset: str) -> str:
    request = EvaluationRequest(
        model="digits-cnn", framework="onnxruntime", dataset=dataset, limit=16, batch_size=8, owner=owner
    )
    job_id = submit_evaluation(settings, request, lambda *_: None)
    assert run_shard(settings, job_id, 0, WORKER, ModelCache()) == "succeeded"
    return job_id


@pytest.fixture()
def measured(tmp_path: Path, fresh_postgres_url: str) -> Measured:
    """bob on the catalog's digits; pat's shared upload; alice's private upload (evaluated by her and by the admin
    carol); and alice's upload that she removed after evaluating on it."""
    settings = load_settings(
        {
            "CARML_HOME": str(tmp_path / "home"),
            "CARML_CACHE_DIR": str(tmp_path / "cache"),
            "CARML_OBJECT_STORE": str(tmp_path / "objects"),
            "CARML_DATABASE_URL": fresh_postgres_url,
        }
    )
    upgrade(settings.database)
    register_worker(settings, WORKER, "cpu")
    archive = _digits_zip(tmp_path / "digits.zip")
    store_upload(settings, "team-digits", "digits.zip", archive, PAT.name, shared=True)
    store_upload(settings, "alice-private", "digits.zip", archive, ALICE.name)
    store_upload(settings, "alice-gone", "digits.zip", archive, ALICE.name)
    jobs = {
        "bob on digits": _evaluate(settings, BOB.name, "digits"),
        "pat on team-digits": _evaluate(settings, PAT.name, "team-digits"),
        "alice on alice-private": _evaluate(settings, ALICE.name, "alice-private"),
        "carol on alice-private": _evaluate(settings, CAROL.name, "alice-private"),
        "alice on alice-gone": _evaluate(settings, ALICE.name, "alice-gone"),
    }
    remove_upload(settings, "alice-gone", ALICE)
    return Measured(settings, jobs)


def _datasets(rows: list[dict[str, Any]]) -> set[str]:
    return {row["dataset"] for row in rows}


@pytest.mark.parametrize(
    ("viewer", "expected"),
    [
        (BOB, BENCHMARK),
        (PAT, BENCHMARK),
        (ALICE, BENCHMARK | ALICES),
        (CAROL, BENCHMARK | ALICES),
        (None, BENCHMARK | ALICES),
    ],
)
def test_aggregates_count_benchmark_runs_for_everyone_and_private_uploads_for_their_owner(
    measured: Measured, viewer: Caller | None, expected: set[str]
) -> None:
    settings = measured.settings
    comparison = run_report(settings, "hardware_comparison", viewer=viewer)
    leaderboard = run_report(settings, "model_leaderboard", viewer=viewer)
    assert _datasets(comparison) == _datasets(leaderboard) == expected
    runs = {row["dataset"]: row["runs"] for row in comparison}
    if "alice-private" in expected:  # the admin's run on alice's upload counts for alice: it is her data
        assert runs["alice-private"] == 2 and {r["runs"] for r in leaderboard if r["dataset"] == "alice-private"} == {2}
    candidates = recommend(settings, Constraints(), viewer).ranked
    assert {r.candidate.dataset for r in candidates} == expected
    best = queries.best_measured(settings, viewer) if viewer else None
    if best is not None:  # the catalog page's figure: runs over every dataset the viewer may count
        assert best["digits-cnn"]["cpu"]["runs"] == 2 + 3 * ("alice-private" in expected)
        assert _datasets(queries.model_results(settings, "digits-cnn", viewer)) == expected


def test_per_job_reports_stay_each_users_own(measured: Measured) -> None:
    def jobs(viewer: Caller) -> set[str]:
        return {row["job_id"] for row in run_report(measured.settings, "evaluation_summary", viewer=viewer)}

    ids = measured.jobs
    assert jobs(BOB) == {ids["bob on digits"]}
    assert jobs(ALICE) == {ids["alice on alice-private"], ids["alice on alice-gone"]}
    assert jobs(CAROL) == set(ids.values())


def test_the_filtered_aggregates_are_the_views_when_nothing_is_left_out(measured: Measured) -> None:
    # The aggregates are the views' SQL with a condition added: for an admin they must give the views' rows.
    for name in ("hardware_comparison", "model_leaderboard"):
        chosen = REPORTS[name]
        with engine_for(measured.settings.database).connect() as connection:
            order = ", ".join(chosen.order_by)
            view = [dict(row._mapping) for row in connection.execute(text(f"SELECT * FROM {name} ORDER BY {order}"))]
        assert run_report(measured.settings, name, viewer=CAROL) == [
            {column: row[column] for column in chosen.columns} for row in view
        ]


def test_the_api_and_the_pages_hide_another_users_private_upload(measured: Measured) -> None:
    app = create_app(measured.settings, lambda *_: None)
    bob, alice = (sign_in(app.test_client(), measured.settings, c.name, c.role.value) for c in (BOB, ALICE))
    for path in (
        "/api/v1/reports/hardware_comparison",
        "/api/v1/reports/hardware_comparison?format=csv",
        "/api/v1/reports/model_leaderboard?format=csv",
        "/api/v1/recommendations",
        "/reports?show=model_leaderboard",
        "/recommend",
        "/models/digits-cnn",
    ):
        seen_by_bob, seen_by_alice = bob.get(path), alice.get(path)
        assert seen_by_bob.status_code == seen_by_alice.status_code == 200, path
        assert "alice-private" not in seen_by_bob.get_data(as_text=True), path
        assert "team-digits" in seen_by_bob.get_data(as_text=True), path
        assert "alice-private" in seen_by_alice.get_data(as_text=True), path
    rows = bob.get("/api/v1/reports/hardware_comparison").json["rows"]
    assert _datasets(rows) == BENCHMARK


def test_the_cli_shows_carml_users_view(run_cli, measured: Measured, monkeypatch: pytest.MonkeyPatch) -> None:
    from carml.accounts import create_user

    monkeypatch.setenv("CARML_DATABASE_URL", measured.settings.database)
    for caller in (ALICE, BOB):
        create_user(measured.settings, caller.name, caller.role)
    for user, expected in (("bob", BENCHMARK), ("alice", BENCHMARK | ALICES), ("operator", BENCHMARK | ALICES)):
        monkeypatch.setenv("CARML_USER", user)  # "operator" is no user: the CLI acts as the operator, every row
        code, out, err = run_cli("report", "hardware_comparison", "--format", "json")
        assert (code, err) == (0, "") and _datasets(json.loads(out)) == expected, user
        code, out, err = run_cli("recommend", "--format", "json")
        assert code == 0 and {c["dataset"] for c in json.loads(out)["candidates"]} == expected, user
