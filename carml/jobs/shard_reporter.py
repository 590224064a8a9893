"""A running shard's progress writes and cancellation checks, done beside the model instead of between its batches.

Each is a database round trip (a write under the job's lock, a read). Made between batches they stalled the
model every `POLL_INTERVAL_S`: about 2 % of a CPU shard's time, more on a loaded database. Here a thread makes
them at the same pace while the batches run, and the batch loop only hands over its count and reads a flag, so
progress shows and a cancellation takes effect within one batch as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol


class ShardProgressLike(Protocol):
    """What `carml.jobs.execution._ShardProgress` offers: throttled writes, checks, and the time limit."""

    deadline: float
    stopped: bool
    timed_out: bool
    reported: int  # the count last committed

    def __call__(self, done: int, total: int) -> None: ...

    def should_stop(self) -> bool: ...


class BackgroundReporter:
    """Use as `with BackgroundReporter(progress, interval) as reporter:` and pass `reporter.progress` and
    `reporter.should_stop` to the run. On leaving, the thread has stopped and written nothing after."""

    def __init__(self, inner: ShardProgressLike, interval_s: float, clock: Callable[[], float] = time.monotonic):
        self.inner, self.interval_s, self.clock = inner, interval_s, clock
        self._latest: tuple[int, int] | None = None
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="carml-shard-reporter", daemon=True)

    def __enter__(self) -> BackgroundReporter:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    # ------------------------------------------------------------------ the batch loop's side
    def progress(self, done: int, total: int) -> None:
        """Record the count; the thread writes it (the caller flushes the final count after the run)."""
        self._raise_error()
        self._latest = (done, total)

    def should_stop(self) -> bool:
        """The cancellation flag the thread keeps, and the time limit, checked here so it is exact."""
        self._raise_error()
        if self.clock() > self.inner.deadline:
            self.inner.stopped = self.inner.timed_out = True
        return self.inner.stopped

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    # ------------------------------------------------------------------ the thread
    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.report()
            except Exception as exc:  # handed to the batch loop, which fails the shard as it would have
                self._error = exc
                return

    def report(self) -> None:
        """One round: write the latest count unless it is committed already, then check for cancellation."""
        latest = self._latest
        if latest is not None and latest[0] != self.inner.reported:
            self.inner(*latest)  # a database that is away skips the write; the next round tries again
        if not self.inner.stopped:
            self.inner.should_stop()
