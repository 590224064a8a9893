"""Commands that run models: predict and evaluate (in this process)."""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from carml.cli.output import percent, print_json, print_table
from carml.cli.scenarios import ScenarioFlags, evaluate_locally, option_errors, scenario_flags
from carml.datasets import looks_like_dataset_path
from carml.db.models import JobStatus
from carml.evaluation.runner import EvaluationOptions, OnPrediction
from carml.jobs.predictions import PredictionRequest, submit_prediction
from carml.jobs.service import EvaluationRequest, submit_evaluation
from carml.runs import evaluate_model, predict_files
from carml.settings import TRACE_LEVELS, Settings, load_settings
from predictors.base import ItemPrediction

framework_option = click.option("--framework", "-f", help="Framework, when the model is published for several.")
device_option = click.option("--device", help="auto (default), cpu, cuda or cuda:N.")


def _describe(output: dict[str, Any]) -> str:
    if "top_k" in output:
        return ", ".join(f"{c['label']} {c['score']:.3f}" for c in output["top_k"])
    if "detections" in output:
        found = [
            f"{d['label']} {d['score']:.2f} [{', '.join(f'{v:.0f}' for v in d['box_xyxy'])}]"
            for d in output["detections"]
        ]
        return "; ".join(found) or "nothing detected"
    if "segments" in output:
        return ", ".join(f"{s['start_s']:.2f}-{s['end_s']:.2f}s" for s in output["segments"]) or "no speech"
    return json.dumps(output)[:200]


@click.command("predict")
@click.argument("model")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@framework_option
@click.option("--top-k", type=click.IntRange(min=1), help="How many classes to show (default: the manifest's).")
@device_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--local", is_flag=True, help="Run in this process instead of submitting a job to a worker.")
@click.option("--hardware", "hardware_tag", default="cpu", show_default=True, help="Hardware tag whose queue runs it.")
@click.option("--no-wait", is_flag=True, help="Print the job id and return instead of following the job.")
def predict_command(
    model: str,
    files: tuple[Path, ...],
    framework: str | None,
    top_k: int | None,
    device: str | None,
    as_json: bool,
    local: bool,
    hardware_tag: str,
    no_wait: bool,
) -> None:
    """Run MODEL on each FILE (images, WAV audio) and print its answers (as a job, or --local)."""
    if local:
        result = predict_files(load_settings(), model, files, framework=framework, device=device, top_k=top_k)
    else:
        if device:
            raise click.UsageError("--device applies to --local runs; workers use their own device")
        inputs = []
        for path in files:
            try:
                inputs.append((str(path), path.read_bytes()))
            except OSError as exc:
                raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="FILES") from None
        request = PredictionRequest(
            model=model,
            inputs=inputs,
            framework=framework,
            hardware_tag=hardware_tag,
            top_k=top_k,
            owner=load_settings().user,  # the operator (CARML_USER), as for evaluate
        )
        summary = _submit_and_follow(
            lambda settings, enqueue: submit_prediction(settings, request, enqueue), no_wait, as_json, quiet=True
        )
        if summary is None:
            return
        result = {k: v for k, v in summary.items() if k != "result"}
        result["predictions"] = summary.get("result", {}).get("predictions", [])
    failed = sum(1 for p in result["predictions"] if "error" in p)
    if as_json:
        print_json(result)
    else:
        for prediction in result["predictions"]:
            if "error" in prediction:
                click.echo(f"{prediction['item']}: error: {prediction['error']}", err=True)
                continue
            for name, output in prediction["outputs"].items():
                click.echo(f"{prediction['item']} [{name}]: {_describe(output)}")
    if failed:
        raise click.exceptions.Exit(1)


class _ProgressBar:
    """A terminal progress bar on stderr; silent when stderr is not a terminal."""

    def __init__(self, label: str):
        self.bar: Any = None
        self.label = label
        self.shown = 0

    def __call__(self, done: int, total: int) -> None:
        if not sys.stderr.isatty():
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr, show_pos=True)
            self.bar.__enter__()
        self.bar.update(done - self.shown)
        self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@contextlib.contextmanager
def _atomic_lines(target: Path | None) -> Iterator[Callable[[str], object] | None]:
    """Lines go to a temporary file beside `target`, renamed over it only if the block succeeds."""
    if target is None:
        yield None
        return
    try:
        fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    except OSError as exc:
        message = f"cannot write in {target.parent}: {exc.strerror}"
        raise click.BadParameter(message, param_hint="--predictions") from None
    temp = Path(temp_name)
    try:
        with open(fd, "w", encoding="utf-8") as stream:
            yield stream.write
        temp.replace(target)
    finally:
        temp.unlink(missing_ok=True)


def _prediction_writer(write_line: Callable[[str], object]) -> OnPrediction:
    def write(prediction: ItemPrediction, true_class: int | None) -> None:
        write_line(json.dumps({**prediction.to_json(), "true_class": true_class}) + "\n")

    return write


