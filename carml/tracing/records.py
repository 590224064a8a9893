"""A finished span as plain data: what the database stores and the OTLP exporter sends, with the same ids."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ZERO_SPAN_ID = "0" * 16


def new_trace_id() -> str:
    """32 lowercase hex digits, never all zeros (W3C trace context)."""
    # NB: from the OS, not the `random` module: anything in the process may seed that one (a framework's
    # set_random_seed, a test runner), and repeated ids would make the next job's spans collide in the database.
    return f"{secrets.randbits(128) or 1:032x}"


def new_span_id() -> str:
    """16 lowercase hex digits, never all zeros."""
    return f"{secrets.randbits(64) or 1:016x}"


def new_span_ids(count: int) -> list[str]:
    """`count` span ids (as `new_span_id` makes them) from one read of the OS's randomness.

    NB: for a shard's thousands of spans: a read per id costs more than building the rest of the span.
    """
    digits = secrets.token_bytes(8 * count).hex()
    ids = [digits[start : start + 16] for start in range(0, 16 * count, 16)]
    return [span_id if span_id != _ZERO_SPAN_ID else "0000000000000001" for span_id in ids]


def epoch_ns(moment: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime."""
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def as_datetime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


#: The `spans` columns a span's row fills (`SpanRecord.row`); `id` comes from the database.
SPAN_COLUMNS = (
    "job_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "shard_index",
    "batch_index",
    "started_at",
    "duration_ms",
    "attributes",
)


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

    def row(self, job_id: str) -> tuple[Any, ...]:
        """The `spans` table row of this span, in the order of `SPAN_COLUMNS`."""
        return (
            job_id,
            self.trace_id,
            self.span_id,
            self.parent_span_id,
            self.name[:100],
            self.shard_index,
            self.batch_index,
            as_datetime(self.start_ns),
            self.duration_ms,
            self._stored_attributes(),
        )

    def _stored_attributes(self) -> dict[str, Any]:
        # Attributes that are None are left out; most spans have none, and copying each span's dict costs more
        # than looking for one.
        if None not in self.attributes.values():
            return self.attributes
        return {k: v for k, v in self.attributes.items() if v is not None}
