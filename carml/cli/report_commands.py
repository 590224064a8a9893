"""`carml report`: print one of the SQL reporting views as a table, CSV or JSON."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

import click

from carml.cli.output import print_json, print_table
from carml.cli.viewer import cli_viewer
from carml.csv_export import formula_safe
from carml.db.migrate import require_current
from carml.reporting import REPORTS, report, run_report
from carml.settings import load_settings


def _cell(value: Any, digits: int | None = 4) -> Any:
    """A value as printed: timestamps in ISO form, floats rounded for people (never for JSON, digits=None)."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, float) and digits is not None:
        return round(value, digits)
    return value


@click.command("report", help=f"Print report NAME: {', '.join(REPORTS)}.")
@click.argument("name")
@click.option("--model", help="Only this model.")
@click.option("--hardware", metavar="TAG", help="Only this hardware tag.")
@click.option("--since", metavar="DATE", help="Only jobs created at or after this ISO date or datetime (UTC).")
@click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True, help="At most this many rows.")
@click.option("--format", "output", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def report_command(
    name: str, model: str | None, hardware: str | None, since: str | None, limit: int, output: str
) -> None:
    report(name)  # an unknown name is told as such, before the database is read
    settings = load_settings()
    require_current(settings.database)  # an unmigrated database: the message says to upgrade it
    viewer = cli_viewer(settings)  # CARML_USER's rows, as the web app would show them (see carml.cli.viewer)
    rows = run_report(settings, name, model=model, hardware=hardware, since=since, limit=limit, viewer=viewer)
    columns = REPORTS[name].columns
    if output == "json":
        print_json([{key: _cell(value, None) for key, value in row.items()} for row in rows])
    elif output == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[formula_safe(_cell(row[c])) for c in columns] for row in rows])
        click.echo(buffer.getvalue(), nl=False)
    else:
        print_table(columns, [[_cell(row[c]) for c in columns] for row in rows])


COMMANDS = [report_command]
