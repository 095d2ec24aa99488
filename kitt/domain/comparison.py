"""The model of a comparison between current results and a baseline (DESIGN §6).

Types only; the computation lives in kitt/domain/compare.py and the statistics in
kitt/domain/significance.py. Everything here is pure data, so a report renderer, the terminal
table and `--json` all show the same verdicts.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from kitt.domain.metrics import Direction
from kitt.domain.records import RequestRecord
from kitt.domain.results import RunConfig, RunMetrics

Verdict = Literal["regression", "improvement", "inconclusive", "unchanged", "missing", "new"]
# How statistical support was judged (docs/comparison.md): Welch's t-test on log values across
# repetitions (>= 3 on each side), Welch's t-test on raw values (a metric with a zero among its
# values), per-request samples (fewer repetitions: a bootstrap interval, and a bootstrap,
# quantile or clustered test), the pooled request counts (error_rate: Fisher's exact or an
# Agresti-Caffo test), or not at all (too little data to test). Every test's null hypothesis is
# "the change lies within the threshold".
Method = Literal["welch-log", "welch", "bootstrap", "binomial", "none"]
ChangeUnit = Literal["percent", "points"]

COMPARISON_SCHEMA_VERSION = 1


class RunData(msgspec.Struct, frozen=True, kw_only=True):
    """One run as loaded from a results directory: what a comparison needs of it."""

    directory: str
    metrics: RunMetrics
    config: RunConfig | None = None
    # Per-request records (requests.jsonl), for the bootstrap with fewer than 3 repetitions.
    requests: list[RequestRecord] = []
    # What went wrong reading this run's secondary files (config.json, requests.jsonl), for the
    # report; the comparison goes on without them.
    notes: list[str] = []


class GroupKey(msgspec.Struct, frozen=True, kw_only=True, order=True):
    """Runs are compared within the same model, engine, suite and hardware (DESIGN §6: one
    section per model, engine and hardware). A current group without a baseline group of the
    same key is compared with the only one differing in hardware (or model), with a mismatch."""

    model: str
    engine: str
    suite: str
    hardware: str = ""  # hardware fingerprint of the current side's runs


class RunSummary(msgspec.Struct, frozen=True, kw_only=True):
    """Context of one run on one side, for the report's run-context section."""

    directory: str
    run_id: str
    status: str
    engine_version: str | None = None
    engine_image: str | None = None
    engine_mode: str | None = None
    hardware_fingerprint: str
    kitt_version: str
    started_at: str
    commit_sha: str | None = None
    run_url: str | None = None


class MetricComparison(msgspec.Struct, frozen=True, kw_only=True):
    scenario: str
    metric: str  # e.g. "ttft_ms.p50", "output_throughput_tok_s"
    direction: Direction | None
    verdict: Verdict
    baseline: float | None = None  # median across repetitions
    current: float | None = None
    change_pct: float | None = None  # (current / baseline - 1) * 100
    ci95_low_pct: float | None = None  # interval of change_pct
    ci95_high_pct: float | None = None
    # Of the null hypothesis "the change lies within the threshold" (with a 0 threshold: "no
    # change"); raw, and Holm-adjusted over every metric tested in the comparison.
    p_value: float | None = None
    p_adjusted: float | None = None
    threshold_pct: float | None = None
    # Complete repetitions on each side (pooled over the side's runs of the group).
    n_baseline: int = 0
    n_current: int = 0
    method: Method = "none"
    # What change_pct, the interval and threshold_pct are in: percent of the baseline value, or
    # for error_rate percentage points (current - baseline) * 100: 0% -> 0.5% failed is +0.5.
    change_unit: ChangeUnit = "percent"


class GroupComparison(msgspec.Struct, frozen=True, kw_only=True):
    key: GroupKey
    current_runs: list[RunSummary]
    baseline_runs: list[RunSummary] = []
    # Hardware fingerprint, model or engine-version differences between the sides: shown at the
    # top of the report; gating refuses while there are any, unless --allow-mismatch.
    mismatches: list[str] = []
    # Things the reader should know that do not block gating: a run that did not complete,
    # unreadable requests.jsonl, thresholds that differ between the sides, metrics that could
    # not be tested...
    notes: list[str] = []
    # A side has fewer than 3 complete repetitions of some scenario: intervals there cover
    # within-run sampling noise, not run-to-run drift (the report says so).
    single_repetition: bool = False
    metrics: list[MetricComparison] = []


class Comparison(msgspec.Struct, frozen=True, kw_only=True):
    """`kitt ci report --json` writes this."""

    schema_version: int = COMPARISON_SCHEMA_VERSION
    baseline_found: bool
    groups: list[GroupComparison]
    # Groups found on the baseline side only (nothing current to compare them with).
    baseline_only: list[GroupKey] = []
    alpha: float = 0.05

    def count(self, verdict: Verdict) -> int:
        return sum(1 for g in self.groups for m in g.metrics if m.verdict == verdict)

    @property
    def has_regression(self) -> bool:
        return self.count("regression") > 0

    @property
    def has_mismatch(self) -> bool:
        return any(g.mismatches for g in self.groups)
