"""Added latency per prediction: one small prediction through the service against the same predict in process.

In process: `digits-cnn` (ONNX Runtime) is loaded once, then each request is what a worker does per input once
it holds the bytes: preprocess (PNG decode, resize, normalize), predict, postprocess, answer as JSON.

Through the service: `carml web` (or, with `--web-server gunicorn`, gunicorn's gthread worker as the Docker image
serves the app) and one warm `carml worker` on the "servers" back end (PostgreSQL, Redis as
the broker, moto's S3 server standing in for MinIO) or the embedded one. Each request is what a user's client
does: POST /api/v1/jobs with the PNG (multipart) and learn the answer, either by asking the API to wait for the
job's end (`--client wait`: the `wait` field of the submission, then GET ?wait= if it is not over yet) or by
polling GET /api/v1/jobs/ID every `--poll-ms` (`--client poll`).

The two alternate in blocks (`--rounds`), so drift on a shared machine weighs on both; both report p50, p90 and
p99 over every request, and added = service - in process at each percentile. Targets: <= 5 ms added at p50,
<= 15 ms at p99, on the Redis broker.

Where the time goes: each job's trace (its `submit`, `shard`, stage and `store` spans, on the same clock as the
client) splits a request into phases, reported as medians. moto's share is measured apart: the round trip of a
small object put and get with one reused client, from this process. And as the machine is shared and noisy,
what each process spent: CPU milliseconds per request of the web app, the worker (with its pool process), moto,
this database's PostgreSQL backends and the client, over the service's timed requests.

Run: .venv/bin/python bench/prediction_latency.py [--requests 500] [--client wait|poll] [--backend servers]
[--web-server werkzeug|gunicorn]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from bench_record import default_out, write_result
from prediction_client import ServiceClient
from service_harness import BenchService

MODEL, FRAMEWORK = "digits-cnn", "onnxruntime"
TARGET_ADDED_P50_MS, TARGET_ADDED_P99_MS = 5.0, 15.0
PERCENTILES = (50, 90, 99)
# A request's moments, in order, as the client and the job's trace give them (see `_phases`).
PHASES = (
    ("http_to_handler", "client sends → submission handler starts"),
    ("submit", "submission checked, inputs stored, job recorded"),
    ("to_claim", "commit, enqueue, broker, worker dispatch → shard claimed"),
    ("to_first_stage", "claim committed, manifest, model cache"),
    ("fetch_input", "worker reads the input"),
    ("compute", "preprocess + predict + postprocess"),
    ("to_store", "answers encoded"),
    ("store", "outputs stored, result and job rows written"),
    ("to_client", "commit, job end noticed, answer sent to the client"),
)


def digit_png(index: int = 0) -> bytes:
    """A test-split digit as an 8x8 grayscale PNG, the model's own input size."""
    from carml.datasets.digits import load_digits_split
    from carml.zoo.digits_png import encode_png_gray

    images, _ = load_digits_split("test")
    return encode_png_gray(np.asarray(images[index], dtype=np.uint8).reshape(8, 8))


class ProcessCpu:
    """CPU time of the service's processes, by role, between `start()` and `stop()` (summed over blocks)."""

    def __init__(self, database: str):
        self.database = database
        self.spent: dict[str, float] = {}
        self._at_start: dict[int, tuple[str, float]] = {}

    def _processes(self) -> dict[int, tuple[str, psutil.Process]]:
        found: dict[int, tuple[str, psutil.Process]] = {}
        me = psutil.Process()
        found[me.pid] = ("client", me)
        for child in me.children(recursive=True):
            try:
                command = " ".join(child.cmdline())
            except psutil.Error:
                continue
            role = (
                "s3" if "moto.server" in command else "web" if " web " in command or "webapp:" in command else "worker"
            )
            found[child.pid] = (role, child)
        if self.database:
            for backend in psutil.process_iter(["username", "cmdline"]):
                command = " ".join(backend.info["cmdline"] or [])
                if backend.info["username"] == "postgres" and f" {self.database} " in command:
                    found[backend.pid] = ("postgres", backend)
        return found

    @staticmethod
    def _cpu(process: psutil.Process) -> float | None:
        try:
            times = process.cpu_times()
        except psutil.Error:
            return None
        return times.user + times.system

    def start(self) -> None:
        self._at_start = {}
        for pid, (role, process) in self._processes().items():
            cpu = self._cpu(process)
            if cpu is not None:
                self._at_start[pid] = (role, cpu)

    def stop(self) -> None:
        for pid, (role, process) in self._processes().items():
            cpu = self._cpu(process)
            if cpu is not None:
                before = self._at_start.get(pid, (role, 0.0))[1]  # a process started meanwhile counts whole
                self.spent[role] = self.spent.get(role, 0.0) + cpu - before

    def per_request_ms(self, requests: int) -> dict[str, float]:
        return {role: round(seconds * 1000 / requests, 3) for role, seconds in sorted(self.spent.items())}


