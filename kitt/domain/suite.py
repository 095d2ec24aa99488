"""Suites: named lists of scenarios, written by people as TOML files.

Files people write forbid unknown keys, so a typo is an error that names the key and the file
rather than a setting silently ignored.
"""

from __future__ import annotations

import msgspec

from kitt.domain.load import LoadSpec
from kitt.domain.workload import WorkloadSpec


class Slo(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Service-level objectives a request must meet to count towards goodput."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2e_ms: float | None = None

    def __post_init__(self) -> None:
        for name in ("ttft_ms", "tpot_ms", "e2e_ms"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"slo.{name} must be > 0")


class Scenario(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    description: str = ""
    load: LoadSpec
    workload: WorkloadSpec = WorkloadSpec()
    slo: Slo | None = None
    request_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() or c == "/" for c in self.name):
            raise ValueError(f"scenario name {self.name!r} needs characters, no spaces, no '/'")
        if self.request_timeout_s <= 0:
            raise ValueError("request_timeout_s must be > 0")


class Suite(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    description: str = ""
    repetitions: int = 1
    # A repetition whose share of failed requests exceeds this fails the run (exit code 1).
    max_error_rate: float = 0.0
    # Regression thresholds in percent per metric (e.g. "ttft_ms.p50" = 5); used by comparisons.
    thresholds: dict[str, float] = {}
    scenarios: list[Scenario]

    def __post_init__(self) -> None:
        if self.repetitions < 1:
            raise ValueError("repetitions must be >= 1")
        if not 0 <= self.max_error_rate <= 1:
            raise ValueError("max_error_rate must be within 0..1")
        if not self.scenarios:
            raise ValueError("a suite needs at least one scenario")
        seen: set[str] = set()
        for scenario in self.scenarios:
            if scenario.name in seen:
                raise ValueError(f"scenario name {scenario.name!r} is used twice")
            seen.add(scenario.name)
        for metric, pct in self.thresholds.items():
            if pct <= 0:
                raise ValueError(f"threshold for {metric!r} must be > 0 (percent)")

    def with_repetitions(self, repetitions: int) -> Suite:
        return msgspec.structs.replace(self, repetitions=repetitions)
