"""Metrics of a repetition and their aggregate across repetitions (DESIGN §4, docs/metrics.md).

Latency statistics use successful requests only; failed requests are counted by reason and never
silently dropped. The throughput window runs from the first measured send to the last measured
completion (whatever its outcome); warm-up requests are excluded from everything.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Literal

import msgspec

from kitt.domain.records import RequestRecord
from kitt.domain.stats import Stats, describe, mean_interval_95, median
from kitt.domain.suite import Slo

Direction = Literal["lower", "higher"]

LATENCY_METRICS: tuple[str, ...] = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")
STAT_FIELDS: tuple[str, ...] = ("mean", "p50", "p90", "p95", "p99")
THROUGHPUT_METRICS: tuple[str, ...] = (
    "request_throughput_rps",
    "output_throughput_tok_s",
    "total_throughput_tok_s",
    "goodput_rps",
)


class RepetitionSummary(msgspec.Struct, frozen=True, kw_only=True):
    """Everything measured in one repetition of one scenario."""

    repetition: int
    # False when the run was interrupted or the engine died before the repetition ended.
    complete: bool = True
    duration_s: float
    requests: int
    completed: int
    failed: int
    errors: dict[str, int] = {}
    output_length_mismatch: int = 0
    token_source: Literal["usage", "chunks", "mixed", "none"] = "usage"
    ttft_ms: Stats | None = None
    tpot_ms: Stats | None = None
    itl_ms: Stats | None = None
    e2e_ms: Stats | None = None
    queue_ms: Stats | None = None
    schedule_lag_ms: Stats | None = None
    input_tokens: Stats | None = None
    output_tokens: Stats | None = None
    request_throughput_rps: float = 0.0
    output_throughput_tok_s: float = 0.0
    total_throughput_tok_s: float = 0.0
    goodput_rps: float | None = None
    # Open loop: sends per second actually achieved over the send window.
    achieved_rate_rps: float | None = None

    @property
    def error_rate(self) -> float:
        return self.failed / self.requests if self.requests else 0.0


class AggregateValue(msgspec.Struct, frozen=True, kw_only=True):
    """One metric across repetitions: the median, and a 95% interval of the mean when n >= 2."""

    n: int
    median: float
    mean: float
    min: float
    max: float
    ci95_low: float | None = None
    ci95_high: float | None = None


def meets_slo(record: RequestRecord, slo: Slo) -> bool:
    """A successful request meets the SLO when each set bound holds. A request with a single
    output token has no TPOT and meets any TPOT bound."""
    if not record.ok:
        return False
    if slo.ttft_ms is not None and (record.ttft_ms is None or record.ttft_ms > slo.ttft_ms):
        return False
    if slo.tpot_ms is not None and record.tpot_ms is not None and record.tpot_ms > slo.tpot_ms:
        return False
    return slo.e2e_ms is None or record.e2e_ms <= slo.e2e_ms


def summarize(
    records: Iterable[RequestRecord],
    *,
    repetition: int,
    slo: Slo | None = None,
    complete: bool = True,
) -> RepetitionSummary:
    """Summarize the measured (non warm-up) records of one repetition."""
    measured = [r for r in records if not r.warmup]
    ok = [r for r in measured if r.ok]
    failed = [r for r in measured if not r.ok]
    if measured:
        window_s = (max(r.end_ms for r in measured) - min(r.start_ms for r in measured)) / 1000
    else:
        window_s = 0.0

    def per_second(amount: float) -> float:
        return amount / window_s if window_s > 0 else 0.0

    out_tokens = sum(r.output_tokens or 0 for r in ok)
    in_tokens = sum(r.input_tokens or 0 for r in ok)
    sources = {r.token_source for r in ok}
    token_source: Literal["usage", "chunks", "mixed", "none"] = (
        "none" if not sources else sources.pop() if len(sources) == 1 else "mixed"
    )
    achieved = None
    scheduled = [r for r in measured if r.scheduled_ms is not None]
    if len(scheduled) >= 2:
        starts = sorted(r.start_ms for r in scheduled)
        span_s = (starts[-1] - starts[0]) / 1000
        achieved = (len(starts) - 1) / span_s if span_s > 0 else None

    return RepetitionSummary(
        repetition=repetition,
        complete=complete,
        duration_s=window_s,
        requests=len(measured),
        completed=len(ok),
        failed=len(failed),
        errors=dict(Counter(r.error_kind or "unknown" for r in failed).most_common()),
        output_length_mismatch=sum(1 for r in ok if r.output_length_mismatch),
        token_source=token_source,
        ttft_ms=describe([r.ttft_ms for r in ok if r.ttft_ms is not None]),
        tpot_ms=describe([r.tpot_ms for r in ok if r.tpot_ms is not None]),
        itl_ms=describe([gap for r in ok for gap in r.itl_ms]),
        e2e_ms=describe([r.e2e_ms for r in ok]),
        queue_ms=describe([r.queue_ms for r in measured]),
        schedule_lag_ms=describe(
            [r.schedule_lag_ms for r in measured if r.schedule_lag_ms is not None]
        ),
        input_tokens=describe([r.input_tokens for r in ok if r.input_tokens is not None]),
        output_tokens=describe([r.output_tokens for r in ok if r.output_tokens is not None]),
        request_throughput_rps=per_second(len(ok)),
        output_throughput_tok_s=per_second(out_tokens),
        total_throughput_tok_s=per_second(out_tokens + in_tokens),
        goodput_rps=None if slo is None else per_second(sum(1 for r in ok if meets_slo(r, slo))),
        achieved_rate_rps=achieved,
    )


def metric_values(summary: RepetitionSummary) -> dict[str, float]:
    """The comparable metrics of a repetition, flat: `ttft_ms.p50`, `output_throughput_tok_s`..."""
    values: dict[str, float] = {}
    for name in LATENCY_METRICS:
        stats: Stats | None = getattr(summary, name)
        if stats is not None:
            for field in STAT_FIELDS:
                values[f"{name}.{field}"] = getattr(stats, field)
    for name in THROUGHPUT_METRICS:
        value = getattr(summary, name)
        if value is not None:
            values[name] = value
    values["error_rate"] = summary.error_rate
    return values


def direction(metric: str) -> Direction:
    """Which way is better: lower for latencies and error rate, higher for throughputs."""
    base = metric.split(".", 1)[0]
    if base in THROUGHPUT_METRICS:
        return "higher"
    if base in LATENCY_METRICS or base == "error_rate":
        return "lower"
    raise KeyError(f"unknown metric {metric!r}")


def aggregate(summaries: Sequence[RepetitionSummary]) -> dict[str, AggregateValue]:
    """Median (and mean with a Student-t 95% interval) of each metric across repetitions.
    Only complete repetitions count; a metric missing from any of them is left out."""
    complete = [s for s in summaries if s.complete]
    if not complete:
        return {}
    per_rep = [metric_values(s) for s in complete]
    common = set(per_rep[0]).intersection(*per_rep[1:])
    result: dict[str, AggregateValue] = {}
    for metric in sorted(common, key=list(per_rep[0]).index):
        values = [v[metric] for v in per_rep]
        interval = mean_interval_95(values)
        result[metric] = AggregateValue(
            n=len(values),
            median=median(values),
            mean=math.fsum(values) / len(values),
            min=min(values),
            max=max(values),
            ci95_low=None if interval is None else interval[0],
            ci95_high=None if interval is None else interval[1],
        )
    return result


def failure_reasons(
    summaries: Sequence[RepetitionSummary], *, max_error_rate: float, repetitions: int
) -> list[str]:
    """Why a scenario did not pass; empty when it did."""
    reasons: list[str] = []
    for s in summaries:
        if s.requests == 0:
            reasons.append(f"repetition {s.repetition}: no request was measured")
        elif s.error_rate > max_error_rate:
            kinds = ", ".join(f"{kind} x{count}" for kind, count in s.errors.items())
            reasons.append(
                f"repetition {s.repetition}: {s.failed} of {s.requests} requests failed "
                f"({s.error_rate:.1%} > {max_error_rate:.1%} allowed): {kinds}"
            )
        if not s.complete:
            reasons.append(f"repetition {s.repetition}: did not finish")
    missing = repetitions - len(summaries)
    if missing > 0:
        reasons.append(f"{missing} of {repetitions} repetitions did not run")
    return reasons
