"""CSV downloads with text a user chose that starts like a spreadsheet formula: a prediction's file name, and a
dataset given to the CLI as a manifest path. Each CSV quotes it; the JSON keeps it as it was."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
from PIL import Image
from support import MANIFESTS

from carml.datasets.digits import load_digits_split
from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache
from carml.jobs.service import EvaluationRequest, submit_evaluation
from carml.settings import Settings

FORMULA_FILE = "=SUM(1+2)*cmd|' calc'!A0.png"
FORMULA_MANIFEST = "=SUM(1+2)*cmd.yaml"
WORKER_ID = "cpu-test@host"  # the live worker tests/webapp/conftest.py registers


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _digit_png() -> bytes:
    images, _ = load_digits_split("test")
    png = io.BytesIO()
    Image.fromarray(images[0]).save(png, format="PNG")
    return png.getvalue()


def test_a_prediction_file_name_is_quoted_in_the_predictions_csv(client, settings: Settings) -> None:
    form = {
        "kind": "predict",
        "model": "digits-cnn",
        "framework": "onnxruntime",
        "files": [(io.BytesIO(_digit_png()), FORMULA_FILE)],
    }
    response = client.post("/api/v1/jobs", data=form)
    assert response.status_code == 201, response.json
    job_id = response.json["id"]
    assert run_shard(settings, job_id, 0, WORKER_ID, ModelCache()) == "succeeded"

    [row] = _rows(client.get(f"/jobs/{job_id}/predictions.csv").get_data(as_text=True))
    assert row["item"] == "'" + FORMULA_FILE and row["top1_label"] in "0123456789" and 0 < float(row["score"]) <= 1
    assert client.get(f"/api/v1/jobs/{job_id}").json["result"]["predictions"][0]["item"] == FORMULA_FILE


@pytest.fixture()
def formula_dataset_job(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A finished evaluation whose dataset the operator gave as a manifest path named like a formula."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    shutil.copy(MANIFESTS / "datasets" / "digits.yaml", folder / FORMULA_MANIFEST)
    monkeypatch.chdir(folder)
    request = EvaluationRequest(model="digits-cnn", framework="onnxruntime", dataset=FORMULA_MANIFEST, limit=10)
    job_id = submit_evaluation(settings, request, lambda *_: None)
    assert run_shard(settings, job_id, 0, WORKER_ID, ModelCache()) == "succeeded"
    return job_id


def test_a_dataset_path_is_quoted_in_the_report_csv(client, formula_dataset_job: str) -> None:
    response = client.get("/api/v1/reports/evaluation_summary?format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    [row] = _rows(response.get_data(as_text=True))
    assert row["job_id"] == formula_dataset_job and row["dataset"] == "'" + FORMULA_MANIFEST
    assert 0 <= float(row["top1"]) <= 1  # numbers stay numbers
    [as_json] = client.get("/api/v1/reports/evaluation_summary").json["rows"]
    assert as_json["dataset"] == FORMULA_MANIFEST

    leaderboard = _rows(client.get("/api/v1/reports/model_leaderboard?format=csv").get_data(as_text=True))
    assert [r["dataset"] for r in leaderboard] == ["'" + FORMULA_MANIFEST]


def test_a_dataset_path_is_quoted_in_the_cli_report_csv(run_cli, settings: Settings, formula_dataset_job, monkeypatch):
    monkeypatch.setenv("CARML_DATABASE_URL", settings.database)
    code, out, err = run_cli("report", "hardware_comparison", "--format", "csv")
    assert (code, err) == (0, "")
    [row] = _rows(out)
    assert row["dataset"] == "'" + FORMULA_MANIFEST and row["runs"] == "1"
