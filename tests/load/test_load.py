"""Load: 1,000 small jobs from 20 concurrent clients, through a real web server, on the deployment's backends.

PostgreSQL, Redis, S3 and two `carml worker` processes (concurrency 2 each) behind `carml web` on loopback.
Every job must reach a final state exactly once (no job lost, none duplicated, one result and one output object
each), and the web must stay responsive meanwhile: a probe times a status request (GET /jobs/<id>) and the
health check for the whole run. The numbers are printed (run with -s to see them).
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select
from support import PROJECT_ROOT, unique_tag

from carml.accounts import create_token, create_user
from carml.db.models import Job, JobShard, JobStatus, OutputObject, Result, Role
from carml.db.session import session_scope
from carml.settings import load_settings

CLIENTS = 20
JOBS = 1000
USER = "load-tester"
# Small on purpose: the test measures the service's per-job overhead and its responsiveness, not inference.
JOB_BODY = {"kind": "evaluate", "model": "digits-cnn", "framework": "onnxruntime", "dataset": "digits", "limit": 5}
FINISH_WITHIN_S = 150  # about 60 s on 2 cores; the whole test stays under 3 minutes even when it fails
# Generous: everything shares 2 cores here, and while 20 clients submit back to back the web process is busy.
# Measured p99 on such a machine: 0.8-1.0 s while submitting, under 0.5 s after. A web that blocks on a lock
# or waits for a drained connection pool (30 s) does not pass.
P99_BOUND_MS = 2000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[str]:
    """`carml web` in its own process (as deployed: the clients here must not share its interpreter lock)."""
    port = _free_port()
    with log.open("w") as output:
        web = subprocess.Popen(
            [sys.executable, "-m", "carml", "web", "--host", "127.0.0.1", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while not _healthy(base_url):
                assert web.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.2)
            yield base_url
        finally:
            web.send_signal(signal.SIGTERM)
            try:
                web.wait(timeout=30)
            except subprocess.TimeoutExpired:
                web.kill()


def _healthy(base_url: str) -> bool:
    try:
        return requests.get(f"{base_url}/api/v1/health", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def _session(token: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def _submit(base_url: str, token: str, count: int, tag: str) -> list[str]:
    """One client: submit `count` jobs one after another; returns their ids."""
    ids = []
    with _session(token) as session:
        for _ in range(count):
            response = session.post(f"{base_url}/api/v1/jobs", json={**JOB_BODY, "hardware_tag": tag}, timeout=60)
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    return ids


@dataclass
class LatencyProbe:
    """Times a status request and a health check, back to back, until stopped: (request, sent at, seconds)."""

    base_url: str
    token: str
    job_id: str
    samples: list[tuple[str, float, float]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        requests_ = {"status": f"/api/v1/jobs/{self.job_id}", "health": "/api/v1/health"}
        with _session(self.token) as session:
            while not self.stop.is_set():
                for name, path in requests_.items():
                    sent = time.perf_counter()
                    response = session.get(self.base_url + path, timeout=30)
                    self.samples.append((name, sent, time.perf_counter() - sent))
                    assert response.status_code == 200, response.text
                self.stop.wait(0.05)

    def latencies(self, name: str, since: float = 0.0, until: float = float("inf")) -> list[float]:
        return [seconds for kind, sent, seconds in self.samples if kind == name and since <= sent < until]


def _p(values: list[float], percent: int) -> float:
    """The `percent`th percentile of `values`, in ms."""
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1] * 1000


def _latency_report(probe: LatencyProbe, started: float, submitted: float) -> str:
    lines = []
    for name in ("status", "health"):
        for phase, since, until in (("while submitting", started, submitted), ("while draining", submitted, 1e18)):
            values = probe.latencies(name, since, until)
            if len(values) >= 2:
                lines.append(
                    f"  {name} {phase}: p50 {_p(values, 50):.0f} ms, p90 {_p(values, 90):.0f} ms, "
                    f"p99 {_p(values, 99):.0f} ms, max {max(values) * 1000:.0f} ms ({len(values)} requests)"
                )
    return "\n".join(lines)


def _statuses(base_url: str, token: str) -> dict[str, str]:
    """Every job of the load tester by id, read through the API a page at a time."""
    statuses: dict[str, str] = {}
    with _session(token) as session:
        offset = 0
        while True:
            page = session.get(f"{base_url}/api/v1/jobs", params={"limit": 500, "offset": offset}, timeout=60)
            assert page.status_code == 200, page.text
            jobs = page.json()["jobs"]
            statuses.update((job["id"], job["status"]) for job in jobs)
            if len(jobs) < 500:
                return statuses
            offset += 500


def _chunks(total: int, parts: int) -> list[range]:
    """`total` split into `parts` nearly equal runs."""
    size, extra = divmod(total, parts)
    bounds = [i * size + min(i, extra) for i in range(parts + 1)]
    return [range(bounds[i], bounds[i + 1]) for i in range(parts)]


def _wait_until_final(base_url: str, token: str, deadline: float) -> dict[str, str]:
    while True:
        statuses = _statuses(base_url, token)
        unfinished = sum(not JobStatus(status).final for status in statuses.values())
        if not unfinished:
            return statuses
        assert time.perf_counter() < deadline, (
            f"{unfinished} of {len(statuses)} jobs not final after {FINISH_WITHIN_S} s"
        )
        time.sleep(0.5)


@pytest.mark.slow
def test_a_thousand_jobs_from_twenty_clients_all_finish_exactly_once(
    service_env: dict[str, str], start_worker: Callable[..., subprocess.Popen], tmp_path: Path
) -> None:
    tag = unique_tag("cpu")
    for _ in range(2):
        # One compute thread per model: four pool processes on two cores must not each spin a thread pool.
        start_worker(service_env, tag, concurrency=2, threads=1)
    settings = load_settings(service_env)
    create_user(settings, USER, Role.USER)
    token = create_token(settings, USER, "load")

    with serving(service_env, tmp_path / "web.log") as base_url:
        first = _submit(base_url, token, 1, tag)
        probe = LatencyProbe(base_url, token, first[0])
        probe_thread = threading.Thread(target=probe.run, name="load-probe", daemon=True)
        probe_thread.start()
        try:
            started = time.perf_counter()
            with ThreadPoolExecutor(CLIENTS) as clients:
                counts = [len(chunk) for chunk in _chunks(JOBS - 1, CLIENTS)]
                submitted = first + [
                    job_id for ids in clients.map(lambda n: _submit(base_url, token, n, tag), counts) for job_id in ids
                ]
            submit_s = time.perf_counter() - started
            statuses = _wait_until_final(base_url, token, started + FINISH_WITHIN_S)
            finish_s = time.perf_counter() - started
        finally:
            probe.stop.set()
            probe_thread.join(timeout=30)

    status_p99, health_p99 = _p(probe.latencies("status"), 99), _p(probe.latencies("health"), 99)
    print(
        f"\n{JOBS} jobs from {CLIENTS} clients: submitted in {submit_s:.1f} s ({JOBS / submit_s:.0f} jobs/s), "
        f"all final after {finish_s:.1f} s ({JOBS / finish_s:.1f} jobs/s)\n"
        f"status request p99 {status_p99:.0f} ms, health p99 {health_p99:.0f} ms over the whole run\n"
        + _latency_report(probe, started, started + submit_s)
    )

    assert len(submitted) == len(set(submitted)) == JOBS
    assert set(statuses) == set(submitted), "the API lists exactly the jobs that were submitted"
    with session_scope(settings.database) as session:
        jobs = dict(session.execute(select(Job.id, Job.status).where(Job.owner == USER)).all())
        results = dict(session.execute(select(Result.job_id, func.count()).group_by(Result.job_id)).all())
        outputs = session.execute(
            select(OutputObject.job_id, OutputObject.shard_index, func.count()).group_by(
                OutputObject.job_id, OutputObject.shard_index
            )
        ).all()
        shards = dict(session.execute(select(JobShard.job_id, func.count()).group_by(JobShard.job_id)).all())
    assert set(jobs) == set(submitted), "no job lost, none added"
    assert {status for status in jobs.values()} == {JobStatus.SUCCEEDED}, jobs
    assert set(results) == set(submitted) and set(results.values()) == {1}, "one result per job"
    assert all(count == 1 for _, _, count in outputs) and len(outputs) == JOBS, "one output object per shard"
    assert set(shards.values()) == {1}
    assert status_p99 < P99_BOUND_MS and health_p99 < P99_BOUND_MS
