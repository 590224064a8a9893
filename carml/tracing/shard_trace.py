"""What a worker does to trace one shard: note a few moments while it runs, then save its spans at the end.

The job's parameters say whether it is traced (`traceparent`, `trace_level`); an untraced job gets a
`ShardTrace` whose methods do nothing, so the execution code calls them unconditionally.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy.orm import Session

from carml.db.base import utcnow
from carml.db.models import Job, JobShard
from carml.evaluation.runner import PredictBatch
from carml.jobs.model_cache import CachedModel
from carml.settings import Settings
from carml.tracing.propagation import parse_traceparent
from carml.tracing.records import epoch_ns
from carml.tracing.shard_spans import ShardTraceContext, Window, shard_spans
from carml.tracing.store import save_spans
from predictors.base import Predictor
from predictors.profiling import OperatorEvent, OperatorProfiler

#: `service.name` of the spans workers send to the OTLP collector.
WORKER_SERVICE = "carml-worker"


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class ShardTrace:
    """The trace of one shard of a job, as its worker records it."""

    def __init__(self, settings: Settings, job_id: str, context: ShardTraceContext | None, level: str):
        self.settings, self.job_id, self.context, self.level = settings, job_id, context, level
        self.model_load: Window | None = None
        self.store_started_ns: int | None = None
        self.profiler: OperatorProfiler | None = None
        self.operators: list[OperatorEvent] = []
        self.predict_attributes: dict[str, Any] = {}

    @classmethod
    def begin(cls, settings: Settings, job: Job, shard: JobShard, worker_id: str) -> ShardTrace:
        """The trace of a shard this worker just claimed (continuing the job's trace, if it has one)."""
        parent = parse_traceparent((job.parameters or {}).get("traceparent"))
        level = (job.parameters or {}).get("trace_level") or settings.trace_level
        if parent is None or level == "none":
            return cls(settings, job.id, None, "none")
        context = ShardTraceContext(
            parent=parent,
            shard_index=shard.index,
            attributes={
                "job_id": job.id,
                "model": job.model_name,
                "framework": job.framework,
                "batch_size": job.batch_size,
                "hardware_tag": job.hardware_tag,
                "worker": worker_id,
                "attempt": shard.attempts,
            },
            queued_ns=epoch_ns(job.created_at),
            started_ns=epoch_ns(shard.started_at or utcnow()),
            max_spans=settings.trace_max_spans,
        )
        return cls(settings, job.id, context, level)

    @property
    def enabled(self) -> bool:
        return self.context is not None

    def model_loaded(self, cached: CachedModel) -> None:
        """Call right after the model cache answered: a cold load becomes a `load_model` span."""
        if self.enabled and not cached.hit:
            now = time.time_ns()
            self.model_load = Window(now - int(cached.load_ms * 1e6), now, {"load_ms": cached.load_ms})

    def predict_function(self, predictor: Predictor) -> PredictBatch | None:
        """At trace level `framework`, how to run batches under the framework's profiler (else None)."""
        if not self.enabled or self.level != "framework":
            return None
        self.profiler = predictor.operator_profiler()
        if self.profiler is None:
            self.predict_attributes = {"operators": f"not recorded: no operator profiler for {predictor.framework}"}
            return None
        return self.profiler.predict

    def store_started(self) -> None:
        """Call when the shard starts writing its outputs: the `store` span begins."""
        self.store_started_ns = time.time_ns()

    def save(self, session: Session, batches: Sequence[dict[str, Any]], replace: bool = True) -> None:
        """End the `store` and `shard` spans now and add every span of the shard to the caller's transaction, in place
        of any the shard wrote before (a redelivered shard leaves one copy); `replace=False` when it cannot have."""
        if self.context is None:
            return
        self.close()
        # NB: with the collector paused, a shard's thousands of span objects are freed before it ever looks at them;
        # else they set off collections that walk the whole heap (the framework's objects included) for nothing.
        with _collector_paused():
            self._save(session, batches, self.context, replace)

    def _save(
        self, session: Session, batches: Sequence[dict[str, Any]], context: ShardTraceContext, replace: bool
    ) -> None:
        now = time.time_ns()
        records = shard_spans(
            context,
            batches,
            ended_ns=now,
            model_load=self.model_load,
            store=Window(self.store_started_ns, now) if self.store_started_ns is not None else None,
            operators=self.operators,
            predict_attributes=self.predict_attributes,
        )
        save_spans(
            session,
            self.job_id,
            records,
            otlp_endpoint=self.settings.otlp_endpoint,
            service=WORKER_SERVICE,
            replace=replace,
        )

    def close(self) -> None:
        """Stop the operator profiler, if one ran, keeping what it recorded (call when the batches are done)."""
        if self.profiler is not None:
            profiler, self.profiler = self.profiler, None
            self.operators = profiler.finish()
