"""W3C trace context (`traceparent`): how a job's trace crosses from the submitting process to the workers.

The submitting process stores the header value in `jobs.parameters["traceparent"]`; a worker reads it back
and parents its spans on the span it names. Format: `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
SAMPLED = "01"


@dataclass(frozen=True)
class TraceParent:
    """The trace a span belongs to and the span that encloses it."""

    trace_id: str
    span_id: str

    def header(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{SAMPLED}"


def parse_traceparent(value: object) -> TraceParent | None:
    """The trace context in a `traceparent` value; None when absent or malformed (the span starts no trace)."""
    if not isinstance(value, str):
        return None
    match = _TRACEPARENT.fullmatch(value.strip().lower())
    if match is None or set(match.group(1)) == {"0"} or set(match.group(2)) == {"0"}:
        return None
    return TraceParent(match.group(1), match.group(2))
