"""A performance scenario's settings (LoadGen's test settings), checked where a request is made.

Every problem is a ScenarioError naming the request field at fault, so the API, the CLI and the web form
can put the message next to that field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from carml.db.models import Scenario
from carml.errors import CarmlError

PERFORMANCE_SCENARIOS = (Scenario.SINGLE_STREAM, Scenario.OFFLINE, Scenario.SERVER)
#: Request fields that set a scenario's options (besides `scenario` itself and the warm-up count).
SCENARIO_OPTION_FIELDS = (
    "target_qps",
    "latency_bound_ms",
    "min_duration_s",
    "min_query_count",
    "max_duration_s",
    "sample_count",
    "seed",
)
# Defaults keep a run short; MLPerf's own minimums (600 s, 24,576 queries) are for submissions.
DEFAULT_MIN_DURATION_S = 2.0
DEFAULT_MIN_QUERY_COUNT = 64
DEFAULT_MAX_DURATION_S = 60.0
DEFAULT_SAMPLE_COUNT = 1024
# Bounds that keep one run's memory and time in reason.
MAX_DURATION_S = 24 * 3600.0
MAX_QUERIES = 1_000_000  # queries a server schedule may hold, and the largest min_query_count
MAX_SAMPLE_COUNT = 100_000
MAX_TARGET_QPS = 1_000_000.0
MAX_WARMUP_QUERIES = 10_000


class ScenarioError(CarmlError):
    """Scenario options that cannot run; `field` names the request field at fault."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def _check_number(name: str, value: Any, maximum: float, *, whole: bool = False, minimum: float = 0.0) -> None:
    """`value` is a finite number (a whole one if `whole`) in (0, maximum], or [minimum, maximum] if minimum > 0."""
    kinds = int if whole else int | float
    # NB: math.isfinite overflows on integers beyond a float's range; those are out of range anyway.
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        raise ScenarioError(f"{name} must be at most {maximum:g}", name)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        raise ScenarioError(f"{name} must be a {'whole number' if whole else 'number'}, got {value!r}", name)
    low_ok = value >= minimum if minimum > 0 else value > 0
    if not low_ok or value > maximum:
        low = f"at least {minimum:g}" if minimum > 0 else "greater than 0"
        most = f"{int(maximum):,}" if float(maximum).is_integer() else f"{maximum:g}"
        raise ScenarioError(f"{name} must be {low} and at most {most}, got {value:g}", name)


@dataclass(frozen=True)
class ScenarioOptions:
    """A scenario and LoadGen's test settings for it; checked when made (ScenarioError names the field)."""

    scenario: str
    target_qps: float | None = None
    latency_bound_ms: float | None = None
    min_duration_s: float = DEFAULT_MIN_DURATION_S
    min_query_count: int = DEFAULT_MIN_QUERY_COUNT
    max_duration_s: float = DEFAULT_MAX_DURATION_S
    sample_count: int = DEFAULT_SAMPLE_COUNT
    warmup_queries: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.scenario not in PERFORMANCE_SCENARIOS:
            choices = ", ".join(s.value for s in Scenario)
            raise ScenarioError(f"scenario must be one of {choices}, got {self.scenario!r}", "scenario")
        _check_number("min_duration_s", self.min_duration_s, MAX_DURATION_S)
        _check_number("min_query_count", self.min_query_count, MAX_QUERIES, whole=True)
        _check_number("max_duration_s", self.max_duration_s, MAX_DURATION_S)
        _check_number("sample_count", self.sample_count, MAX_SAMPLE_COUNT, whole=True)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ScenarioError(f"seed must be a whole number of at least 0, got {self.seed!r}", "seed")
        if isinstance(self.warmup_queries, bool) or not isinstance(self.warmup_queries, int):
            raise ScenarioError("warm-up must be a whole number of queries", "warmup_queries")
        if not 0 <= self.warmup_queries <= MAX_WARMUP_QUERIES:
            raise ScenarioError(f"warm-up must be between 0 and {MAX_WARMUP_QUERIES} queries", "warmup_queries")
        if self.max_duration_s < self.min_duration_s:
            raise ScenarioError(
                f"max_duration_s ({self.max_duration_s:g}) must be at least min_duration_s ({self.min_duration_s:g})",
                "max_duration_s",
            )
        self._check_server_options()

    def _check_server_options(self) -> None:
        if self.scenario != Scenario.SERVER:
            for name in ("target_qps", "latency_bound_ms"):
                if getattr(self, name) is not None:
                    raise ScenarioError(f"{name} applies to the server scenario only", name)
            return
        if self.target_qps is None:
            raise ScenarioError(
                "the server scenario needs target_qps: the rate queries arrive at, per second", "target_qps"
            )
        if self.latency_bound_ms is None:
            raise ScenarioError(
                "the server scenario needs latency_bound_ms: the p99 latency a valid run stays within",
                "latency_bound_ms",
            )
        _check_number("target_qps", self.target_qps, MAX_TARGET_QPS)
        _check_number("latency_bound_ms", self.latency_bound_ms, MAX_DURATION_S * 1000)
        scheduled = self.target_qps * self.min_duration_s
        if scheduled > MAX_QUERIES:
            raise ScenarioError(
                f"target_qps × min_duration_s schedules {scheduled:,.0f} queries; "
                f"a run may hold at most {MAX_QUERIES:,}",
                "target_qps",
            )
        # The schedule lasts until both minimums are met; one that outlasts the cap could never be VALID.
        schedule_s = max(self.min_duration_s, self.min_query_count / self.target_qps)
        if schedule_s > self.max_duration_s:
            raise ScenarioError(
                f"at {self.target_qps:g} queries/s, {self.min_query_count} queries take {schedule_s:,.1f} s, "
                f"past max_duration_s ({self.max_duration_s:g} s): raise max_duration_s or the rate",
                "max_duration_s",
            )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScenarioOptions:
        return cls(**data)


def scenario_options(scenario: str, values: Mapping[str, Any], warmup_queries: int = 1) -> ScenarioOptions | None:
    """The checked options a request gives `scenario` (unset ones take the defaults); None for an accuracy pass,
    which takes none of them."""
    given = {name: values[name] for name in SCENARIO_OPTION_FIELDS if values.get(name) is not None}
    if scenario == Scenario.ACCURACY:
        for name in given:
            performance = ", ".join(s.value for s in PERFORMANCE_SCENARIOS)
            raise ScenarioError(f"{name} applies to the performance scenarios ({performance}), not accuracy", name)
        return None
    return ScenarioOptions(scenario=scenario, warmup_queries=warmup_queries, **given)
