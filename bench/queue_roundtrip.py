"""Submit-to-result time of a 450-item evaluation through the queue, against the same run in process.

Backends: the embedded default (SQLite + the local filesystem queue) always; Redis + PostgreSQL too
when --database-url is given (the database must exist and be empty or migrated). Prints seconds and
the queued/in-process ratio. Run: .venv/bin/python bench/queue_roundtrip.py [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from carml.datasets.digits import load_digits_split
from carml.db.migrate import upgrade
from carml.jobs.service import EvaluationRequest, get_job, submit_evaluation
from carml.jobs.workers import live_workers
from carml.runs import evaluate_model
from carml.settings import load_settings
from worker.celery_app import celery_enqueuer, create_celery_app

ITEMS = 450


def _dataset(folder: Path) -> Path:
    images, labels = load_digits_split("train")
    path = folder / "digits-450.npz"
    np.savez(path, x=images[:ITEMS], y=labels[:ITEMS])
    return path


def _queued_seconds(env: dict[str, str], dataset: Path, repeats: int) -> list[float]:
    settings = load_settings(env)
    upgrade(settings.database)
    worker = subprocess.Popen(
        [sys.executable, "-m", "carml", "worker", "--hardware", "bench"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not live_workers(settings, "bench"):
            time.sleep(0.2)
        enqueue = celery_enqueuer(create_celery_app(settings))
        times = []
        for _ in range(repeats + 1):  # the first run loads the model into the worker's cache
            started = time.perf_counter()
            job_id = submit_evaluation(
                settings,
                EvaluationRequest(
                    model="digits-cnn", framework="onnxruntime", dataset=str(dataset), hardware_tag="bench"
                ),
                enqueue,
            )
            while get_job(settings, job_id).status not in ("succeeded", "failed", "cancelled", "timed_out"):
                time.sleep(0.005)
            times.append(time.perf_counter() - started)
        return times[1:]
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--database-url", help="PostgreSQL URL to also measure Redis + PostgreSQL.")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        dataset = _dataset(Path(folder))
        base = {"CARML_HOME": folder, "CARML_CACHE_DIR": f"{folder}/cache", "CARML_WORKER_HEARTBEAT_S": "1"}
        settings = load_settings(base)
        local = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            evaluate_model(settings, "digits-cnn", str(dataset), framework="onnxruntime")
            local.append(time.perf_counter() - started)
        rows = {
            "in process (model load included)": local,
            "queued, embedded default": _queued_seconds(base, dataset, args.repeats),
        }
        if args.database_url:
            rows["queued, Redis + PostgreSQL"] = _queued_seconds(
                {**base, "CARML_DATABASE_URL": args.database_url, "CARML_BROKER_URL": args.redis_url},
                dataset,
                args.repeats,
            )
    reference = statistics.median(local)
    print(f"{ITEMS}-item evaluation of digits-cnn (onnxruntime), median of {args.repeats}:")
    for name, times in rows.items():
        median = statistics.median(times)
        print(f"  {name:<36} {median:7.3f} s   {median / reference:5.2f}x in-process")


if __name__ == "__main__":
    main()
