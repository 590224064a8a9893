"""The server scenario: queries arrive as a Poisson process at the target rate and wait their turn (FIFO).

One thread issues each query at its scheduled time, sleeping until then rather than spinning; another serves
queries one by one with the predictor. A query's latency runs from its *scheduled* arrival to its completion,
so time spent queueing behind earlier queries counts, as in LoadGen. The calling thread watches the clock and
`should_stop`, so a rate the predictor cannot sustain still ends at `max_duration_s`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import numpy as np

from carml.evaluation.scenario_log import PredictBatch, QueryLog, answer
from predictors.base import Predictor, PreparedItem

ARRIVAL_STREAM = 1  # the seed's second random stream (the first orders samples)
POLL_S = 0.02  # how often the serving thread and the watcher look at the stop flag


def poisson_arrivals(seed: int, target_qps: float, min_duration_s: float, min_queries: int) -> np.ndarray:
    """Scheduled arrivals (ns after the start) with exponential gaps at `target_qps`: the shortest schedule that
    spans `min_duration_s` and holds `min_queries` queries. The same seed gives the same schedule."""
    rng = np.random.default_rng([seed, ARRIVAL_STREAM])
    times = np.empty(0)
    while len(times) < min_queries or (times[-1] if len(times) else 0.0) < min_duration_s:
        last = times[-1] if len(times) else 0.0
        need = max(min_queries - len(times), int((min_duration_s - last) * target_qps) + 1, 16)
        times = np.concatenate([times, last + np.cumsum(rng.exponential(1 / target_qps, size=need))])
    spans_duration = int(np.searchsorted(times, min_duration_s, side="left")) + 1
    return (times[: max(min_queries, spans_duration)] * 1e9).astype(np.int64)


class ServerRun:
    """The issuing and serving threads of one server run, and what they did."""

    def __init__(
        self,
        predictor: Predictor,
        predict: PredictBatch,
        samples: list[PreparedItem],
        order: np.ndarray,
        arrivals_ns: np.ndarray,
        log: QueryLog,
    ):
        self.predictor, self.predict, self.samples, self.log = predictor, predict, samples, log
        self.order, self.arrivals_ns = order, arrivals_ns
        self.pending: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.stop, self.issuing_done = threading.Event(), threading.Event()
        self.issued = self.completed = 0
        self.error: BaseException | None = None
        self.start_ns = 0

    def run(self, max_duration_s: float, should_stop: Callable[[], bool], report: Callable[[float], None]) -> str:
        """Issue and serve the schedule; returns "complete", "capped" or "cancelled"."""
        self.start_ns = self.log.start_timing()
        issuer = threading.Thread(target=self._issue, name="carml-loadgen-issue", daemon=True)
        server = threading.Thread(target=self._serve, name="carml-loadgen-serve", daemon=True)
        ending = "complete"
        issuer.start()
        server.start()
        try:
            while server.is_alive():
                server.join(POLL_S)
                if self.stop.is_set():
                    continue
                if should_stop():
                    ending = "cancelled"
                    self.stop.set()
                elif time.perf_counter_ns() - self.start_ns >= max_duration_s * 1e9:
                    ending = "capped"
                    self.stop.set()
                report(self.completed / len(self.arrivals_ns))
        finally:
            self.stop.set()
            server.join()
            issuer.join()
        if self.error is not None:
            raise self.error
        return ending

    def _issue(self) -> None:
        try:
            i, count = 0, len(self.arrivals_ns)
            while i < count and not self.stop.is_set():
                now = time.perf_counter_ns() - self.start_ns
                due = int(np.searchsorted(self.arrivals_ns, now, side="right"))
                if due > i:
                    for query in range(i, due):
                        self.pending.put(query)
                    i = self.issued = due
                else:
                    # Sleep until the next arrival (in slices, to notice a stop); time.sleep oversleeps less than
                    # Event.wait, and a late issue would count as latency.
                    time.sleep(min((int(self.arrivals_ns[i]) - now) / 1e9, POLL_S))
        finally:
            self.issuing_done.set()

    def _serve(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    query = self.pending.get(timeout=POLL_S)
                except queue.Empty:
                    # The issuer puts its last query before it says it is done, so nothing is left behind.
                    if self.issuing_done.is_set() and self.pending.empty():
                        return
                    continue
                sample = int(self.order[query])
                answered = answer(self.predictor, self.predict, [self.samples[sample]], (sample,))
                self.log.add(answered, warmup=False, arrived_ns=self.start_ns + int(self.arrivals_ns[query]))
                self.completed += 1
        except BaseException as exc:  # not a prediction error (those are counted): a bug; the caller re-raises it
            self.error = exc
            self.stop.set()
