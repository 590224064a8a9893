"""What the tracing benchmark reads besides wall time: time saving spans, time in the garbage collector, CPU time
of this process and of the database's backends."""

from __future__ import annotations

import contextlib
import functools
import gc
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from carml.tracing.shard_trace import ShardTrace

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", None)  # None: a Unix socket


class SaveTimer:
    """Seconds spent in `ShardTrace.save` (building and adding a shard's spans) since the last `take`."""

    def __init__(self) -> None:
        self.seconds = 0.0

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = ShardTrace.save

        @functools.wraps(original)
        def timed(trace: ShardTrace, *args: Any, **kwargs: Any) -> None:
            started = time.perf_counter()
            try:
                original(trace, *args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        ShardTrace.save = timed  # type: ignore[method-assign]
        try:
            yield
        finally:
            ShardTrace.save = original  # type: ignore[method-assign]

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


class GcTimer:
    """Seconds the garbage collector ran since the last `take` (collections that spans' objects may bring on)."""

    def __init__(self) -> None:
        self.seconds, self.started = 0.0, 0.0

    def __call__(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self.started

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        gc.callbacks.append(self)
        try:
            yield
        finally:
            gc.callbacks.remove(self)

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


class CpuMeter:
    """CPU seconds used by this process and, on a PostgreSQL server on this machine, by the backends serving the
    bench's database: the work a shard costs, which a loaded machine's scheduling does not blur as it blurs
    wall time. Backends are read from /proc/PID/schedstat (nanoseconds on the CPU); elsewhere only this process.
    """

    def __init__(self, url: str):
        self.connection: Any = None
        parts = make_url(url)
        if (
            parts.get_backend_name() == "postgresql"
            and parts.host in LOCAL_HOSTS
            and Path("/proc/self/schedstat").exists()
        ):
            import psycopg

            self.connection = psycopg.connect(
                host=parts.host,
                port=parts.port or 5432,
                user=parts.username,
                password=parts.password,
                dbname=parts.database,
                autocommit=True,
            )

    def backends_ns(self) -> dict[int, int]:
        if self.connection is None:
            return {}
        pids = self.connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        found = {}
        for (pid,) in pids:
            with contextlib.suppress(OSError, ValueError):  # not on this machine, or gone since
                found[pid] = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
        return found

    def snapshot(self) -> tuple[float, dict[int, int]]:
        return time.process_time(), self.backends_ns()

    def since(self, before: tuple[float, dict[int, int]]) -> float:
        process, backends = self.snapshot()
        server_ns = sum(ns - before[1].get(pid, 0) for pid, ns in backends.items())
        return process - before[0] + server_ns / 1e9

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
