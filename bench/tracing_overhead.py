"""What stage tracing costs a shard: the same evaluation at trace level `none` and `stage`, side by side.

Timed is what a user pays from a worker claiming a shard to its result being committed: the worker's shard
function (`carml.jobs.execution.run_shard`) run here, in the bench process. The two levels differ only in
work done in that process (building the spans, writing them in the shard's transaction), so a broker and a
worker process would add noise and nothing else. Jobs are submitted outside the timed part, and the model
is loaded (into one model cache, as a worker keeps it) before anything is timed.

A run of one level is `--jobs` shards back to back (by default as many as take about `--run-seconds`);
the levels alternate shard by shard in ABBA order, so drift weighs on both alike, and every case repeats
`--repeats` times. Per level it reports the median run seconds, the spans and rows each shard wrote, the
milliseconds its spans took to save (`ShardTrace.save`, timed here) and the garbage collector ran; per case
the overhead stage/none - 1 of the median wall times, and the median, min and max of the repeats' own ratios.
On a shared machine wall time also counts the waits for a CPU that other work holds, so the same overhead
is given in CPU time too: this process's and, when PostgreSQL runs on this machine, its backends' for the
bench's database (the work a shard causes, whoever's turn it is on the CPU).

Database: a fresh PostgreSQL database created on 127.0.0.1:5432 and dropped at the end (default),
an existing one (`--database-url`, migrated to head, not dropped), or a fresh SQLite file (`--sqlite`).

Run: .venv/bin/python bench/tracing_overhead.py [--batch-size 32 1] [--repeats 5] [--run-seconds 3] [--model M
--framework F --dataset D --limit N] [--database-url URL | --sqlite]; writes bench/results/tracing_overhead.json
(or --out FILE).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_record import default_out, write_result
from service_harness import PROJECT_ROOT, fresh_postgres
from sqlalchemy import func, select, text
from tracing_meters import CpuMeter, GcTimer, SaveTimer

from carml.db.migrate import upgrade
from carml.db.models import SpanSet, StageTiming, TraceSpan
from carml.db.session import session_scope
from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache
from carml.jobs.service import EvaluationRequest, submit_evaluation
from carml.jobs.workers import register_worker
from carml.settings import Settings, load_settings

LEVELS = ("none", "stage")
WORKER_ID = "bench@tracing-overhead"
HARDWARE_TAG = "bench"


@dataclass
class LevelRuns:
    """What one trace level's runs of a case measured."""

    runs_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)  # per run: this process and the database server's backends
    gc_s: list[float] = field(default_factory=list)  # per shard, in the garbage collector
    save_s: list[float] = field(default_factory=list)  # per shard, in ShardTrace.save
    spans_per_shard: int = 0
    span_rows_per_shard: int = 0  # span sets: one per traced shard
    timing_rows_per_shard: int = 0

    def summary(self, shards_per_run: int) -> dict[str, Any]:
        median = statistics.median(self.runs_s)
        save_ms = statistics.median(self.save_s) * 1000 if self.save_s else 0.0
        return {
            "median_run_s": round(median, 6),
            "median_shard_ms": round(median / shards_per_run * 1000, 3),
            "runs_s": [round(s, 6) for s in self.runs_s],
            "median_run_cpu_s": round(statistics.median(self.cpu_s), 6),
            "gc_ms_per_shard": round(statistics.mean(self.gc_s) * 1000, 3),
            "spans_per_shard": self.spans_per_shard,
            "stage_timing_rows_per_shard": self.timing_rows_per_shard,
            "rows_per_shard": self.span_rows_per_shard + self.timing_rows_per_shard,
            "span_save_ms_per_shard": round(save_ms, 3),
            "span_save_us_per_span": round(save_ms * 1000 / self.spans_per_shard, 2) if self.spans_per_shard else None,
        }


@dataclass(frozen=True)
class Case:
    model: str
    framework: str
    dataset: str
    batch_size: int
    limit: int | None


@dataclass(frozen=True)
class Shard:
    """One measured shard: seconds from claim to committed result, CPU seconds, and of those in ShardTrace.save
    and the garbage collector."""

    job_id: str
    wall_s: float
    cpu_s: float
    save_s: float
    gc_s: float


