"""A whole CarML deployment on this machine for the benchmarks: database, broker, object store, web, workers.

Two back ends, the same code as users run:
- "servers": the deployment's parts — PostgreSQL (a fresh database on 127.0.0.1:5432, dropped afterwards), Redis
  (127.0.0.1:6379) and an S3 server (moto's, in a process of its own, standing in for MinIO);
- "embedded": the one-command default — SQLite, the filesystem queue and the local-disk object store.

`carml web` and every `carml worker` run as processes of their own, as deployed, so the benchmark process (the
client) never shares an interpreter lock with them. Requests go over HTTP with a bearer token.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Threads of the one gunicorn worker process of `start_web("gunicorn")`: one machine's share of docker-compose.yml's
#: 2 × 16 (each request waiting for its job holds one).
GUNICORN_THREADS = 8
POSTGRES = "127.0.0.1:5432"
POSTGRES_ROLES = ("postgres", "root")  # the first that may connect and CREATE DATABASE is used
REDIS_URL = "redis://127.0.0.1:6379/0"
FINAL_STATES = {"succeeded", "failed", "cancelled", "timed_out"}
BACKENDS = ("servers", "embedded")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process {process.args} exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class _Postgres:
    """A fresh database on the local server, created for one benchmark and dropped after it."""

    def __init__(self) -> None:
        import psycopg
        from psycopg import sql

        self.name = f"carml_bench_{secrets.token_hex(5)}"
        for role in POSTGRES_ROLES:
            try:
                with self._admin(role) as connection:
                    connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
            except psycopg.OperationalError:
                continue
            self.role = role
            self.url = f"postgresql+psycopg://{role}@{POSTGRES}/{self.name}"
            return
        raise RuntimeError(f"PostgreSQL at {POSTGRES} refused every role of {POSTGRES_ROLES}")

    @staticmethod
    def _admin(role: str) -> Any:
        import psycopg

        host, port = POSTGRES.split(":")
        return psycopg.connect(host=host, port=int(port), user=role, dbname="postgres", autocommit=True)

    def drop(self) -> None:
        from psycopg import sql

        with self._admin(self.role) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))


@contextlib.contextmanager
def fresh_postgres() -> Iterator[str]:
    """A new, empty database on the local server for one run; yields its URL and drops it whatever happens."""
    from carml.db.session import dispose_engines

    database = _Postgres()
    try:
        yield database.url
    finally:
        dispose_engines()  # this process's pooled connections must not keep the database alive
        database.drop()


class BenchService:
    """Start with `with BenchService(workdir, backend) as service:`; then `start_web()`, `start_worker(tag)`."""

    def __init__(
        self,
        workdir: Path,
        backend: str = "servers",
        manifest_dirs: tuple[Path, ...] = (),
        env: dict[str, str] | None = None,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        self.workdir, self.backend = workdir, backend
        self.manifest_dirs = manifest_dirs
        self.extra_env = dict(env or {})
        self.env: dict[str, str] = {}
        self.base_url = ""
        self.token = ""
        self._processes: list[subprocess.Popen[bytes]] = []
        self._postgres: _Postgres | None = None
        self._workers = 0

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> BenchService:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.env = self._backend_env()
            if self.manifest_dirs:
                catalog = [PROJECT_ROOT / "manifests", *self.manifest_dirs]
                self.env["CARML_MANIFEST_DIRS"] = os.pathsep.join(str(d) for d in catalog)
            self.env.update(self.extra_env)
            self._migrate_and_sign_up()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        for process in reversed(self._processes):
            _stop(process)
        self._processes.clear()
        if self._postgres is not None:
            from carml.db.session import dispose_engines

            dispose_engines()  # this process's pooled connections must not keep the database alive
            self._postgres.drop()
            self._postgres = None

    def _backend_env(self) -> dict[str, str]:
        env = {
            "CARML_HOME": str(self.workdir / "home"),
            "CARML_CACHE_DIR": str(self.workdir / "cache"),
        }
        if self.backend == "embedded":
            return env  # SQLite, the filesystem queue and the local object store, all under CARML_HOME
        self._postgres = _Postgres()
        s3_port = free_port()
        s3 = self._spawn([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)], "s3")
        _wait_for_port(s3_port, s3)
        return {
            **env,
            "CARML_DATABASE_URL": self._postgres.url,
            "CARML_BROKER_URL": REDIS_URL,
            "CARML_OBJECT_STORE": f"s3://carml-bench-{secrets.token_hex(4)}",
            "CARML_S3_ENDPOINT": f"127.0.0.1:{s3_port}",
            "CARML_S3_ACCESS_KEY": "bench",
            "CARML_S3_SECRET_KEY": "bench-secret",
            "CARML_S3_SECURE": "false",
            "CARML_S3_REGION": "us-east-1",
        }

    def _migrate_and_sign_up(self) -> None:
        from carml.accounts import create_token, create_user
        from carml.db.migrate import upgrade

        settings = self.settings()
        upgrade(settings.database)
        create_user(settings, "bench", role="publisher")
        self.token = create_token(settings, "bench", "bench")

    def settings(self) -> Any:
        from carml.settings import load_settings

        return load_settings(self.env)

    def _spawn(self, command: list[str], name: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
        )
        self._processes.append(process)
        return process

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    # ------------------------------------------------------------------ processes
    def start_web(self, server: str = "werkzeug") -> str:
        """The web app on a free port; returns its base URL once it answers. `server`: `werkzeug` (`carml web`, Flask's
        threaded server) or `gunicorn` (as the Dockerfile and docker-compose.yml serve it: the gthread worker)."""
        port = free_port()
        if server == "gunicorn":
            gunicorn = str(Path(sys.executable).with_name("gunicorn"))
            address, threads = f"127.0.0.1:{port}", str(GUNICORN_THREADS)
            command = [gunicorn, "webapp:create_app()", "-b", address, "-w", "1", "-k", "gthread", "--threads", threads]
        else:
            command = [sys.executable, "-m", "carml", "web", "--host", "127.0.0.1", "--port", str(port)]
        web = self._spawn(command, "web", self.env)
        _wait_for_port(port, web, timeout=60)
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    def start_worker(
        self,
        tag: str,
        concurrency: int = 1,
        threads: int | None = None,
        timeout: float = 90,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """`carml worker` for `tag`, returned once it is registered as live; `env` adds to (or overrides) the
        deployment's environment for this worker only (e.g. a fresh CARML_CACHE_DIR)."""
        from carml.jobs.workers import live_workers

        settings = self.settings()
        before = {worker.id for worker in live_workers(settings, tag)}
        command = [sys.executable, "-m", "carml", "worker", "--hardware", tag, "--concurrency", str(concurrency)]
        if threads:
            command += ["--threads", str(threads)]
        self._workers += 1
        name = f"worker-{tag}-{self._workers}"
        process = self._spawn(command, name, {**self.env, **(env or {})})
        deadline = time.monotonic() + timeout
        while not ({worker.id for worker in live_workers(settings, tag)} - before):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker for {tag} did not start:\n{self.log_tail(name)}")
            time.sleep(0.1)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        _stop(process)
        if process in self._processes:
            self._processes.remove(process)

    # ------------------------------------------------------------------ API
    def session(self) -> requests.Session:
        """An HTTP session that sends this deployment's bearer token."""
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        return session

    def submit(self, session: requests.Session, body: dict[str, Any]) -> str:
        """POST /api/v1/jobs with a JSON body (an evaluation); returns the job id."""
        response = session.post(f"{self.base_url}/api/v1/jobs", json=body, timeout=120)
        if response.status_code != 201:
            raise RuntimeError(f"submission refused ({response.status_code}): {response.text}")
        return str(response.json()["id"])

    def wait(
        self,
        session: requests.Session,
        job_id: str,
        timeout: float = 3600,
        poll_s: float = 0.05,
        long_poll_s: float | None = None,
        confusion: str = "matrix",
    ) -> dict:
        """GET /api/v1/jobs/ID until the job is final; returns its summary (raises unless it succeeded).

        With `long_poll_s`, each GET asks the server to hold it until the job ends (`?wait=`), so the answer comes
        as the job ends and the client does not load a busy machine with rapid polls; else it polls every `poll_s`.
        `confusion`: how the result shows its confusion matrix (`?confusion=`: matrix, cells or none).
        """
        deadline = time.monotonic() + timeout
        params: dict[str, Any] = {"confusion": confusion}
        if long_poll_s:
            params["wait"] = long_poll_s
        while True:
            response = session.get(
                f"{self.base_url}/api/v1/jobs/{job_id}", params=params, timeout=60 + (long_poll_s or 0)
            )
            response.raise_for_status()
            summary: dict[str, Any] = response.json()
            if summary["status"] in FINAL_STATES:
                if summary["status"] != "succeeded":
                    raise RuntimeError(f"job {job_id} {summary['status']}: {summary.get('error')}")
                return summary
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {summary['status']} after {timeout:.0f} s")
            if not long_poll_s:
                time.sleep(poll_s)
