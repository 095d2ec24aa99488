"""Exit codes, decided here and nowhere else (DESIGN §2)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from kitt.domain.comparison import Comparison, GroupKey
from kitt.domain.errors import KittError, UsageError
from kitt.domain.results import RunMetrics


class ExitCode(IntEnum):
    OK = 0
    # Benchmark failure, missing/invalid results, API error, or a regression when gating.
    FAILED = 1
    USAGE = 2
    INTERRUPTED = 130


def exit_code_for_error(error: KittError) -> ExitCode:
    return ExitCode.USAGE if isinstance(error, UsageError) else ExitCode.FAILED


def exit_code_for_run(metrics: RunMetrics) -> ExitCode:
    if metrics.status == "interrupted":
        return ExitCode.INTERRUPTED
    return ExitCode.OK if metrics.passed else ExitCode.FAILED


@dataclass(frozen=True)
class Gate:
    """The exit code of `kitt ci report` and, when it is not 0, the one-line reason."""

    code: ExitCode
    reason: str | None = None


def gate_report(comparison: Comparison, *, fail_on_regression: bool, allow_mismatch: bool) -> Gate:
    """`kitt ci report`: 0 unless gating is on (--fail-on-regression) and either the sides are
    not like for like (refused unless --allow-mismatch) or a metric regressed. Without a
    baseline there is nothing to gate on: 0."""
    if not fail_on_regression or not comparison.baseline_found:
        return Gate(ExitCode.OK)
    if comparison.has_mismatch and not allow_mismatch:
        differences = "; ".join(
            f"{_group(g.key)}: {text}" for g in comparison.groups for text in g.mismatches
        )
        return Gate(
            ExitCode.FAILED,
            f"gating refused: the baseline is not like for like ({differences}), so a verdict "
            "would not be about this change alone; pass --allow-mismatch to gate anyway",
        )
    regressions = [
        (g.key, m) for g in comparison.groups for m in g.metrics if m.verdict == "regression"
    ]
    if regressions:
        several = len(comparison.groups) > 1
        shown = ", ".join(
            (f"{_group(key)}: " if several else "")
            + f"{m.scenario} {m.metric}"
            + (f" {_change(m.change_pct, m.change_unit)}" if m.change_pct is not None else "")
            for key, m in regressions[:_MAX_LISTED]
        )
        extra = len(regressions) - _MAX_LISTED
        more = f" and {extra} more" if extra > 0 else ""
        count = f"{len(regressions)} regression{'' if len(regressions) == 1 else 's'}"
        return Gate(ExitCode.FAILED, f"{count} (--fail-on-regression): {shown}{more}")
    return Gate(ExitCode.OK)


_MAX_LISTED = 5


def _group(key: GroupKey) -> str:
    return f"{key.model} on {key.engine}, suite {key.suite}"


def _change(value: float, unit: str) -> str:
    return f"{value:+.1f} pp" if unit == "points" else f"{value:+.1f}%"
