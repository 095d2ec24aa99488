"""The model of the result files kitt writes (DESIGN §5): metrics.json and config.json.

Files kitt writes carry `schema_version` and tolerate unknown fields (a newer kitt may add some);
a schema_version above the one this kitt knows is refused by the reader.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from kitt.domain.load import LoadSpec
from kitt.domain.metrics import AggregateValue, RepetitionSummary
from kitt.domain.suite import Slo, Suite
from kitt.domain.workload import WorkloadSpec

METRICS_SCHEMA_VERSION = 1
CONFIG_SCHEMA_VERSION = 1

EngineMode = Literal["docker", "native", "external", "simulated"]
RunStatus = Literal["complete", "interrupted", "failed"]


class EngineInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Which engine served the run, as precisely as kitt could tell."""

    name: str
    mode: EngineMode
    endpoint: str | None = None
    image: str | None = None
    image_digest: str | None = None
    binary: str | None = None
    version: str | None = None
    args: list[str] = []


class ScenarioResult(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    description: str = ""
    load: LoadSpec
    workload: WorkloadSpec
    slo: Slo | None = None
    repetitions: list[RepetitionSummary]
    aggregate: dict[str, AggregateValue] = {}
    passed: bool
    reasons: list[str] = []


class RunMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """metrics.json."""

    schema_version: int = METRICS_SCHEMA_VERSION
    run_id: str
    kitt_version: str
    status: RunStatus
    # Why the run did not complete or did not pass; empty when it did.
    status_reason: str | None = None
    started_at: str
    finished_at: str
    model: str
    engine: EngineInfo
    suite: str
    seed: int
    hardware_fingerprint: str
    scenarios: list[ScenarioResult]

    @property
    def passed(self) -> bool:
        return self.status == "complete" and all(s.passed for s in self.scenarios)


class CiContext(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    provider: str | None = None
    commit_sha: str | None = None
    ref: str | None = None
    run_url: str | None = None
    pull_request: str | None = None


class RunConfig(msgspec.Struct, frozen=True, kw_only=True):
    """config.json: everything needed to reproduce the run."""

    schema_version: int = CONFIG_SCHEMA_VERSION
    run_id: str
    kitt_version: str
    model: str
    engine: EngineInfo
    suite: Suite
    seed: int
    sampling: dict[str, float | int | bool | str] = {}
    # Tokens per prompt word measured against the engine's tokenizer (1.0 without one).
    tokens_per_word: float = 1.0
    ci: CiContext | None = None