class Bench:
    """Submits and runs shards of one case against one database, timing each run_shard call."""

    def __init__(self, settings: Settings, case: Case, cpu: CpuMeter):
        self.settings, self.case, self.cpu = settings, case, cpu
        self.models = ModelCache()
        self.timer = SaveTimer()
        self.gc = GcTimer()

    def submit(self, level: str) -> str:
        request = EvaluationRequest(
            model=self.case.model,
            framework=self.case.framework,
            dataset=self.case.dataset,
            hardware_tag=HARDWARE_TAG,
            batch_size=self.case.batch_size,
            limit=self.case.limit,
            trace_level=level,
        )
        return submit_evaluation(self.settings, request, lambda *_: None)

    def run(self, level: str) -> Shard:
        """Submit a job and run its shard as a worker would, measuring from the claim to the committed result."""
        job_id = self.submit(level)
        self.timer.take()
        self.gc.take()
        cpu = self.cpu.snapshot()
        started = time.perf_counter()
        status = run_shard(self.settings, job_id, 0, WORKER_ID, self.models)
        elapsed = time.perf_counter() - started
        cpu_s = self.cpu.since(cpu)
        if status != "succeeded":
            raise SystemExit(f"shard of job {job_id} ended {status}")
        return Shard(job_id, elapsed, cpu_s, self.timer.take(), self.gc.take())

    def rows(self, job_id: str) -> tuple[int, int, int]:
        """(spans, span set rows, stage timing rows) the job's shard wrote; the `submit` span comes from submission."""
        with session_scope(self.settings.database) as session:
            spans = session.scalar(select(func.count()).where(TraceSpan.job_id == job_id, TraceSpan.name != "submit"))
            sets = session.scalar(
                select(func.count()).where(SpanSet.job_id == job_id, SpanSet.shard_index.is_not(None))
            )
            timings = session.scalar(select(func.count()).where(StageTiming.job_id == job_id))
        return spans or 0, sets or 0, timings or 0


def measure(bench: Bench, repeats: int, jobs: int | None, run_seconds: float) -> dict[str, Any]:
    """Both levels of one case: warm-up, calibration, then `repeats` alternating runs."""
    register_worker(bench.settings, WORKER_ID, HARDWARE_TAG)  # a fresh heartbeat: submissions need a live worker
    levels = {level: LevelRuns() for level in LEVELS}
    with bench.timer.installed(), bench.gc.installed():
        for level in LEVELS:  # the first shard loads the model and warms every code path
            bench.run(level)
        shards = jobs or max(1, math.ceil(run_seconds / bench.run("none").wall_s))
        ratios, last_jobs = [], {}
        for repeat in range(repeats):
            register_worker(bench.settings, WORKER_ID, HARDWARE_TAG)
            totals = {level: [0.0, 0.0] for level in LEVELS}  # wall, CPU
            for index in range(shards):
                # ABBA: each level goes first as often as second, within a repeat and across repeats.
                order = LEVELS if (index + repeat) % 2 == 0 else LEVELS[::-1]
                for level in order:
                    shard = bench.run(level)
                    last_jobs[level] = shard.job_id
                    totals[level][0] += shard.wall_s
                    totals[level][1] += shard.cpu_s
                    levels[level].gc_s.append(shard.gc_s)
                    if level == "stage":
                        levels[level].save_s.append(shard.save_s)
            for level in LEVELS:
                levels[level].runs_s.append(totals[level][0])
                levels[level].cpu_s.append(totals[level][1])
            ratios.append(totals["stage"][0] / totals["none"][0] - 1)
            print(f"  repeat {repeat + 1}/{repeats}: " + "  ".join(f"{lv} {totals[lv][0]:.3f} s" for lv in LEVELS))
    for level, job_id in last_jobs.items():  # every measured shard of a level writes as many rows
        runs = levels[level]
        runs.spans_per_shard, runs.span_rows_per_shard, runs.timing_rows_per_shard = bench.rows(job_id)
    none, stage = (statistics.median(levels[level].runs_s) for level in LEVELS)
    cpu = {level: statistics.median(levels[level].cpu_s) for level in LEVELS}
    return {
        "model": bench.case.model,
        "framework": bench.case.framework,
        "dataset": bench.case.dataset,
        "batch_size": bench.case.batch_size,
        "limit": bench.case.limit,
        "shards_per_run": shards,
        "levels": {level: runs.summary(shards) for level, runs in levels.items()},
        "overhead_percent": round((stage / none - 1) * 100, 3),
        "cpu_overhead_percent": round((cpu["stage"] / cpu["none"] - 1) * 100, 3),
        "repeat_overhead_percent": {
            "median": round(statistics.median(ratios) * 100, 3),
            "min": round(min(ratios) * 100, 3),
            "max": round(max(ratios) * 100, 3),
        },
    }


