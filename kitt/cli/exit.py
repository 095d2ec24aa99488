"""Exit codes, decided here and nowhere else (DESIGN §2)."""

from __future__ import annotations

from enum import IntEnum

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
