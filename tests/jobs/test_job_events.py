"""Waiting for a job's end: woken by the Redis announcement at once, by database reads without one."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import require_redis

from carml.jobs import job_events
from carml.jobs.job_events import EndListener, announce_job_end, wait_for_job_end
from carml.settings import load_settings


class _Job:
    """A job's end as the database would show it, counting how often the waiter read it."""

    def __init__(self) -> None:
        self.ended = False
        self.reads = 0

    def is_final(self) -> bool:
        self.reads += 1
        return self.ended


def _end_later(job: _Job, delay_s: float, announce: bool, settings, job_id: str) -> threading.Thread:
    def end() -> None:
        time.sleep(delay_s)
        job.ended = True  # committed first, announced after, as the workers do
        if announce:
            announce_job_end(settings, job_id)

    thread = threading.Thread(target=end)
    thread.start()
    return thread


def _subscribed(url: str) -> job_events._Subscription:
    """The process's subscription to `url`, once it receives (a process's first waiter reads the database until
    then)."""
    subscription = job_events._subscription(url)
    assert subscription.subscribed.wait(10), f"no subscription to {url}"
    return subscription


def test_on_redis_the_announcement_wakes_the_waiter_without_polling(tmp_path: Path) -> None:
    settings = load_settings({"CARML_HOME": str(tmp_path), "CARML_BROKER_URL": require_redis()})
    _subscribed(settings.broker)
    job, job_id = _Job(), f"job-{time.time_ns()}"
    ender = _end_later(job, 0.3, announce=True, settings=settings, job_id=job_id)
    started = time.monotonic()
    assert wait_for_job_end(settings, job_id, 10, job.is_final) is True
    waited = time.monotonic() - started
    ender.join()
    # One read before sleeping, one when the message came: no polling in between, and well before the
    # subscription's own re-check (SUBSCRIBED_RECHECK_S) would have found it.
    assert job.reads == 2, job.reads
    assert 0.25 <= waited < job_events.SUBSCRIBED_RECHECK_S, waited


def test_a_wait_listening_since_the_enqueue_reads_the_job_only_when_woken(tmp_path: Path) -> None:
    settings = load_settings({"CARML_HOME": str(tmp_path), "CARML_BROKER_URL": require_redis()})
    _subscribed(settings.broker)
    job, job_id, enqueued = _Job(), f"job-{time.time_ns()}", []
    with EndListener(settings) as listener:
        listener.enqueueing(lambda *task: enqueued.append(task))(job_id, 0, "cpu")
        assert enqueued == [(job_id, 0, "cpu")] and listener.heard_from_enqueue
        # Ended and announced before the wait begins: the announcement was heard all the same.
        job.ended = True
        announce_job_end(settings, job_id)
        started = time.monotonic()
        assert wait_for_job_end(settings, job_id, 10, job.is_final, listener=listener) is True
        assert job.reads == 1 and time.monotonic() - started < job_events.SUBSCRIBED_RECHECK_S
        other, other_id = _Job(), f"job-{time.time_ns()}"  # not the listener's job: read first, as without one
        other.ended = True
        assert wait_for_job_end(settings, other_id, 10, other.is_final, listener=listener) is True
        assert other.reads == 1
    assert job_id not in job_events._subscription(settings.broker)._waiters  # let go with the listener


def test_a_listener_that_was_not_yet_subscribed_reads_the_job_first(tmp_path: Path) -> None:
    settings = load_settings({"CARML_HOME": str(tmp_path), "CARML_BROKER_URL": require_redis()})
    subscription = _subscribed(settings.broker)
    job, job_id = _Job(), f"job-{time.time_ns()}"
    job.ended = True  # an end that an unsubscribed listener may have missed
    subscription.subscribed.clear()  # as while (re)connecting
    try:
        with EndListener(settings) as listener:
            listener.enqueueing(lambda *_: None)(job_id, 0, "cpu")
            assert not listener.heard_from_enqueue
            assert wait_for_job_end(settings, job_id, 10, job.is_final, listener=listener) is True
    finally:
        subscription.subscribed.set()
    assert job.reads == 1


def test_a_summary_announced_with_the_end_is_taken_without_reading_the_job_again(tmp_path: Path) -> None:
    settings = load_settings({"CARML_HOME": str(tmp_path), "CARML_BROKER_URL": require_redis()})
    _subscribed(settings.broker)
    job_id = f"job-{time.time_ns()}"
    taken: list[dict] = []
    summary = {"id": job_id, "status": "succeeded", "result": {"predictions": [{"label": "é"}]}}

    def end() -> None:
        time.sleep(0.2)
        announce_job_end(settings, job_id, summary)

    ender = threading.Thread(target=end)
    ender.start()
    job = _Job()  # never ends as far as reads go: only the announcement can end the wait
    assert wait_for_job_end(settings, job_id, 10, job.is_final, lambda s: bool(taken.append(s)) or True) is True
    ender.join()
    assert taken == [summary] and job.reads == 1  # the read before sleeping, none after