def _print_evaluation(result: dict[str, Any]) -> None:
    latency = result["latency_ms"]
    click.echo(
        f"{result['model']} ({result['framework']}, {result['device']}) on {result['dataset']}: "
        f"{result['items']} items, {result['errors']} errors"
    )
    claimed = result["claimed"]["top1"]
    click.echo(
        f"  top-1 {percent(result['top1'])}  top-5 {percent(result['top5'])}"
        + (f"  (claimed top-1 {percent(claimed)})" if claimed is not None else "")
    )
    if latency["count"]:
        click.echo(
            f"  batch {result['batch_size']}: latency p50 {latency['p50']:.2f} ms  p90 {latency['p90']:.2f} ms"
            f"  p99 {latency['p99']:.2f} ms  trimmed mean {latency['trimmed_mean']:.2f} ms"
        )
    if result["throughput_items_per_s"]:
        click.echo(
            f"  throughput {result['throughput_items_per_s']:.1f} items/s"
            f"  (model load {result['model_load_ms']:.0f} ms, warm-up batches {result['warmup']['batches']})"
        )
    stages = result["stages_ms"]
    print_table(
        ["stage", "p50 ms", "mean ms", "total ms"],
        [
            [s, f"{v['p50']:.2f}", f"{v['mean']:.2f}", f"{v['mean'] * v['count']:.1f}"]
            for s, v in stages.items()
            if v["count"]
        ],
    )
    for error in result["error_items"][:10]:
        click.echo(f"  error: {error['item']}: {error['reason']}", err=True)
    if result["errors"] > 10:
        click.echo(f"  ... and {result['errors'] - 10} more errors (see --json)", err=True)


@click.command("evaluate")
@click.argument("model")
@click.option(
    "--dataset",
    "-d",
    required=True,
    help="Dataset name, dataset manifest, or your own data: a class-folder tree, zip/tar of one, CSV or NPZ.",
)
@framework_option
@click.option("--batch-size", "-b", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--limit", "-n", type=click.IntRange(min=1), help="Evaluate only the first N items.")
@click.option(
    "--warmup",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Batches (scenarios: queries) run before timing starts (still scored).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed for --shuffle, or of a scenario's sample order."
)
@click.option("--shuffle", is_flag=True, help="Visit items in a seeded random order.")
@device_option
@click.option(
    "--predictions",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every item's prediction to this JSON Lines file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@click.option("--local", is_flag=True, help="Run in this process instead of submitting a job to a worker.")
@click.option("--hardware", "hardware_tag", default="cpu", show_default=True, help="Hardware tag whose queue runs it.")
@click.option(
    "--shards",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Split the items into this many tasks, run in parallel by the tag's workers.",
)
@click.option("--no-wait", is_flag=True, help="Print the job id and return instead of following the job.")
@click.option(
    "--trace-level",
    type=click.Choice(TRACE_LEVELS),
    help="Spans kept for this job: none, stage or framework (default: CARML_TRACE_LEVEL).",
)
@scenario_flags
def evaluate_command(
    model: str,
    dataset: str,
    framework: str | None,
    batch_size: int,
    limit: int | None,
    warmup: int,
    seed: int,
    shuffle: bool,
    device: str | None,
    predictions: Path | None,
    as_json: bool,
    local: bool,
    hardware_tag: str,
    shards: int,
    no_wait: bool,
    trace_level: str | None,
    scenario: ScenarioFlags,
) -> None:
    """Measure MODEL's accuracy, latency and throughput on a dataset (as a job, or --local).

    With --scenario, run a LoadGen-style performance scenario instead and print its verdict."""
    if local and trace_level:
        raise click.UsageError("--trace-level applies to jobs; --local runs are not traced")
    if not local:
        if predictions or shuffle or device:
            raise click.UsageError("--predictions, --shuffle and --device apply to --local runs")
        if looks_like_dataset_path(dataset) and Path(dataset).exists():
            dataset = str(Path(dataset).resolve())  # the worker may run in another directory
        request = EvaluationRequest(
            model=model,
            dataset=dataset,
            framework=framework,
            hardware_tag=hardware_tag,
            batch_size=batch_size,
            limit=limit,
            shards=shards,
            warmup_batches=warmup,
            trace_level=trace_level,
            owner=load_settings().user,  # the operator (CARML_USER): whoever holds the database URL is trusted
            **scenario.request_fields(seed),
        )
        with option_errors():  # a refused scenario value names its option
            _submit_and_follow(
                lambda settings, enqueue: submit_evaluation(settings, request, enqueue), no_wait, as_json
            )
        return
    if scenario.performance:
        if predictions or shuffle:
            raise click.UsageError("--predictions and --shuffle apply to accuracy runs")
        common = {"framework": framework, "device": device, "batch_size": batch_size, "limit": limit}
        evaluate_locally(model, dataset, scenario, seed=seed, warmup=warmup, as_json=as_json, **common)
        return
    options = EvaluationOptions(batch_size=batch_size, limit=limit, warmup_batches=warmup, seed=seed, shuffle=shuffle)
    bar = _ProgressBar(f"{model} on {dataset}")
    with _atomic_lines(predictions) as write_line:
        try:
            result = evaluate_model(
                load_settings(),
                model,
                dataset,
                framework=framework,
                device=device,
                options=options,
                progress=bar,
                on_prediction=_prediction_writer(write_line) if write_line else None,
            )
        finally:
            bar.close()
    if as_json:
        print_json(result)
    else:
        _print_evaluation(result)


def _submit_and_follow(
    submit: Callable[[Settings, Any], str], no_wait: bool, as_json: bool, quiet: bool = False
) -> dict[str, Any] | None:
    """Submit a job through the configured broker and follow it; with `quiet` the caller prints the result."""
    from carml.cli.service_commands import follow_job, print_job
    from carml.db.migrate import require_current
    from worker.celery_app import celery_enqueuer, create_celery_app

    settings = load_settings()
    require_current(settings.database)
    job_id = submit(settings, celery_enqueuer(create_celery_app(settings)))
    if no_wait:
        print_json({"id": job_id}) if as_json else click.echo(job_id)
        return None
    summary = follow_job(settings, job_id, show_progress=not as_json)
    if summary["status"] != JobStatus.SUCCEEDED:
        print_job(summary)
        raise click.exceptions.Exit(1)
    if not quiet:
        if as_json:
            print_json({**summary.get("result", {}), **{k: v for k, v in summary.items() if k != "result"}})
        else:
            print_job(summary)
    return summary


COMMANDS = [predict_command, evaluate_command]
