"""Bounded retries with exponential backoff, for calls to a server that may be briefly unreachable."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all, sleeping `backoff_s`, then twice that, and so on, between them."""

    attempts: int = 4
    backoff_s: float = 0.2
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.backoff_s < 0:
            raise ValueError(f"RetryPolicy needs attempts >= 1 and backoff_s >= 0, not {self}")

    def call(self, fn: Callable[[], T], retryable: Callable[[Exception], bool]) -> T:
        """`fn()`, tried again while it raises a retryable error; the last error is re-raised."""
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except Exception as exc:
                if attempt == self.attempts or not retryable(exc):
                    raise
            self.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")
