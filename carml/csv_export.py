"""Rows as CSV text for downloads and `--format csv`: a header row, ISO timestamps, empty cells for nulls.

Every CSV the service writes passes its cells through `formula_safe`: a spreadsheet opening the file runs a
cell that starts like a formula (CSV injection), and names, labels and file names in these files come from users.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

# What a spreadsheet takes as the start of a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A text that is a plain decimal number ("-1", a class name) reads as that number, never as a formula.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def formula_safe(value: Any) -> Any:
    """A text cell starting like a formula, with a single quote in front so spreadsheets show it as text (OWASP's
    advice); every other value (numbers included, which are never formulas) as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell: unrounded numbers (programs read these files), true/false, ISO time, '' for null,
    text that could run as a formula neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return formula_safe(value)


def to_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """`rows` as CSV with `columns` as the header row and the column order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([csv_cell(row.get(name)) for name in columns] for row in rows)
    return buffer.getvalue()
