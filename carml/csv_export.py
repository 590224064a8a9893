"""Rows as CSV text for downloads and `--format csv`: a header row, ISO timestamps, empty cells for nulls."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell: unrounded numbers (programs read these files), true/false, ISO time, '' for null."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def to_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """`rows` as CSV with `columns` as the header row and the column order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([csv_cell(row.get(name)) for name in columns] for row in rows)
    return buffer.getvalue()
