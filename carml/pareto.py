"""The Pareto front of points in several objectives, some to maximize and some to minimize."""

from __future__ import annotations

import math
from collections.abc import Sequence


def _oriented(point: Sequence[float | None], maximize: Sequence[bool]) -> tuple[float, ...] | None:
    """The point flipped so that larger is better in every objective; None when a value is missing."""
    values = []
    for value, up in zip(point, maximize, strict=True):
        if value is None or math.isnan(value):
            return None
        values.append(value if up else -value)
    return tuple(values)


def pareto_front(points: Sequence[Sequence[float | None]], maximize: Sequence[bool]) -> list[bool]:
    """Whether each point is on the Pareto front: no other point is at least as good in every objective and
    better in one. Equal points do not dominate each other, so tied points are on the front together. A point
    missing a value (None or NaN) cannot be shown undominated: it is never on the front and dominates nothing.

    Every pair is compared (O(n²)): fine for the hundreds of measured candidates a recommendation ranks.
    """
    oriented = [_oriented(point, maximize) for point in points]

    def dominated(p: tuple[float, ...]) -> bool:
        # q dominates p: at least as good everywhere and not equal, i.e. better somewhere.
        return any(q is not None and q != p and all(x >= y for x, y in zip(q, p, strict=True)) for q in oriented)

    return [p is not None and not dominated(p) for p in oriented]