def test_a_summary_too_large_to_announce_leaves_the_waiter_to_read_the_job(tmp_path: Path) -> None:
    settings = load_settings({"CARML_HOME": str(tmp_path), "CARML_BROKER_URL": require_redis()})
    _subscribed(settings.broker)
    job, job_id = _Job(), f"job-{time.time_ns()}"
    huge = {"id": job_id, "status": "succeeded", "matrix": "x" * job_events.MAX_ANNOUNCED_SUMMARY_BYTES}

    def end() -> None:
        time.sleep(0.2)
        job.ended = True
        announce_job_end(settings, job_id, huge)

    ender = threading.Thread(target=end)
    ender.start()
    taken: list[dict] = []
    assert wait_for_job_end(settings, job_id, 10, job.is_final, lambda s: bool(taken.append(s)) or True) is True
    ender.join()
    assert taken == [] and job.reads == 2  # woken by the bare id, then read


def test_an_end_nobody_announces_is_still_found_by_reading_the_job(tmp_path: Path) -> None:
    settings = load_settings({"CARML_HOME": str(tmp_path), "CARML_BROKER_URL": require_redis()})
    job = _Job()
    ender = _end_later(job, 0.1, announce=False, settings=settings, job_id="unannounced")
    started = time.monotonic()
    assert wait_for_job_end(settings, "unannounced", 10, job.is_final) is True
    ender.join()
    assert time.monotonic() - started < job_events.SUBSCRIBED_RECHECK_S + 1


def test_without_redis_the_waiter_polls_the_database(tmp_path: Path) -> None:
    settings = load_settings({"CARML_HOME": str(tmp_path)})  # the embedded filesystem queue
    job = _Job()
    ender = _end_later(job, 0.2, announce=True, settings=settings, job_id="embedded")  # announcing is a no-op
    started = time.monotonic()
    assert wait_for_job_end(settings, "embedded", 10, job.is_final) is True
    ender.join()
    assert time.monotonic() - started < 0.2 + job_events.POLL_MAX_S + 0.5
    assert job.reads > 2


def test_a_wait_that_runs_out_says_so_after_its_time(tmp_path: Path) -> None:
    settings = load_settings({"CARML_HOME": str(tmp_path)})
    job = _Job()
    started = time.monotonic()
    assert wait_for_job_end(settings, "never", 0.3, job.is_final) is False
    assert 0.3 <= time.monotonic() - started < 1.5


def test_a_wait_is_not_held_up_by_an_unreachable_redis(tmp_path: Path) -> None:
    # The first waiter of a process gives the subscription a moment to come up, but never past its own wait.
    url = f"redis://127.0.0.1:{_free_port()}/0"  # nothing listens there
    settings = load_settings({"CARML_HOME": str(tmp_path), "CARML_BROKER_URL": url})
    job = _Job()
    started = time.monotonic()
    assert wait_for_job_end(settings, "unreachable", 0.3, job.is_final) is False
    assert 0.3 <= time.monotonic() - started < 1.0
    assert job.reads > 2  # it read the job meanwhile, as without Redis


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _redis_server(port: int) -> Iterator[None]:
    """A Redis of this test's own on `port` (the shared one must not be restarted)."""
    import redis

    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=port, socket_connect_timeout=1).ping()
                break
            except redis.RedisError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_the_subscription_comes_back_after_redis_restarts(tmp_path: Path) -> None:
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    settings = load_settings({"CARML_HOME": str(tmp_path), "CARML_BROKER_URL": url})
    with _redis_server(port):
        subscription = _subscribed(url)
    deadline = time.monotonic() + 10
    while subscription.subscribed.is_set():  # Redis is gone: waiters read the database meanwhile
        assert time.monotonic() < deadline, "the subscription did not notice Redis going away"
        time.sleep(0.02)
    with _redis_server(port):
        assert subscription.subscribed.wait(15), "the subscription did not come back"
        job = _Job()
        ender = _end_later(job, 0.3, announce=True, settings=settings, job_id="after")
        started = time.monotonic()
        assert wait_for_job_end(settings, "after", 10, job.is_final) is True
        ender.join()
        # Woken by the announcement, not by the once-a-second re-read.
        assert job.reads == 2 and time.monotonic() - started < job_events.SUBSCRIBED_RECHECK_S
    assert subscription._waiters == {}  # every waiter, woken or timed out, took itself off


def test_waiting_requests_past_the_limit_are_told_not_to_wait() -> None:
    waiting = job_events.WaitingRequests()
    with waiting.slot(2) as first, waiting.slot(2) as second:
        with waiting.slot(2) as third:
            assert (first, second, third) == (True, True, False) and waiting.count == 2
        assert waiting.count == 2
    assert waiting.count == 0
    with pytest.raises(RuntimeError), waiting.slot(1) as granted:
        assert granted
        raise RuntimeError("a failed wait still gives its slot back")
    assert waiting.count == 0
    with waiting.slot(0) as granted:  # CARML_API_MAX_WAITING=0: nobody waits
        assert not granted
