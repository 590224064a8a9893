"""`carml recommend`: the table with its front marks and exclusion counts, JSON, CSV, and the exit codes."""

from __future__ import annotations

import csv
import io
import json

import pytest
from measured_runs import PRICED_TAG, UNPRICED_TAG, MeasuredRuns, measured_settings, run_evaluations

from carml.cli.recommend_commands import NOTHING_MEETS
from carml.recommend import RANKED_COLUMNS, Constraints, recommend


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> MeasuredRuns:
    """Real finished evaluations (see measured_runs); the tests here only read them."""
    return run_evaluations(measured_settings(tmp_path_factory.mktemp("recommend-cli")))


@pytest.fixture()
def cli_measured(measured: MeasuredRuns, monkeypatch: pytest.MonkeyPatch) -> MeasuredRuns:
    monkeypatch.setenv("CARML_DATABASE_URL", measured.settings.database)
    return measured


def test_the_table_marks_the_front_and_says_what_it_was_computed_over(run_cli, cli_measured) -> None:
    code, out, err = run_cli("recommend", "--task", "image-classification", "--min-top1", "90%")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["RANK", "FRONT", "MODEL", "FRAMEWORK"] and "COST_PER_1000" in lines[0]
    rows = lines[1:4]
    assert [row.split()[0] for row in rows] == ["1", "2", "3"]
    assert rows[0].split()[1] == "*"  # the best-ranked candidate is always on the front
    expected = recommend(cli_measured.settings, Constraints(task="image-classification", min_top1=0.9))
    assert sum(row.split()[1] == "*" for row in rows) == sum(r.pareto for r in expected.ranked)
    assert "* on the Pareto front over top-1 ↑, p99 ↓." in out
    assert "Cost is left out of the Pareto front: 1 of 3 candidates have no cost" in out
    assert "98.3%" in rows[0]
    assert "Excluded" not in out


def test_the_table_counts_why_candidates_were_excluded(run_cli, cli_measured) -> None:
    code, out, err = run_cli("recommend", "--max-cost", "1", "--max-joules", "0.01")
    assert (code, err) == (0, "")
    assert "* on the Pareto front over top-1 ↑, p99 ↓, cost ↓." in out
    assert "Excluded 2 of 3 measured candidates:" in out
    assert "     2  no energy measured (the hardware has no energy counter)" in out
    assert "     1  no cost (CARML_HARDWARE_PRICES had no price for the hardware tag)" in out
    ranked = [line for line in out.splitlines() if line[:1].isdigit()]
    assert len(ranked) == 1 and PRICED_TAG in ranked[0] and " 30 " in ranked[0]


def test_json_is_the_recommendation_and_csv_its_ranked_rows(run_cli, cli_measured) -> None:
    code, out, err = run_cli("recommend", "--format", "json", "--max-p99-ms", "10000")
    assert (code, err) == (0, "")
    document = json.loads(out)
    expected = recommend(cli_measured.settings, Constraints(max_p99_ms=10000.0)).as_dict()
    assert document == json.loads(json.dumps(expected))
    assert document["constraints"]["max_p99_ms"] == 10000.0 and len(document["candidates"]) == 3

    code, out, err = run_cli("recommend", "--format", "csv")
    assert (code, err) == (0, "")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert tuple(rows[0]) == RANKED_COLUMNS and len(rows) == 3
    assert [row["rank"] for row in rows] == ["1", "2", "3"] and rows[0]["pareto"] == "true"
    unpriced = next(row for row in rows if row["hardware_tag"] == UNPRICED_TAG)
    assert unpriced["cost_per_1000_items"] == "" and float(unpriced["top1"]) == pytest.approx(
        document["candidates"][0]["top1"]
    )


def test_nothing_meeting_the_constraints_exits_3_with_the_reasons(run_cli, cli_measured) -> None:
    code, out, err = run_cli("recommend", "--min-top1", "100%")
    assert code == NOTHING_MEETS == 3
    assert err == "no measured candidate meets the constraints: all 3 were excluded\n"
    assert "Excluded 3 of 3 measured candidates:" in out and "top-1 below 100%" in out

    code, out, err = run_cli("recommend", "--min-top1", "1", "--format", "json")
    assert code == 3 and json.loads(out)["excluded"]["total"] == 3


def test_no_measured_candidate_at_all_says_what_to_run(run_cli, cli_measured) -> None:
    code, out, err = run_cli("recommend", "--task", "object-detection")
    assert (code, out) == (3, "")
    assert err == (
        "no measured candidate: no accuracy evaluation of task object-detection has succeeded yet "
        "(run `carml evaluate`)\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--min-top1", "95"),
            "error: --min-top1 '95' is above 1: give a fraction from 0 to 1 (0.95) or a percentage (95%)",
        ),
        (("--min-top1", "150%"), "error: --min-top1 '150%' is out of range: a percentage is from 0% to 100%"),
        (("--max-p99-ms", "0"), "error: --max-p99-ms '0' is out of range: it must be above 0 (e.g. 5 for 5 ms)"),
        (("--max-cost", "cheap"), "error: --max-cost 'cheap' is not a number (e.g. 0.02)"),
        (("--task", "vision"), "error: --task 'vision' is not one of: image-classification, object-detection, "),
    ],
)
def test_bad_options_are_one_line_errors(run_cli, cli_measured, args: tuple[str, ...], message: str) -> None:
    code, out, err = run_cli("recommend", *args)
    assert (code, out) == (1, "")
    assert err.startswith(message) and err.count("\n") == 1


def test_an_unknown_scenario_is_a_usage_error(run_cli, cli_measured) -> None:
    code, out, err = run_cli("recommend", "--scenario", "batch")
    assert code == 2 and out == "" and "'batch' is not one of 'accuracy', 'single-stream', 'offline', 'server'" in err


def test_a_database_not_at_head_says_to_upgrade(run_cli, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARML_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    code, out, err = run_cli("recommend")
    assert (code, out) == (1, "") and err.startswith("error: database at ") and "run `carml db upgrade`" in err
