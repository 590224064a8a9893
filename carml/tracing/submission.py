"""The root span of a job's trace, `submit`, opened where the job is submitted (web app, API or CLI).

It is opened before the request is checked and saved in the transaction that records the job, so a job
row never exists without the root of its trace; the trace context travels to the workers in the job's
parameters (`traceparent`), with the trace level the job asked for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from carml.db.models import Job
from carml.settings import TRACE_LEVELS, Settings
from carml.tracing.propagation import TraceParent
from carml.tracing.records import SpanRecord, new_span_id, new_trace_id
from carml.tracing.store import save_spans

#: `service.name` of spans sent to the OTLP collector from where jobs are submitted.
SUBMIT_SERVICE = "carml"


def unknown_level(level: str | None) -> str | None:
    """Why `level` is not a trace level, or None when it is one (or not given)."""
    if level is None or level in TRACE_LEVELS:
        return None
    return f"trace_level must be one of {', '.join(TRACE_LEVELS)}, got {level!r}"


def submit_attributes(job: Job) -> dict[str, Any]:
    """What the `submit` span says about the job it recorded."""
    return {
        "kind": job.kind,
        "model": job.model_name,
        "framework": job.framework,
        "dataset": job.dataset_name,
        "hardware_tag": job.hardware_tag,
        "batch_size": job.batch_size,
        "shards": job.shard_count,
        "owner": job.owner,
        "comparison_id": job.comparison_id,
    }


@dataclass
class SubmitTrace:
    """A job's trace as its submission opened it; `context` is None at trace level `none`."""

    level: str
    otlp_endpoint: str
    context: TraceParent | None
    started_ns: int = field(default_factory=time.time_ns)

    @classmethod
    def open(cls, settings: Settings, level: str | None = None) -> SubmitTrace:
        """Start the `submit` span of a new job (level None: the CARML_TRACE_LEVEL default)."""
        level = level or settings.trace_level
        if unknown_level(level):
            raise ValueError(unknown_level(level))
        context = None if level == "none" else TraceParent(new_trace_id(), new_span_id())
        return cls(level, settings.otlp_endpoint, context)

    @property
    def trace_id(self) -> str | None:
        return self.context.trace_id if self.context else None

    def job_parameters(self) -> dict[str, Any]:
        """What the worker needs to continue the trace: the level and, when traced, the parent span."""
        parameters: dict[str, Any] = {"trace_level": self.level}
        if self.context is not None:
            parameters["traceparent"] = self.context.header()
        return parameters

    def save(self, session: Session, job_id: str, attributes: dict[str, Any]) -> None:
        """End the `submit` span now and add it to the transaction that records job `job_id`."""
        if self.context is None:
            return
        record = SpanRecord(
            name="submit",
            trace_id=self.context.trace_id,
            span_id=self.context.span_id,
            parent_span_id=None,
            start_ns=self.started_ns,
            end_ns=time.time_ns(),
            attributes={"job_id": job_id, "trace_level": self.level, **attributes},
        )
        save_spans(session, job_id, [record], otlp_endpoint=self.otlp_endpoint, service=SUBMIT_SERVICE)