def percentiles(samples: list[float]) -> dict[str, float]:
    values = np.asarray(samples, dtype=float)
    return {f"p{p}": round(float(np.percentile(values, p)), 3) for p in PERCENTILES} | {
        "mean": round(float(values.mean()), 3),
        "count": len(samples),
    }


# ---------------------------------------------------------------------------------------------- in process
class InProcess:
    """The model loaded once in this process, as a worker holds it; `request()` times one prediction."""

    def __init__(self, settings: Any, png: bytes):
        from carml.artifacts import ArtifactCache
        from carml.catalog import Catalog
        from carml.runs import open_predictor

        loaded = Catalog.load(settings.manifest_dirs).model(MODEL, FRAMEWORK)
        self.predictor, _ = open_predictor(loaded, ArtifactCache(settings), settings.device, settings.threads)
        self.png = png

    def request(self) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        prepared = self.predictor.preprocess("digit.png", self.png)
        raw = self.predictor.predict([prepared])[0]
        answer: dict[str, Any] = self.predictor.postprocess(prepared, raw).to_json()
        return (time.perf_counter() - started) * 1000, answer

    def close(self) -> None:
        self.predictor.close()


def _epoch_ns(iso: str) -> int:
    moment = datetime.fromisoformat(iso)
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def _phases(spans: list[dict[str, Any]], sent_ns: int, seen_ns: int) -> dict[str, float] | None:
    """A request's phases in ms from its trace; None when the trace lacks a span they need."""
    windows: dict[str, tuple[int, int]] = {}
    for span in spans:
        start = _epoch_ns(span["started_at"])
        windows.setdefault(span["name"], (start, start + round(span["duration_ms"] * 1e6)))
    needed = ("submit", "shard", "fetch", "postprocess", "store")
    if any(name not in windows for name in needed):
        return None
    marks = [
        sent_ns,
        windows["submit"][0],
        windows["submit"][1],
        windows["shard"][0],
        windows["fetch"][0],
        windows["fetch"][1],
        windows["postprocess"][1],
        windows["store"][0],
        windows["store"][1],
        seen_ns,
    ]
    return {name: (b - a) / 1e6 for (name, _), a, b in zip(PHASES, marks[:-1], marks[1:], strict=True)}


def s3_round_trips(settings: Any, size: int, count: int) -> dict[str, Any] | None:
    """moto's share: put and get of a `size`-byte object with one reused client (None off S3)."""
    from carml.storage import S3ObjectStore, open_object_store

    store = open_object_store(settings)
    if not isinstance(store, S3ObjectStore):
        return None
    data = b"x" * size
    store.put_bytes("bench/probe", data)  # creates the bucket if needed, opens the connection
    puts, gets = [], []
    for _ in range(count):
        started = time.perf_counter()
        store.put_bytes("bench/probe", data)
        puts.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        store.get_bytes("bench/probe")
        gets.append((time.perf_counter() - started) * 1000)
    return {"object_bytes": size, "put_ms": percentiles(puts), "get_ms": percentiles(gets)}


