"""`carml compare`: the same dataset over several hardware tags, batch sizes, frameworks or models, side by side."""

from __future__ import annotations

import time
from typing import Any

import click

from carml.cli.output import percent, print_json, print_table
from carml.cli.scenarios import ScenarioFlags, option_errors, scenario_flags
from carml.db.models import JobStatus
from carml.jobs.comparisons import ComparisonRequest, get_comparison, submit_comparison
from carml.settings import load_settings

POLL_S = 0.5


def _split(values: tuple[str, ...]) -> list[str]:
    """Repeated options and comma-separated lists both work: -H cpu -H gpu, or -H cpu,gpu."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _batch_sizes(values: tuple[str, ...]) -> list[int]:
    sizes = []
    for part in _split(values):
        if not part.isdigit() or int(part) < 1:
            raise click.BadParameter(f"{part!r} is not a whole number of at least 1", param_hint="--batch-size")
        sizes.append(int(part))
    return sizes or [32]


def _number(value: float | None, digits: int = 2) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


def _label_tag(leg: dict[str, Any]) -> str:
    threads = leg["worker_threads"]
    return f"{leg['hardware_tag']} ({'/'.join(map(str, threads))} thr)" if threads else leg["hardware_tag"]


def _verdict(leg: dict[str, Any]) -> str | None:
    if leg["valid"] is None:
        return None
    return ("VALID" if leg["valid"] else "INVALID") + ("" if leg["stable"] is not False else ", UNSTABLE")


def print_comparison(summary: dict[str, Any]) -> None:
    """The legs as one table; a '*' marks the best value of each metric among succeeded legs."""
    best = summary["best"]
    scenarios = any(leg["scenario"] != "accuracy" for leg in summary["legs"])

    def cell(leg: dict[str, Any], metric: str, text: str | None) -> str | None:
        return None if text is None else text + ("*" if leg["leg"] in best.get(metric, []) else "")

    click.echo(f"{summary['title']}  [{summary['status']}, {summary['legs_finished']}/{summary['legs_total']} legs]")
    rows = []
    for leg in summary["legs"]:
        progress = leg["progress"]
        status = (
            leg["status"]
            if JobStatus(leg["status"]).final
            else f"{leg['status']} {progress['done']}/{progress['total']}"
        )
        rows.append(
            [
                leg["leg"],
                leg["model"],
                leg["framework"],
                _label_tag(leg),
                leg["batch_size"],
                status,
                cell(leg, "top1", percent(leg["top1"])),
                cell(leg, "latency_p50_ms", _number(leg["latency_p50_ms"])),
                cell(leg, "latency_p99_ms", _number(leg["latency_p99_ms"])),
                cell(leg, "throughput_items_per_s", _number(leg["throughput_items_per_s"], 1)),
                cell(leg, "joules_per_item", _number(leg["joules_per_item"], 4)),
                cell(leg, "cost_per_1000_items", _number(leg["cost_per_1000_items"], 4)),
            ]
            + ([_verdict(leg)] if scenarios else [])
        )
    print_table(
        [
            "leg",
            "model",
            "framework",
            "hardware",
            "batch",
            "status",
            "top-1",
            "p50 ms",
            "p99 ms",
            "items/s",
            "J/item",
            "cost/1k",
        ]
        + (["verdict"] if scenarios else []),
        rows,
    )
    for leg in summary["legs"]:
        if leg["error"]:
            click.echo(f"  leg {leg['leg']}: {leg['status']}: {leg['error']}", err=True)


@click.command("compare")
@click.argument("models", nargs=-1, required=True)
@click.option("--dataset", "-d", required=True, help="Dataset name (catalog or uploaded); every leg runs on it.")
@click.option("--hardware", "-H", "hardware_tags", multiple=True, help="Hardware tags (repeat or comma-separate).")
@click.option("--batch-size", "-b", "batch_sizes", multiple=True, help="Batch sizes: a sweep (repeat or 1,8,32).")
@click.option("--framework", "-f", "frameworks", multiple=True, help="Frameworks (repeat or comma-separate).")
@click.option("--limit", "-n", type=click.IntRange(min=1), help="Evaluate only the first N items.")
@click.option("--shards", type=click.IntRange(1, 64), default=1, show_default=True, help="Shards per leg.")
@click.option("--title", help="A name for the comparison.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of a scenario's sample order.")
@scenario_flags
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option("--no-wait", is_flag=True, help="Print the comparison id and return instead of following it.")
def compare_command(
    models: tuple[str, ...],
    dataset: str,
    hardware_tags: tuple[str, ...],
    batch_sizes: tuple[str, ...],
    frameworks: tuple[str, ...],
    limit: int | None,
    shards: int,
    title: str | None,
    seed: int,
    scenario: ScenarioFlags,
    as_json: bool,
    no_wait: bool,
) -> None:
    """Run MODELS on one dataset over several hardware tags, batch sizes or frameworks, one job per leg.

    With --scenario every leg runs the same performance scenario (e.g. -b 1,8,32 --scenario offline)."""
    from carml.db.migrate import require_current
    from worker.celery_app import celery_enqueuer, create_celery_app

    settings = load_settings()
    require_current(settings.database)
    request = ComparisonRequest(
        models=_split(models),
        dataset=dataset,
        hardware_tags=_split(hardware_tags) or ["cpu"],
        batch_sizes=_batch_sizes(batch_sizes),
        frameworks=_split(frameworks) or [None],
        limit=limit,
        shards=shards,
        title=title,
        owner=settings.user,  # the operator (CARML_USER): whoever holds the database URL is trusted with it
        leg_options=scenario.request_fields(seed),
    )
    with option_errors():  # a refused scenario value names its option
        comparison_id = submit_comparison(settings, request, celery_enqueuer(create_celery_app(settings)))
    if no_wait:
        print_json({"id": comparison_id}) if as_json else click.echo(comparison_id)
        return
    summary = get_comparison(settings, comparison_id)
    shown = -1
    while summary["legs_finished"] < summary["legs_total"]:
        if not as_json and summary["legs_finished"] != shown:
            shown = summary["legs_finished"]
            click.echo(f"{shown}/{summary['legs_total']} legs finished", err=True)
        time.sleep(POLL_S)
        summary = get_comparison(settings, comparison_id)
    if as_json:
        print_json(summary)
    else:
        print_comparison(summary)
    if summary["status"] != "succeeded":
        raise click.exceptions.Exit(1)


@click.command("comparison")
@click.argument("comparison_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def comparison_command(comparison_id: str, as_json: bool) -> None:
    """Show a comparison's legs side by side (partial results while legs still run)."""
    from carml.db.migrate import require_current

    settings = load_settings()
    require_current(settings.database)
    summary = get_comparison(settings, comparison_id)
    print_json(summary) if as_json else print_comparison(summary)


COMMANDS = [compare_command, comparison_command]
