"""Commands that talk to the service: run a worker, list, inspect and cancel jobs."""

from __future__ import annotations

from typing import Any

import click

from carml.cli.output import percent, print_json, print_table
from carml.cli.scenarios import print_scenario_outcome
from carml.db.migrate import require_current
from carml.db.models import JobStatus
from carml.evaluation.partial import CONFUSION_VIEWS
from carml.jobs.job_events import ended_job, wait_for_job_end
from carml.jobs.service import cancel_job, get_job, list_jobs
from carml.jobs.summary import job_summary
from carml.settings import Settings, load_settings

CONFUSION_OPTION = click.option(
    "--confusion",
    type=click.Choice(CONFUSION_VIEWS),
    default="matrix",
    show_default=True,
    help="With --json, the confusion matrix: in full, as its non-zero cells [true, predicted, count], or none.",
)


@click.command("worker")
@click.option(
    "--hardware",
    default="auto",
    show_default=True,
    help="Hardware tag to serve; auto = the NVIDIA GPU model, or cpu without one.",
)
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes (each loads its own models).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Limit each model to this many compute threads (CARML_THREADS); name the tag after it, e.g. cpu-1thread.",
)
@click.option("--loglevel", default="INFO", show_default=True)
def worker_command(hardware: str, concurrency: int, threads: int | None, loglevel: str) -> None:
    """Run a worker that executes jobs queued for one hardware tag."""
    import os

    from carml import hardware as machine
    from worker.main import limit_compute_threads, resolve_hardware_tag, run_worker, run_worker_per_gpu

    if threads is not None:
        limit_compute_threads(threads)
    settings = load_settings()
    tag = resolve_hardware_tag(hardware)
    gpu_count = len(machine.gpus()) if tag.startswith("nvidia-") else 0
    if gpu_count > 1 and "CUDA_VISIBLE_DEVICES" not in os.environ:
        click.echo(f"{gpu_count} GPUs: one worker process per GPU for hardware tag {tag!r}", err=True)
        raise click.exceptions.Exit(run_worker_per_gpu(tag, gpu_count, concurrency, loglevel))
    click.echo(f"worker for hardware tag {tag!r} on {settings.broker}", err=True)
    run_worker(settings, tag, concurrency, loglevel)


@click.command("jobs")
@click.option("--status", type=click.Choice([s.value for s in JobStatus]))
@click.option("--model")
@click.option("--hardware", "hardware_tag")
@click.option("--owner", help="Only this user's jobs (default: everyone's; the CLI is trusted with the database).")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@CONFUSION_OPTION
def jobs_command(
    status: str | None,
    model: str | None,
    hardware_tag: str | None,
    owner: str | None,
    limit: int,
    as_json: bool,
    confusion: str,
) -> None:
    """List jobs, newest first."""
    settings = load_settings()
    require_current(settings.database)
    found = list_jobs(settings, status=status, model=model, hardware_tag=hardware_tag, owner=owner, limit=limit)
    jobs = [job_summary(j, confusion if as_json else "none") for j in found]  # the table shows no matrix
    if as_json:
        print_json(jobs)
        return
    print_table(
        ["id", "kind", "status", "owner", "model", "framework", "dataset", "hardware", "progress", "created"],
        [
            [
                j["id"][:8],
                j["kind"],
                j["status"],
                j["owner"],
                j["model"],
                j["framework"],
                j["dataset"],
                j["hardware_tag"],
                f"{j['progress']['done']}/{j['progress']['total']}",
                j["created_at"][:19],
            ]
            for j in jobs
        ],
    )


@click.command("job")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
@CONFUSION_OPTION
def job_command(job_id: str, as_json: bool, confusion: str) -> None:
    """Show one job and its result."""
    settings = load_settings()
    require_current(settings.database)
    summary = job_summary(get_job(settings, job_id), confusion)
    if as_json:
        print_json(summary)
    else:
        print_job(summary)


@click.command("cancel")
@click.argument("job_id")
def cancel_command(job_id: str) -> None:
    """Cancel a job: queued work is dropped, running shards stop after their current batch."""
    settings = load_settings()
    require_current(settings.database)
    job = cancel_job(settings, job_id)
    click.echo(f"job {job['id']}: {'cancelled' if job['status'] == JobStatus.CANCELLED else 'cancelling'}")


def print_job(summary: dict[str, Any]) -> None:
    click.echo(
        f"job {summary['id']} ({summary['kind']}) {summary['status']}: {summary['model']} "
        f"({summary['framework']}) on {summary['dataset']}, hardware {summary['hardware_tag']}, "
        f"{summary['progress']['done']}/{summary['progress']['total']} "
        + ("% of the minimum run" if summary.get("scenario", "accuracy") != "accuracy" else "items")
    )
    if summary["error"]:
        click.echo(f"  error: {summary['error']}")
    result = summary.get("result")
    if result:
        latency = result["latency_ms"]
        click.echo(
            f"  top-1 {percent(result['top1'])}  top-5 {percent(result['top5'])}  "
            f"{result['items']} items, {result['errors']} errors"
        )
        if latency.get("count"):
            click.echo(
                f"  latency p50 {latency['p50']:.2f} ms  p90 {latency['p90']:.2f} ms  p99 {latency['p99']:.2f} ms"
                f"  throughput {result['throughput_items_per_s'] or 0:.1f} items/s"
            )
        if result.get("scenario_outcome"):
            print_scenario_outcome(result["scenario_outcome"])


def follow_job(settings: Settings, job_id: str, show_progress: bool, poll_s: float = 0.2) -> dict[str, Any]:
    """Wait for a job to finish, drawing a progress bar on a terminal; returns its summary."""
    import sys

    bar = None
    shown = 0
    try:
        while True:
            summary = job_summary(get_job(settings, job_id))
            done, total = summary["progress"]["done"], summary["progress"]["total"]
            if show_progress and sys.stderr.isatty() and total:
                if bar is None:
                    bar = click.progressbar(length=total, label=f"job {job_id[:8]}", file=sys.stderr, show_pos=True)
                    bar.__enter__()
                bar.update(done - shown)
                shown = done
            if JobStatus(summary["status"]).final:
                return summary
            # Back at once when the job ends (announced on Redis, else read often), at the latest in poll_s.
            wait_for_job_end(settings, job_id, poll_s, lambda: ended_job(settings, job_id)[0])
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


COMMANDS = [worker_command, jobs_command, job_command, cancel_command]
