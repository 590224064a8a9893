"""Per-operator timings from a framework's own profiler (trace level `framework`).

A predictor that can profile returns an `OperatorProfiler` from `Predictor.operator_profiler()`: the runner
predicts each batch through it, and at the end it hands back every operator it saw, with wall-clock times,
so the tracing code can place them under the `predict` span of their batch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from predictors.base import PreparedItem


@dataclass(frozen=True)
class OperatorEvent:
    """One operator (or kernel) run as the framework's profiler saw it; times are ns since the epoch."""

    name: str
    start_ns: int
    end_ns: int
    parent: int | None = None  # index of the enclosing operator in the same list, if any
    attributes: dict[str, str] = field(default_factory=dict)


class OperatorProfiler(ABC):
    """Runs batches under a framework profiler. Profiling slows the model: only `framework` traces use it."""

    @abstractmethod
    def predict(self, batch: Sequence[PreparedItem]) -> list[dict[str, np.ndarray]]:
        """The same answers as `Predictor.predict`, with the operators recorded."""

    @abstractmethod
    def finish(self) -> list[OperatorEvent]:
        """Stop profiling, release what it held, and return the operators of every batch predicted."""