def database_version(url: str) -> str:
    with session_scope(url) as session:
        query = "SHOW server_version" if url.startswith("postgresql") else "SELECT sqlite_version()"
        return str(session.scalar(text(query)))


@contextlib.contextmanager
def database(args: argparse.Namespace, folder: Path) -> Iterator[str]:
    if args.sqlite:
        yield f"sqlite:///{folder / 'bench.sqlite3'}"
    elif args.database_url:
        yield args.database_url
    else:
        with fresh_postgres() as url:
            yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="digits-cnn")
    parser.add_argument("--framework", default="onnxruntime")
    parser.add_argument(
        "--dataset",
        default="digits",
        help="a dataset name or file, as `carml submit` takes",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        nargs="+",
        default=[32, 1],
        help="one case per batch size",
    )
    parser.add_argument("--limit", type=int, help="items per shard (default: the whole dataset)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--jobs",
        type=int,
        help="shards per run of a level (default: enough for --run-seconds)",
    )
    parser.add_argument(
        "--run-seconds",
        type=float,
        default=3.0,
        help="about how long one run of a level takes",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--database-url",
        help="an existing database (migrated to head; its rows are kept)",
    )
    where.add_argument(
        "--sqlite",
        action="store_true",
        help="a fresh SQLite file instead of PostgreSQL",
    )
    parser.add_argument(
        "--manifest-dir",
        type=Path,
        action="append",
        default=[],
        help="a manifest folder to add to the catalog, e.g. one `bench/image_model.py` wrote (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=default_out("tracing_overhead"))
    args = parser.parse_args()
    if args.repeats < 1 or (args.jobs is not None and args.jobs < 1) or min(args.batch_size) < 1:
        parser.error("--repeats, --jobs and --batch-size must be at least 1")

    with (
        tempfile.TemporaryDirectory(prefix="carml-bench-") as folder,
        database(args, Path(folder)) as url,
    ):
        settings = load_settings(
            {
                "CARML_HOME": folder,
                "CARML_CACHE_DIR": f"{folder}/cache",
                "CARML_OBJECT_STORE": f"{folder}/objects",
                "CARML_DATABASE_URL": url,
                "CARML_MANIFEST_DIRS": os.pathsep.join(
                    str(d) for d in (PROJECT_ROOT / "manifests", *args.manifest_dir)
                ),
            }
        )
        upgrade(settings.database)
        cases, cpu = [], CpuMeter(url)
        try:
            for batch_size in args.batch_size:
                case = Case(args.model, args.framework, args.dataset, batch_size, args.limit)
                print(f"{case.model} ({case.framework}) on {case.dataset}, batch {batch_size}:")
                cases.append(
                    measure(
                        Bench(settings, case, cpu),
                        args.repeats,
                        args.jobs,
                        args.run_seconds,
                    )
                )
        finally:
            cpu.close()
        backend = url.split(":", 1)[0].split("+", 1)[0]
        figures = {
            "database": {"backend": backend, "version": database_version(url)},
            "repeats": args.repeats,
        }
    out = write_result(args.out, "tracing_overhead", {**figures, "cases": cases})
    _print_table(cases)
    print(f"wrote {out}")


def _print_table(cases: list[dict[str, Any]]) -> None:
    print(
        f"\n{'batch':>5} {'level':<6} {'shards':>6} {'run s':>8} {'shard ms':>9} {'cpu s':>7} {'spans':>6} "
        f"{'rows':>6} {'save ms':>8} {'us/span':>8} {'gc ms':>6} {'overhead':>9} {'cpu ovh':>8}"
    )
    for case in cases:
        for level in LEVELS:
            row = case["levels"][level]
            wall = f"{case['overhead_percent']:+8.2f}%" if level == "stage" else ""
            cpu = f"{case['cpu_overhead_percent']:+7.2f}%" if level == "stage" else ""
            per_span = row["span_save_us_per_span"]
            print(
                f"{case['batch_size']:>5} {level:<6} {case['shards_per_run']:>6} {row['median_run_s']:>8.3f} "
                f"{row['median_shard_ms']:>9.2f} {row['median_run_cpu_s']:>7.3f} {row['spans_per_shard']:>6} "
                f"{row['rows_per_shard']:>6} {row['span_save_ms_per_shard']:>8.2f} "
                f"{per_span if per_span is not None else '':>8} {row['gc_ms_per_shard']:>6.2f} {wall:>9} {cpu:>8}"
            )


if __name__ == "__main__":
    main()
