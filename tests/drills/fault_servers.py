"""Private server processes that a fault drill may kill or restart: Redis, PostgreSQL and an S3 (moto) server.

The Redis, PostgreSQL and RabbitMQ servers on the standard ports are shared by everything else that runs on
the machine, so no drill ever stops them; each drill that takes a server down starts its own, on a free port,
with its files in a temporary folder that goes with it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's choice)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((LOOPBACK, port)) == 0


def wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server for port {port} exited with {process.returncode} before listening")
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on {LOOPBACK}:{port} after {timeout} s")
        time.sleep(0.05)


def _stop(process: subprocess.Popen | None, sig: int) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class RedisServer:
    """redis-server with an append-only file synced on every write, as a deployment would run it (compose
    keeps Redis's data on a volume): a restart keeps the queued messages."""

    def __init__(self, folder: Path):
        self.folder, self.port = folder, free_port()
        self.process: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [binary, "--bind", LOOPBACK, "--port", str(self.port), "--dir", str(self.folder)]
            + ["--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=(self.folder / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, self.process)

    def stop(self) -> None:
        """SIGTERM, as `docker stop` or systemd sends it: Redis flushes its file and exits."""
        _stop(self.process, signal.SIGTERM)


class PostgresServer:
    """A PostgreSQL cluster of its own (initdb), listening on loopback only, trust authentication.

    PostgreSQL refuses to run as root; when the tests run as root, the cluster's folder is given to the
    `postgres` account of the PostgreSQL packages and every server command runs as it (`runuser`).
    """

    SUPERUSER = "postgres"

    def __init__(self) -> None:
        self.port = free_port()
        self.bin = self._binaries()
        self.folder = Path(tempfile.mkdtemp(prefix="carml-drill-pg-"))
        self.data = self.folder / "data"
        self.run_as = self._unprivileged_account()
        if self.run_as is not None:
            account = pwd.getpwnam(self.run_as)
            os.chown(self.folder, account.pw_uid, account.pw_gid)

    @staticmethod
    def _binaries() -> Path:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[4]))
        if found:
            return Path(found[-1]).parent
        pg_ctl = shutil.which("pg_ctl")
        if pg_ctl is None:
            raise RuntimeError("no PostgreSQL server binaries (pg_ctl, initdb) on this machine")
        return Path(pg_ctl).parent

    @staticmethod
    def _unprivileged_account() -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("running as root and there is no `postgres` account to run PostgreSQL as") from None
        return "postgres"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", self.run_as, "--"] if self.run_as else []
        done = subprocess.run(prefix + list(command), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.SUPERUSER}@{LOOPBACK}:{self.port}/carml"

    def init(self) -> None:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", self.SUPERUSER, "--auth=trust", "-E", "UTF8", "-N"
        )
        # Loopback only, the socket in our own folder, no fsync: a test cluster, fast to start and stop.
        conf = {
            "port": str(self.port),
            "listen_addresses": f"'{LOOPBACK}'",
            "unix_socket_directories": f"'{self.folder}'",
            "fsync": "off",
        }
        with (self.data / "postgresql.auto.conf").open("a") as auto_conf:
            auto_conf.writelines(f"{name} = {value}\n" for name, value in conf.items())
        self.start()
        self._run(str(self.bin / "createdb"), "-h", LOOPBACK, "-p", str(self.port), "-U", self.SUPERUSER, "carml")

    def start(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "server.log"), "-w", "start")

    def stop(self) -> None:
        """A fast shutdown: every open connection is terminated, as in a restart or a failover."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


class MotoS3Server:
    """moto's S3 server in a process of its own, so that a drill can kill it as a real outage."""

    def __init__(self, log: Path):
        self.port, self.log = free_port(), log
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, self.process)

    def kill(self) -> None:
        _stop(self.process, signal.SIGKILL)
