"""Descriptive statistics used by every metric.

Percentiles use linear interpolation between closest ranks (Hyndman & Fan type 7, the default of
numpy.percentile and of `vllm bench serve`): for sorted values x[0..n-1] and q in [0, 100],
h = (n - 1) * q / 100 and p = x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)]).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

PERCENTILES: tuple[int, ...] = (50, 90, 95, 99)


class Stats(msgspec.Struct, frozen=True, kw_only=True):
    """Summary of one sample. `std` is the sample standard deviation (n - 1); 0 when n == 1."""

    count: int
    mean: float
    std: float
    min: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, by linear interpolation."""
    if not sorted_values:
        raise ValueError("percentile of an empty sample")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    h = (len(sorted_values) - 1) * q / 100
    lo = math.floor(h)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (h - lo) * (sorted_values[hi] - sorted_values[lo])


def describe(values: Sequence[float]) -> Stats | None:
    """count, mean, sample std, min, p50, p90, p95, p99 and max; None for an empty sample."""
    if not values:
        return None
    ordered = sorted(values)
    n = len(ordered)
    mean = math.fsum(ordered) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in ordered) / (n - 1)) if n > 1 else 0.0
    p50, p90, p95, p99 = (percentile(ordered, q) for q in PERCENTILES)
    return Stats(
        count=n, mean=mean, std=std, min=ordered[0],
        p50=p50, p90=p90, p95=p95, p99=p99, max=ordered[-1],
    )


def median(values: Sequence[float]) -> float:
    return percentile(sorted(values), 50)


# Two-sided 95% quantiles of Student's t distribution, t(0.975, df) for df = 1..30.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)


def t_quantile_975(df: int) -> float:
    """t(0.975, df); the normal 1.96 beyond the table (within 2% from df = 31 on)."""
    if df < 1:
        raise ValueError("degrees of freedom must be >= 1")
    return _T975[df - 1] if df <= len(_T975) else 1.96


def mean_interval_95(values: Sequence[float]) -> tuple[float, float] | None:
    """Student-t 95% confidence interval of the mean; None with fewer than 2 values."""
    n = len(values)
    if n < 2:
        return None
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return (mean - half, mean + half)
