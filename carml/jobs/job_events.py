"""Job ends, announced: the process that ends a job publishes its id, and a request waiting on that job wakes at once.

On a Redis broker the announcement is a Redis pub/sub message, and every process that waits keeps one
subscription (a daemon thread) shared by all its waiting requests. Waiting never depends on it: a waiter reads the
job from the database whenever it wakes, and wakes by itself every so often too. So a lost message, Redis being
away, or a broker that is not Redis (RabbitMQ, the embedded filesystem queue: database polling only) costs
latency, never a wrong answer.

An announcement may carry the ended job's summary, as the API shows it (read in the transaction that ended it,
so no later read could differ: a final job does not change). A waiter that gets one answers from it instead of
reading the job again, which is most of what is left of a short prediction's latency once it has ended.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from carml.db.models import Job, JobStatus
from carml.db.session import read_scope
from carml.settings import Settings

logger = logging.getLogger(__name__)

CHANNEL = "carml:job-ended"
# How often a waiter reads the job anyway: a safety net while the subscription is up (a job ended by a path that
# announces nothing, a message lost in a reconnect), and the only way to learn of the end without one (a short
# interval first, as most waits are for short jobs, then backing off).
SUBSCRIBED_RECHECK_S = 1.0
POLL_FIRST_S, POLL_MAX_S = 0.005, 0.2
#: A summary larger than this is left out of the announcement (the waiter reads the job instead): an evaluation's
#: summary holds its confusion matrix, and every process that waits receives every announcement.
MAX_ANNOUNCED_SUMMARY_BYTES = 64 * 1024
_REDIS_SCHEMES = ("redis://", "rediss://")


def _redis_url(settings: Settings) -> str | None:
    return settings.broker if settings.broker.startswith(_REDIS_SCHEMES) else None


# ------------------------------------------------------------------------------------------------ announcing
_publishers: dict[tuple[int, str], Any] = {}  # (pid, URL) -> redis client: a forked child makes its own
_publishers_lock = threading.Lock()


def _publisher(url: str) -> Any:
    import redis

    key = (os.getpid(), url)
    with _publishers_lock:
        if key not in _publishers:
            _publishers[key] = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        return _publishers[key]


def announce_job_end(settings: Settings, job_id: str, summary: dict[str, Any] | None = None) -> None:
    """Tell waiting requests that `job_id` ended, with its final `summary` when given (and small enough). Call after
    the commit that ended it; never raises."""
    url = _redis_url(settings)
    if url is None:
        return
    import redis

    message = job_id
    if summary is not None:
        encoded = json.dumps({"id": job_id, "summary": summary}, separators=(",", ":"), default=str)
        if len(encoded) <= MAX_ANNOUNCED_SUMMARY_BYTES:
            message = encoded
    try:
        _publisher(url).publish(CHANNEL, message)
    except redis.RedisError as exc:  # the waiters' own database reads find the end a little later
        logger.warning("could not announce the end of job %s on %s: %s", job_id, url, exc)


# ------------------------------------------------------------------------------------------------ listening
class _Waiter:
    """One waiting request: woken by its job's announcement, holding the summary that came with it, if any."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.summary: dict[str, Any] | None = None


def _parse(message: Any) -> tuple[str, dict[str, Any] | None]:
    """(job id, summary or None) from an announcement: a bare id, or JSON {"id": ..., "summary": ...}."""
    text = message.decode() if isinstance(message, bytes) else str(message)
    if not text.startswith("{"):
        return text, None
    try:
        decoded = json.loads(text)
        return str(decoded["id"]), decoded.get("summary") if isinstance(decoded.get("summary"), dict) else None
    except (ValueError, KeyError, TypeError):
        return text, None  # not ours: it wakes nobody