def _top1(answer: dict[str, Any]) -> Any:
    return answer["outputs"]["logits"]["top_k"][0]["label"]


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from carml.tracing.store import read_spans

    png = digit_png()
    with BenchService(workdir / "service", args.backend) as service:
        service.start_web(args.web_server)
        service.start_worker("cpu", concurrency=1, threads=args.worker_threads)
        settings = service.settings()
        local = InProcess(settings, png)
        client = ServiceClient(service, MODEL, FRAMEWORK, png, args.client, args.poll_ms, args.http)
        try:
            expected = _top1(local.request()[1])
            for _ in range(args.warmup):  # the worker loads the model on its first job; both sides warm up
                local.request()
                client.request()
            in_process: list[float] = []
            through_service: list[float] = []
            moments: list[tuple[str, int, int]] = []
            database = settings.database.rsplit("/", 1)[-1] if args.backend == "servers" else ""
            cpu = ProcessCpu(database)
            per_round = max(1, args.requests // args.rounds)
            for _ in range(args.rounds):
                for _ in range(per_round):
                    elapsed, answer = local.request()
                    in_process.append(elapsed)
                cpu.start()
                for _ in range(per_round):
                    elapsed, job, (sent, seen) = client.request()
                    through_service.append(elapsed)
                    moments.append((job["id"], sent, seen))
                    answer = job["result"]["predictions"][0]
                    if _top1(answer) != expected:
                        raise RuntimeError(f"the service answered {_top1(answer)}, in process {expected}")
                cpu.stop()
            phases: dict[str, list[float]] = {name: [] for name, _ in PHASES}
            for job_id, sent, seen in moments:
                found = _phases(read_spans(settings, job_id, 200)[1], sent, seen)
                for name, ms in (found or {}).items():
                    phases[name].append(ms)
            s3 = s3_round_trips(settings, len(png), min(200, args.requests)) if args.backend == "servers" else None
        finally:
            local.close()
    local_p, service_p = percentiles(in_process), percentiles(through_service)
    added = {f"p{p}": round(service_p[f"p{p}"] - local_p[f"p{p}"], 3) for p in PERCENTILES}
    return {
        "backend": args.backend,
        "broker": "redis" if args.backend == "servers" else "filesystem",
        "client": args.client,
        "http": args.http,
        "web_server": args.web_server,
        "poll_ms": args.poll_ms if args.client == "poll" else None,
        "worker_threads": args.worker_threads,
        "requests": len(through_service),
        "rounds": args.rounds,
        "in_process_ms": local_p,
        "service_ms": service_p,
        "added_ms": added,
        "ratio_p50": round(service_p["p50"] / local_p["p50"], 2),
        "targets": {
            "added_p50_ms": TARGET_ADDED_P50_MS,
            "added_p99_ms": TARGET_ADDED_P99_MS,
            "p50_met": added["p50"] <= TARGET_ADDED_P50_MS,
            "p99_met": added["p99"] <= TARGET_ADDED_P99_MS,
        },
        "phases_ms": {
            name: {"what": what, "p50": round(statistics.median(phases[name]), 3) if phases[name] else None}
            for name, what in PHASES
        },
        "traced_requests": len(phases[PHASES[0][0]]),
        "cpu_ms_per_request": cpu.per_request_ms(len(through_service)),
        "load_average_during": list(os.getloadavg()),
        "s3_round_trip": s3,
    }


def print_table(figures: dict[str, Any]) -> None:
    local, service, added = figures["in_process_ms"], figures["service_ms"], figures["added_ms"]
    client = f"{figures['client']}" + (f" every {figures['poll_ms']} ms" if figures["poll_ms"] else "")
    client += f", HTTP by {figures['http']}"
    print(f"{MODEL} ({FRAMEWORK}), one 8x8 PNG per request, {figures['requests']} requests, {figures['backend']}")
    print(f"client: {client}")
    print(f"{'':<12} {'p50':>9} {'p90':>9} {'p99':>9}  (ms)")
    for label, row in (("in process", local), ("service", service), ("added", added)):
        print(f"{label:<12} {row['p50']:>9.2f} {row['p90']:>9.2f} {row['p99']:>9.2f}")
    targets = figures["targets"]
    print(
        f"added p50 {added['p50']:.2f} ms (target <= {targets['added_p50_ms']:.0f}: "
        f"{'met' if targets['p50_met'] else 'missed'}), p99 {added['p99']:.2f} ms "
        f"(target <= {targets['added_p99_ms']:.0f}: {'met' if targets['p99_met'] else 'missed'})"
    )
    print(f"service / in process at p50: {figures['ratio_p50']:.1f}x")
    print(f"where the time goes (median ms of {figures['traced_requests']} traced requests):")
    for name, phase in figures["phases_ms"].items():
        value = "—" if phase["p50"] is None else f"{phase['p50']:8.2f}"
        print(f"  {name:<16} {value}  {phase['what']}")
    cpu = ", ".join(f"{role} {ms:.2f}" for role, ms in figures["cpu_ms_per_request"].items())
    print(f"CPU ms per request: {cpu} (load average {figures['load_average_during'][0]:.1f})")
    s3 = figures["s3_round_trip"]
    if s3:
        print(
            f"moto S3, {s3['object_bytes']}-byte object, reused client: put p50 {s3['put_ms']['p50']:.2f} ms, "
            f"get p50 {s3['get_ms']['p50']:.2f} ms"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="Timed requests each way (default 500).")
    parser.add_argument("--warmup", type=int, default=20, help="Untimed requests first, each way.")
    parser.add_argument("--rounds", type=int, default=5, help="Alternating blocks of in-process and service.")
    parser.add_argument("--client", choices=("wait", "poll"), default="wait", help="How the client learns the end.")
    parser.add_argument("--poll-ms", type=float, default=10.0, help="Polling interval of --client poll.")
    parser.add_argument(
        "--http",
        choices=("requests", "plain"),
        default="requests",
        help="The client's HTTP: `requests` (default), or a lean standard-library client on one kept-alive "
        "connection, which leaves out most of the client's own cost.",
    )
    parser.add_argument("--backend", choices=("servers", "embedded"), default="servers")
    parser.add_argument(
        "--web-server",
        choices=("werkzeug", "gunicorn"),
        default="werkzeug",
        help="What serves the web app: `carml web` (Flask's threaded server, default) or gunicorn's gthread worker, "
        "as the Docker image runs it.",
    )
    parser.add_argument("--worker-threads", type=int, help="`carml worker --threads` (default: not given).")
    parser.add_argument("--tiny", action="store_true", help="20 requests, 3 warm-up, 1 round: a smoke run.")
    parser.add_argument("--out", type=Path, default=default_out("prediction_latency"))
    args = parser.parse_args(argv)
    if args.tiny:
        args.requests, args.warmup, args.rounds = 20, 3, 1
    if args.requests < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--requests and --rounds must be at least 1, --warmup at least 0")
    workdir = Path(tempfile.mkdtemp(prefix="carml-latency-"))
    try:
        figures = measure(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(figures)
    print(f"wrote {write_result(args.out, 'prediction_latency', figures)}")


if __name__ == "__main__":
    main()
