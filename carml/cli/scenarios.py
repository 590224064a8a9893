"""`carml evaluate --scenario ...`: the scenario options, their errors named by option, and the verdict printed."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import click

from carml.db.models import Scenario
from carml.evaluation.scenario_options import (
    DEFAULT_MAX_DURATION_S,
    DEFAULT_MIN_DURATION_S,
    DEFAULT_MIN_QUERY_COUNT,
    DEFAULT_SAMPLE_COUNT,
    ScenarioError,
    ScenarioOptions,
    scenario_options,
)
from carml.jobs.service import JobRequestError

#: Request field -> the option that sets it, so a refused value is reported against the option the user typed.
OPTION_OF_FIELD = {
    "scenario": "--scenario",
    "target_qps": "--target-qps",
    "latency_bound_ms": "--latency-bound-ms",
    "min_duration_s": "--min-duration-s",
    "min_query_count": "--min-queries",
    "max_duration_s": "--max-duration-s",
    "sample_count": "--sample-count",
    "seed": "--seed",
    "warmup_batches": "--warmup",
    "warmup_queries": "--warmup",
    "shards": "--shards",
}


@dataclass(frozen=True)
class ScenarioFlags:
    """The scenario options as given on the command line (None: not given)."""

    scenario: str
    target_qps: float | None
    latency_bound_ms: float | None
    min_duration_s: float | None
    min_query_count: int | None
    max_duration_s: float | None
    sample_count: int | None

    @property
    def performance(self) -> bool:
        return self.scenario != Scenario.ACCURACY

    def request_fields(self, seed: int) -> dict[str, Any]:
        """`EvaluationRequest` fields; options given to an accuracy run are passed on, for the service to refuse."""
        given = {name: value for name, value in asdict(self).items() if value is not None}
        return {**given, "seed": seed} if self.performance else given

    def options(self, seed: int, warmup: int) -> ScenarioOptions | None:
        """Checked options for a run in this process (None: an accuracy run); ScenarioError names the field."""
        return scenario_options(self.scenario, self.request_fields(seed), warmup_queries=warmup)


def scenario_flags(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the scenario options to a click command; it receives them as one `scenario: ScenarioFlags`."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        kwargs["scenario"] = ScenarioFlags(**{f.name: kwargs.pop(f.name) for f in dataclasses.fields(ScenarioFlags)})
        return command(*args, **kwargs)

    options = [
        click.option(
            "--scenario",
            type=click.Choice([s.value for s in Scenario]),
            default=Scenario.ACCURACY.value,
            show_default=True,
            help="An accuracy pass, or a LoadGen-style performance scenario (see docs/scenarios.md).",
        ),
        click.option("--target-qps", type=float, help="server: the mean rate queries arrive at, per second."),
        click.option("--latency-bound-ms", type=float, help="server: the p99 latency a valid run stays within."),
        click.option(
            "--min-duration-s",
            type=float,
            help=f"Scenarios: the timed run lasts at least this long [{DEFAULT_MIN_DURATION_S:g}].",
        ),
        click.option(
            "--min-queries",
            "min_query_count",
            type=int,
            help=f"Scenarios: ... and at least this many queries (offline: samples) [{DEFAULT_MIN_QUERY_COUNT}].",
        ),
        click.option(
            "--max-duration-s",
            type=float,
            help=f"Scenarios: cut the run here, as INVALID [{DEFAULT_MAX_DURATION_S:g}].",
        ),
        click.option(
            "--sample-count", type=int, help=f"Scenarios: items loaded before timing starts [{DEFAULT_SAMPLE_COUNT}]."
        ),
    ]
    for option in reversed(options):
        run = option(run)
    return run


@contextlib.contextmanager
def option_errors() -> Iterator[None]:
    """A refused scenario value becomes a usage error that names the option (exit code 2)."""
    try:
        yield
    except (JobRequestError, ScenarioError) as exc:
        option = OPTION_OF_FIELD.get(exc.field or "")
        if option is None:
            raise
        raise click.BadParameter(str(exc), param_hint=f"'{option}'") from None


def _value(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}{unit}" if value >= 1000 else f"{value:.3g}{unit}"


def print_scenario_outcome(outcome: dict[str, Any]) -> None:
    """The verdict, the reasons, the stability note and what was measured, for people."""
    stability = {True: "stable", False: "UNSTABLE", None: "stability unknown"}[outcome["stable"]]
    click.echo(f"  {outcome['scenario']}: {outcome['verdict']}, {stability}")
    for reason in outcome["reasons"]:
        click.echo(f"    - {reason}")
    metric = outcome["metric"]
    click.echo(f"  {metric['label']} {_value(metric['value'], ' ' + metric['unit'])}; {outcome['stability_note']}")
    queries, latency = outcome["queries"], outcome["latency_ms"]
    click.echo(
        f"  {queries['timed']} timed queries (+{queries['warmup']} warm-up) in {outcome['duration_s']:.2f} s, "
        f"{_value(outcome['throughput_samples_per_s'])} samples/s; query latency p50 {_value(latency['p50'])} "
        f"p90 {_value(latency['p90'])} p99 {_value(latency['p99'])} ms"
    )
    order = outcome["sample_order"]
    click.echo(f"  seed {outcome['seed']}: {order['issued']} samples issued, order sha256 {order['sha256'][:16]}…")


def evaluate_locally(
    model: str,
    dataset: str,
    flags: ScenarioFlags,
    *,
    seed: int,
    warmup: int,
    framework: str | None,
    device: str | None,
    batch_size: int,
    limit: int | None,
    as_json: bool,
) -> None:
    """`carml evaluate --scenario ... --local`: run the scenario in this process and print its verdict."""
    from carml.cli.output import percent, print_json
    from carml.scenario_runs import run_scenario_model
    from carml.settings import load_settings

    with option_errors():
        options = flags.options(seed, warmup)
    assert options is not None  # a performance scenario: accuracy runs do not come here
    settings = load_settings()
    result = run_scenario_model(
        settings, model, dataset, options, framework=framework, device=device, batch_size=batch_size, limit=limit
    )
    if as_json:
        print_json(result)
        return
    click.echo(
        f"{result['model']} ({result['framework']}, {result['device']}) on {result['dataset']}: "
        f"{result['items']} samples answered, {result['errors']} errors, top-1 {percent(result['top1']) or '-'}"
    )
    print_scenario_outcome(result["scenario_outcome"])