class _Subscription:
    """One process's subscription to job ends on one Redis, dispatching each to its waiters."""

    def __init__(self, url: str):
        self.url = url
        self.subscribed = threading.Event()  # set while messages are being received
        self._waiters: dict[str, set[_Waiter]] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._listen, name="carml-job-ends", daemon=True)
        self._thread.start()

    def register(self, job_id: str) -> _Waiter:
        waiter = _Waiter()
        with self._lock:
            self._waiters.setdefault(job_id, set()).add(waiter)
        return waiter

    def unregister(self, job_id: str, waiter: _Waiter) -> None:
        with self._lock:
            waiters = self._waiters.get(job_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[job_id]

    def _wake(self, job_id: str, summary: dict[str, Any] | None) -> None:
        with self._lock:
            for waiter in self._waiters.get(job_id, ()):
                waiter.summary = summary if summary is not None else waiter.summary
                waiter.event.set()

    def _listen(self) -> None:
        import redis

        backoff = 0.1
        while True:
            try:
                client = redis.Redis.from_url(self.url, socket_connect_timeout=2, health_check_interval=30)
                with client.pubsub(ignore_subscribe_messages=False) as pubsub:
                    pubsub.subscribe(CHANNEL)
                    for message in pubsub.listen():
                        if message["type"] == "subscribe":
                            self.subscribed.set()
                            backoff = 0.1
                        elif message["type"] == "message":
                            self._wake(*_parse(message["data"]))
            except Exception as exc:  # Redis away or restarting: waiters poll the database until it is back
                logger.debug("job-end subscription to %s lost: %s", self.url, exc)
            self.subscribed.clear()
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


_subscriptions: dict[tuple[int, str], _Subscription] = {}
_subscriptions_lock = threading.Lock()


def _subscription(url: str) -> _Subscription:
    """This process's subscription to `url`, started on first use. NB: never waited for: until it is subscribed,
    its waiters read the database as without Redis, so the first one's first read is not held up."""
    key = (os.getpid(), url)
    with _subscriptions_lock:
        if key not in _subscriptions:
            _subscriptions[key] = _Subscription(url)
        return _subscriptions[key]


class WaitingRequests:
    """How many requests of this process wait for a job's end at once, up to a limit.

    Each waiting request holds one of the web server's threads (gunicorn's `--threads`) for up to
    CARML_API_MAX_WAIT_S: without a limit, a few clients waiting on long jobs would hold every thread, and the
    server would answer nothing else until their waits ran out.
    """

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return self._count

    @contextmanager
    def slot(self, limit: int) -> Iterator[bool]:
        """Yields whether the caller may wait (a slot was free); the slot is given back on leaving."""
        with self._lock:
            granted = self._count < limit
            if granted:
                self._count += 1
        try:
            yield granted
        finally:
            if granted:
                with self._lock:
                    self._count -= 1


#: This process's waiting requests (CARML_API_MAX_WAITING).
waiting_requests = WaitingRequests()


def ended_job(settings: Settings, job_id: str) -> tuple[bool, Job | None]:
    """(whether the job has ended, the job with its result when it has), in one query: a waiter reads this each time
    it wakes, so that the read that finds the end is also the one the answer is made of. A job that does not exist
    counts as ended, with None: there is nothing to wait for."""
    query = select(Job).options(joinedload(Job.result)).where(Job.id == job_id)
    with read_scope(settings.database) as session:
        job = session.scalar(query)
    if job is None:
        return True, None
    return JobStatus(job.status).final, job


class EndListener:
    """Listening for the end of a job about to be submitted, from just before it is enqueued (`enqueueing`): its end
    cannot then be announced before anyone listens, and a wait that was listening, subscribed, from that moment
    need not read the job before it first sleeps (`wait_for_job_end`). Use as a context manager; one job each."""

    def __init__(self, settings: Settings):
        self._url = _redis_url(settings)
        self._subscription: _Subscription | None = None
        self.job_id: str | None = None
        self.waiter: _Waiter | None = None
        self.heard_from_enqueue = False  # subscribed when it started listening: every announcement since reaches it

    def enqueueing(self, enqueue: Callable[[str, int, str], None]) -> Callable[[str, int, str], None]:
        """`enqueue`, listening for the job's end first."""
        if self._url is not None:
            self._subscription = _subscription(self._url)

        def listened(job_id: str, shard_index: int, hardware_tag: str) -> None:
            if self._subscription is not None and self.job_id is None:
                self.heard_from_enqueue = self._subscription.subscribed.is_set()
                self.job_id, self.waiter = job_id, self._subscription.register(job_id)
            enqueue(job_id, shard_index, hardware_tag)

        return listened

    def listening_to(self, job_id: str) -> tuple[_Subscription, _Waiter, bool] | None:
        """(the subscription, the job's waiter, whether every announcement since the enqueue reaches it), or None when
        this listener did not listen for `job_id`."""
        if self._subscription is None or self.waiter is None or self.job_id != job_id:
            return None
        return self._subscription, self.waiter, self.heard_from_enqueue

    def __enter__(self) -> EndListener:
        return self

    def __exit__(self, *_: object) -> None:
        if self._subscription is not None and self.waiter is not None and self.job_id is not None:
            self._subscription.unregister(self.job_id, self.waiter)


def wait_for_job_end(
    settings: Settings,
    job_id: str,
    timeout_s: float,
    is_final: Callable[[], bool],
    announced: Callable[[dict[str, Any]], bool] | None = None,
    listener: EndListener | None = None,
) -> bool:
    """Block until `is_final()` (a database read of the job) is true or `timeout_s` has passed; returns the last
    `is_final()`. The waiter is registered with the subscription before the first read, so an end announced in
    between wakes it; while the subscription is not receiving (starting, Redis away) it reads the job every few
    milliseconds, backing off, instead. `announced`, when given, is offered the summary an announcement carried
    and ends the wait, with no read, when it takes it (returns True). With a `listener` that has listened for this
    job since before it was enqueued, subscribed, nothing can have been missed: the first read is skipped."""
    deadline = time.monotonic() + timeout_s
    listening = listener.listening_to(job_id) if listener is not None else None
    if listening is not None:
        subscription, waiter, heard_everything = listening
        owned, read_now = False, not heard_everything
    else:
        url = _redis_url(settings)
        subscription = _subscription(url) if url is not None and timeout_s > 0 else None
        waiter = subscription.register(job_id) if subscription is not None else None
        owned, read_now = True, True
    poll_s = POLL_FIRST_S

    def took_announced() -> bool:
        return waiter is not None and waiter.summary is not None and announced is not None and announced(waiter.summary)

    try:
        while True:
            if took_announced():
                return True
            if read_now and is_final():
                return True
            read_now = True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if waiter is not None and subscription is not None and subscription.subscribed.is_set():
                waiter.event.wait(min(left, SUBSCRIBED_RECHECK_S))
                waiter.event.clear()
            else:
                time.sleep(min(left, poll_s))
                poll_s = min(poll_s * 2, POLL_MAX_S)
    finally:
        if owned and waiter is not None and subscription is not None:
            subscription.unregister(job_id, waiter)
