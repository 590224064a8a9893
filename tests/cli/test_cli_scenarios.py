"""`carml evaluate --scenario`: refused values name their option and exit non-zero; a local run prints a verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from carml.db.migrate import upgrade
from carml.db.models import Job
from carml.db.session import session_scope
from carml.settings import load_settings

DIGITS = ("evaluate", "digits-cnn", "-f", "onnxruntime", "-d", "digits")


@pytest.mark.parametrize(
    ("arguments", "option", "message"),
    [
        (("--scenario", "server", "--latency-bound-ms", "5"), "'--target-qps'", "the server scenario needs target_qps"),
        (("--scenario", "server", "--target-qps", "10"), "'--latency-bound-ms'", "needs latency_bound_ms"),
        (("--scenario", "offline", "--min-queries", "0"), "'--min-queries'", "must be greater than 0"),
        (("--scenario", "offline", "--min-duration-s", "-2"), "'--min-duration-s'", "must be greater than 0"),
        (("--scenario", "single-stream", "--seed", "-1"), "'--seed'", "at least 0"),
        (("--scenario", "single-stream", "--target-qps", "9"), "'--target-qps'", "server scenario only"),
        (
            (
                "--scenario",
                "bogus",
            ),
            "'--scenario'",
            "'bogus' is not one of",
        ),
    ],
)
def test_a_refused_scenario_value_names_its_option(run_cli, arguments, option, message) -> None:
    code, out, err = run_cli(*DIGITS, "--local", *arguments)
    assert code == 2 and out == ""
    assert option in err and message in err and "Traceback" not in err


def test_a_refused_job_request_names_its_option_and_records_nothing(run_cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CARML_HOME", str(tmp_path / "home"))
    settings = load_settings()
    upgrade(settings.database)
    for arguments, option in (
        (("--scenario", "offline", "--shards", "3"), "'--shards'"),
        (("--min-duration-s", "3"), "'--min-duration-s'"),  # an accuracy pass takes no scenario options
    ):
        code, _, err = run_cli(*DIGITS, *arguments)
        assert code == 2 and option in err, err
    with session_scope(settings.database) as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0


def test_a_local_scenario_prints_its_verdict(run_cli) -> None:
    quick = ("--min-duration-s", "0.2", "--min-queries", "20", "--seed", "4")
    code, out, err = run_cli(*DIGITS, "--local", "--scenario", "single-stream", *quick)
    assert code == 0, err
    assert "single-stream: VALID" in out and "p90 latency" in out and "seed 4:" in out
    code, out, err = run_cli(*DIGITS, "--local", "--scenario", "offline", "-b", "16", *quick, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert (
        result["scenario_outcome"]["verdict"] == "VALID" and result["scenario_outcome"]["settings"]["batch_size"] == 16
    )
    assert result["reproducibility"]["seed"] == 4 and result["top1"] > 0.9
