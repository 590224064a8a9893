"""`carml recommend`: rank the measured model+hardware pairs that meet constraints, Pareto front first."""

from __future__ import annotations

import click

from carml.cli.output import percent, print_json, print_table
from carml.cli.viewer import cli_viewer
from carml.csv_export import to_csv
from carml.db.migrate import require_current
from carml.db.models import Scenario
from carml.recommend import RANKED_COLUMNS, Recommendation, describe_reason, parse_constraints, recommend
from carml.settings import load_settings

#: The exit status when no measured candidate meets the constraints (1 is a bad option or a server error).
NOTHING_MEETS = 3

_TABLE = ("rank", "front", "model", "framework", "hardware", "batch", "dataset", "runs", "top1", "p99_ms")
_TABLE_MORE = ("items_per_s", "cost_per_1000", "joules_per_item")


def _option_label(name: str) -> str:
    return "--" + name.replace("_", "-")


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _significant(value: float | None) -> str | None:
    # Costs and energies per item can be tiny (a fast model on a cheap tag): digits that matter, not decimals.
    return None if value is None else f"{value:.3g}"


def _print_table(found: Recommendation) -> None:
    if found.ranked:
        rows = [
            [
                r.rank,
                "*" if r.pareto else "",
                c.model,
                c.framework,
                c.hardware_tag,
                c.batch_size,
                c.dataset,
                c.runs,
                percent(c.top1),
                _round(c.p99_ms),
                _round(c.throughput_items_per_s, 1),
                _significant(c.cost_per_1000_items),
                _significant(c.joules_per_item),
            ]
            for r in found.ranked
            for c in (r.candidate,)
        ]
        print_table((*_TABLE, *_TABLE_MORE), rows)
        front = ", ".join(
            {"top1": "top-1 ↑", "p99_ms": "p99 ↓", "cost_per_1000_items": "cost ↓"}[o] for o in found.objectives
        )
        click.echo(f"\n* on the Pareto front over {front}.")
        if found.note:
            click.echo(found.note[0].upper() + found.note[1:] + ".")
    if found.excluded_total:
        click.echo(f"\nExcluded {found.excluded_total} of {found.considered} measured candidates:")
        for reason, count in found.excluded.items():
            click.echo(f"  {count:>4}  {describe_reason(reason, found.constraints)}")


def _nothing_meets(found: Recommendation) -> str:
    c = found.constraints
    if found.considered:
        return f"no measured candidate meets the constraints: all {found.considered} were excluded"
    scope = (f" of task {c.task}" if c.task else "") + (f" on {c.dataset}" if c.dataset else "")
    return f"no measured candidate: no {c.scenario} evaluation{scope} has succeeded yet (run `carml evaluate`)"


@click.command("recommend")
@click.option("--task", metavar="TASK", help="Only models of this task, e.g. image-classification.")
@click.option("--dataset", metavar="NAME", help="Only runs on this dataset.")
@click.option(
    "--scenario",
    type=click.Choice([s.value for s in Scenario]),
    default=Scenario.ACCURACY.value,
    show_default=True,
    help="Only runs of this scenario.",
)
@click.option("--min-top1", metavar="TOP1", help="Lowest acceptable top-1: a fraction (0.95) or a percentage (95%).")
@click.option("--max-p99-ms", metavar="MS", help="Highest acceptable p99 latency per batch, in milliseconds.")
@click.option("--max-cost", metavar="PRICE", help="Highest acceptable cost per 1,000 items (needs prices).")
@click.option("--max-joules", metavar="J", help="Highest acceptable energy per item, in joules (needs a counter).")
@click.option("--format", "output", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
def recommend_command(output: str, **options: str | None) -> None:
    """Rank the measured model+hardware pairs that meet the constraints, Pareto front first.

    Each pair's numbers are the medians of its succeeded evaluations. Exits with 3 when none meets the
    constraints (the exclusion counts say why), 1 on a bad option.
    """
    constraints = parse_constraints(options, _option_label)
    settings = load_settings()
    require_current(settings.database)
    found = recommend(settings, constraints, cli_viewer(settings))  # CARML_USER's view (see carml.cli.viewer)
    if output == "json":
        print_json(found.as_dict())
    elif output == "csv":
        click.echo(to_csv(RANKED_COLUMNS, [r.as_dict() for r in found.ranked]), nl=False)
    else:
        _print_table(found)
    if not found.ranked:
        click.echo(_nothing_meets(found), err=True)
        raise click.exceptions.Exit(NOTHING_MEETS)


COMMANDS = [recommend_command]
