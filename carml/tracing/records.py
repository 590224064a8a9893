"""A finished span as plain data: what the database stores and the OTLP exporter sends, with the same ids."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def new_trace_id() -> str:
    """32 lowercase hex digits, never all zeros (W3C trace context)."""
    # NB: from the OS, not the `random` module: anything in the process may seed that one (a framework's
    # set_random_seed, a test runner), and repeated ids would make the next job's spans collide in the database.
    return f"{secrets.randbits(128) or 1:032x}"


def new_span_id() -> str:
    """16 lowercase hex digits, never all zeros."""
    return f"{secrets.randbits(64) or 1:016x}"


def epoch_ns(moment: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime."""
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def as_datetime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


@dataclass
class SpanRecord:
    """One span of a job's trace; times are nanoseconds since the epoch."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    start_ns: int
    end_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)
    shard_index: int | None = None
    batch_index: int | None = None

    @property
    def duration_ms(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e6

    def row(self, job_id: str) -> dict[str, Any]:
        """The `spans` table row of this span."""
        return {
            "job_id": job_id,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "name": self.name[:100],
            "shard_index": self.shard_index,
            "batch_index": self.batch_index,
            "started_at": as_datetime(self.start_ns),
            "duration_ms": self.duration_ms,
            "attributes": {k: v for k, v in self.attributes.items() if v is not None},
        }
