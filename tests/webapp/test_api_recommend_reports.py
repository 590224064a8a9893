"""GET /api/v1/recommendations and /api/v1/reports[/<name>] over real finished evaluations: JSON, CSV, 400s."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import pytest
from measured_runs import PRICED_TAG, UNPRICED_TAG, MeasuredRuns, measured_settings, run_evaluations

from carml.recommend import Constraints, recommend
from carml.reporting import REPORTS
from carml.settings import Settings

RUNS = 5  # measured_runs: four runs and an INVALID one, all finished evaluations


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> MeasuredRuns:
    return run_evaluations(measured_settings(tmp_path_factory.mktemp("api-recommend")))


@pytest.fixture()
def settings(measured: MeasuredRuns) -> Settings:
    """Overrides the web app's empty database with the measured one (the tests here only read it)."""
    return measured.settings


def _schema_check(client, response, schema: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    components = client.get("/api/openapi.json").json["components"]
    root = {"$ref": f"#/components/schemas/{schema}", "components": components}
    jsonschema.Draft202012Validator(root).validate(response.json)


def test_recommendations_are_the_ranking_as_json(client, settings) -> None:
    response = client.get("/api/v1/recommendations?task=image-classification&min_top1=95%25&max_cost=1")
    assert response.status_code == 200, response.json
    expected = recommend(settings, Constraints(task="image-classification", min_top1=0.95, max_cost=1.0))
    assert response.json == json.loads(json.dumps(expected.as_dict()))
    assert response.json["constraints"]["min_top1"] == 0.95
    assert [c["hardware_tag"] for c in response.json["candidates"]] == [PRICED_TAG, PRICED_TAG]
    assert response.json["objectives"] == ["top1", "p99_ms", "cost_per_1000_items"]
    assert response.json["excluded"] == {
        "total": 1,
        "reasons": [
            {
                "reason": "cost_per_1000_items_unknown",
                "description": "no cost (CARML_HARDWARE_PRICES had no price for the hardware tag)",
                "candidates": 1,
            }
        ],
    }
    _schema_check(client, response, "Recommendation")


def test_nothing_meeting_the_constraints_is_an_empty_ranking_not_an_error(client) -> None:
    response = client.get("/api/v1/recommendations?max_joules=0")
    assert response.status_code == 200
    assert response.json["candidates"] == [] and response.json["considered"] == 3
    assert {r["reason"]: r["candidates"] for r in response.json["excluded"]["reasons"]} == {
        "joules_per_item_above_max": 1,
        "joules_per_item_unknown": 2,
    }


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("min_top1=95", "min_top1", "min_top1 '95' is above 1"),
        ("min_top1=0.9&max_p99_ms=fast", "max_p99_ms", "max_p99_ms 'fast' is not a number"),
        ("max_cost=-2", "max_cost", "max_cost '-2' is out of range: it must be at least 0"),
        ("task=vision", "task", "task 'vision' is not one of: image-classification"),
        ("scenario=batch", "scenario", "scenario 'batch' is not one of"),
        ("min_accuracy=0.9", "min_accuracy", "unknown field 'min_accuracy'"),
        ("max_cost=1&max_cost=2", "max_cost", "max_cost is given more than once"),
    ],
)
def test_bad_constraints_are_400s_naming_the_field(client, query: str, field: str, message: str) -> None:
    response = client.get(f"/api/v1/recommendations?{query}")
    assert response.status_code == 400
    assert response.json["error"]["field"] == field and message in response.json["error"]["message"]
    _schema_check(client, response, "Error")


def test_the_reports_are_listed_with_their_filters(client) -> None:
    response = client.get("/api/v1/reports")
    assert response.status_code == 200
    listed = {r["name"]: r for r in response.json["reports"]}
    assert list(listed) == list(REPORTS)
    assert listed["evaluation_summary"]["filters"] == ["model", "hardware", "since"]
    assert listed["model_leaderboard"]["filters"] == ["model"]
    assert listed["stage_breakdown"]["columns"] == list(REPORTS["stage_breakdown"].columns)
    _schema_check(client, response, "ReportList")


def test_a_report_as_json(client, measured) -> None:
    response = client.get("/api/v1/reports/evaluation_summary?model=digits-cnn")
    assert response.status_code == 200
    assert response.json["report"] == "evaluation_summary"
    assert response.json["columns"] == list(REPORTS["evaluation_summary"].columns)
    rows = response.json["rows"]
    assert len(rows) == RUNS and all(list(row) == response.json["columns"] for row in rows)
    assert {row["job_id"] for row in rows} >= {j for jobs in measured.jobs.values() for j in jobs}
    assert all(datetime.fromisoformat(row["created_at"]).tzinfo is not None for row in rows)
    invalid = next(row for row in rows if row["job_id"] == measured.invalid_job)
    assert invalid["valid"] is False
    _schema_check(client, response, "ReportRows")


def test_a_report_as_a_csv_download(client) -> None:
    response = client.get("/api/v1/reports/evaluation_summary?format=csv&hardware=cpu-spare&since=2000-01-01")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="evaluation_summary.csv"'
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert list(rows[0]) == list(REPORTS["evaluation_summary"].columns)
    assert len(rows) == 2 and {row["hardware_tag"] for row in rows} == {UNPRICED_TAG}
    assert all(row["cost_per_1000_items"] == "" and 0.9 <= float(row["top1"]) <= 1 for row in rows)
    assert sorted(row["valid"] for row in rows) == ["", "false"]
    assert all(datetime.fromisoformat(row["finished_at"]).tzinfo is not None for row in rows)

    comparison = client.get("/api/v1/reports/hardware_comparison?format=csv")
    grouped = list(csv.DictReader(io.StringIO(comparison.get_data(as_text=True))))
    assert {(r["hardware_tag"], r["batch_size"], r["runs"]) for r in grouped} == {
        (PRICED_TAG, "10", "2"),
        (PRICED_TAG, "30", "1"),
        (UNPRICED_TAG, "10", "2"),  # the report counts every succeeded run; recommendations skip INVALID ones
    }
    limited = client.get("/api/v1/reports/stage_breakdown?format=csv&limit=3").get_data(as_text=True)
    assert len(limited.splitlines()) == 1 + 3


@pytest.mark.parametrize(
    ("path", "status", "field", "message"),
    [
        ("/reports/no_such_report?format=csv", 404, "name", "no report 'no_such_report'; the reports are: "),
        ("/reports/evaluation_summary?since=yesterday", 400, "since", "since 'yesterday' is not an ISO date"),
        ("/reports/evaluation_summary?limit=0", 400, "limit", "limit must be between 1 and 10000"),
        ("/reports/evaluation_summary?format=xlsx", 400, "format", "format must be one of json, csv"),
        (
            "/reports/model_leaderboard?hardware=cpu",
            400,
            "hardware",
            "cannot be filtered by hardware (it takes: model)",
        ),
        ("/reports/evaluation_summary?model=x'%20OR%201=1", 400, "model", "is not a valid name"),
        ("/reports/evaluation_summary?owner=me", 400, "owner", "unknown field 'owner'"),
    ],
)
def test_bad_report_requests(client, path: str, status: int, field: str, message: str) -> None:
    response = client.get(f"/api/v1{path}")
    assert response.status_code == status and response.mimetype == "application/json"
    assert response.json["error"]["field"] == field and message in response.json["error"]["message"]
