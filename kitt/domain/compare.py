"""Compare current results with a baseline: the verdict of every metric (DESIGN §6).

A functional core: runs in, a `Comparison` out; no I/O. docs/comparison.md explains the rules
for users; in short:

1. Runs are grouped by (model, engine, suite, hardware); a side may hold several runs of one
   group (CI re-runs, matrix duplicates): their complete repetitions are pooled. Current groups
   are paired with baseline groups of the same key, else with the only baseline group of the same
   model, engine and suite (hardware mismatch), else with the only one of the same engine and
   suite (model mismatch).
2. Scenarios match by name; metrics come from `metric_values` of each complete repetition. The
   value shown per side is the median across repetitions.
3. Each metric has a threshold (--threshold, else the suite's [thresholds], else a default
   rule); suite and default thresholds are doubled when a side has fewer than 3 repetitions.
4. Each metric present on both sides is tested, the null hypothesis being "the change lies
   within the threshold": with >= 3 repetitions on each side, Welch's t-test on log values
   across repetitions; with fewer, on the per-request samples (a bootstrap for the interval and
   for means and throughputs, a quantile test for percentiles, a clustered share test for ITL
   percentiles, Fisher's exact or an Agresti-Caffo test for the error rate). The p-values of
   every test in the comparison form one Holm family.
5. regression / improvement: beyond the threshold and significant after Holm (in the same
   direction); inconclusive: beyond the threshold, not significant; unchanged otherwise.
"""

from __future__ import annotations

import hashlib
import math
import random
import statistics
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from types import MappingProxyType

import msgspec

from kitt.domain.comparison import (
    Comparison,
    GroupComparison,
    GroupKey,
    Method,
    MetricComparison,
    RunData,
    RunSummary,
    Verdict,
)
from kitt.domain.metrics import (
    LATENCY_METRICS,
    STAT_FIELDS,
    THROUGHPUT_METRICS,
    RepetitionSummary,
    direction,
    meets_slo,
    metric_values,
)
from kitt.domain.records import RequestRecord
from kitt.domain.results import ScenarioResult
from kitt.domain.significance import (
    Significance,
    bootstrap_result,
    clustered_share_test,
    holm,
    quantile_test,
    rate_difference,
    welch_test,
)
from kitt.domain.stats import median, percentile
from kitt.domain.suite import Slo

# Repetitions each side needs for the test across repetitions; with fewer, the bootstrap.
MIN_REPETITIONS = 3
# Bootstrap resamples per scenario. The p-values of means and throughputs rest on the bootstrap
# standard error, which 500 replicates estimate within about 3%; the interval's ends rest on the
# 12 or 13 most extreme replicates of each side, good enough for a figure shown to one decimal.
# A performance-suite-sized single-repetition comparison takes about 1.3 s on one core
# (docs/comparison.md).
DEFAULT_RESAMPLES = 500
# With fewer repetitions, a metric is tested on per-request samples when each side has at least
# this many requests with a value; a bootstrap interval of a percentile is shown when each
# repetition has this many requests beyond it (for ITL: requests with a gap beyond it).
MIN_REQUESTS = 8
MIN_TAIL_SAMPLES = 5
# Defaults are multiplied by this when a side has fewer than MIN_REPETITIONS (DESIGN §6).
FEW_REPETITIONS_FACTOR = 2.0
ERROR_RATE = "error_rate"
# Percentage points (error_rate) rather than percent of the baseline value.
DEFAULT_ERROR_RATE_POINTS = 1.0

_PERCENTILE_FIELDS = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}
_NO_THRESHOLDS: Mapping[str, float] = MappingProxyType({})


def comparable_metrics() -> list[str]:
    """Every metric name a comparison can hold, in report order."""
    names = [f"{base}.{stat}" for base in LATENCY_METRICS for stat in STAT_FIELDS]
    return [*names, *THROUGHPUT_METRICS, ERROR_RATE]


def threshold_names() -> list[str]:
    """Names a threshold may be set for: every metric, and a latency metric's base name
    (`ttft_ms`), which sets all of its statistics at once."""
    return [*comparable_metrics(), *LATENCY_METRICS]


def default_threshold(metric: str) -> float:
    """The built-in threshold of a metric, in percent (error_rate: percentage points): 5% for
    means, medians, throughputs and goodput; 7.5% for p90 and p95; 10% for p99; 1 point for
    the error rate. Wider for tails, whose run-to-run spread is larger."""
    if metric == ERROR_RATE:
        return DEFAULT_ERROR_RATE_POINTS
    stat = metric.split(".", 1)[1] if "." in metric else ""
    if stat in ("p90", "p95"):
        return 7.5
    if stat == "p99":
        return 10.0
    return 5.0


def _lookup(metric: str, table: Mapping[str, float]) -> float | None:
    if metric in table:
        return table[metric]
    base = metric.split(".", 1)[0]
    return table.get(base) if base != metric else None


def threshold_for(
    metric: str,
    *,
    explicit: Mapping[str, float],
    suite: Mapping[str, float],
    few_repetitions: bool,
) -> float:
    """The threshold of `metric`: an explicit (--threshold) value as given; else the suite's,
    else the default rule, either doubled when a side has fewer than 3 repetitions."""
    value = _lookup(metric, explicit)
    if value is not None:
        return value
    value = _lookup(metric, suite)
    if value is None:
        value = default_threshold(metric)
    return value * FEW_REPETITIONS_FACTOR if few_repetitions else value


# --- grouping and pairing ------------------------------------------------------------------------


def group_key(run: RunData) -> GroupKey:
    m = run.metrics
    return GroupKey(model=m.model, engine=m.engine.name, suite=m.suite,
                    hardware=m.hardware_fingerprint)


def group_runs(runs: Iterable[RunData]) -> dict[GroupKey, list[RunData]]:
    """Runs by group, in key order; within a group in the order given."""
    groups: dict[GroupKey, list[RunData]] = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    return dict(sorted(groups.items()))


def _pair_groups(
    current: Sequence[GroupKey], baseline: Sequence[GroupKey]
) -> tuple[dict[GroupKey, GroupKey], list[GroupKey]]:
    """Which baseline group each current group is compared with, and the baseline groups left
    over. Exact keys first; then a unique counterpart on each side with the same model, engine
    and suite (another machine); then with the same engine and suite (another model)."""
    pairs: dict[GroupKey, GroupKey] = {}
    left = [k for k in baseline if k not in current]
    for key in current:
        if key in baseline:
            pairs[key] = key

    def relax(similar: Callable[[GroupKey], tuple[str, ...]]) -> None:
        for key in current:
            if key in pairs:
                continue
            mine = [k for k in current if k not in pairs and similar(k) == similar(key)]
            theirs = [k for k in left if similar(k) == similar(key)]
            if len(mine) == 1 and len(theirs) == 1:
                pairs[key] = theirs[0]
                left.remove(theirs[0])

    relax(lambda k: (k.model, k.engine, k.suite))
    relax(lambda k: (k.engine, k.suite))
    return pairs, left


# --- one side of one scenario --------------------------------------------------------------------


@dataclass
class _Repetition:
    run: RunData
    summary: RepetitionSummary
    values: dict[str, float]
    records: list[RequestRecord] | None  # measured records; None when unavailable


@dataclass
class _ScenarioSide:
    result: ScenarioResult  # of the first run holding the scenario (load, workload, SLO)
    repetitions: list[_Repetition] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.repetitions)

    def metrics(self) -> dict[str, list[float]]:
        """Per-repetition values of the metrics every repetition has."""
        if not self.repetitions:
            return {}
        common = set(self.repetitions[0].values).intersection(
            *(r.values for r in self.repetitions[1:])
        )
        return {m: [r.values[m] for r in self.repetitions] for m in self.repetitions[0].values
                if m in common}

    @property
    def has_records(self) -> bool:
        return bool(self.repetitions) and all(r.records is not None for r in self.repetitions)


def _measured_records(run: RunData) -> dict[tuple[str, int], list[RequestRecord]]:
    by_repetition: dict[tuple[str, int], list[RequestRecord]] = {}
    for record in run.requests:
        if not record.warmup:
            by_repetition.setdefault((record.scenario, record.repetition), []).append(record)
    return by_repetition


def _scenario_sides(
    runs: Sequence[RunData], side: str, notes: list[str]
) -> dict[str, _ScenarioSide]:
    """Complete repetitions of every scenario on one side, pooled over its runs."""
    scenarios: dict[str, _ScenarioSide] = {}
    for run in runs:
        notes.extend(f"{side} run {run.directory}: {note}" for note in run.notes)
        if run.metrics.status != "complete":
            reason = f" ({run.metrics.status_reason})" if run.metrics.status_reason else ""
            notes.append(f"{side} run {run.directory} is {run.metrics.status}{reason}: only "
                         "its complete repetitions are compared")
        records = _measured_records(run)
        for scenario in run.metrics.scenarios:
            entry = scenarios.setdefault(scenario.name, _ScenarioSide(result=scenario))
            for summary in scenario.repetitions:
                if not summary.complete:
                    continue
                found = records.get((scenario.name, summary.repetition))
                usable = found if found is not None and len(found) == summary.requests else None
                if run.requests and usable is None:
                    notes.append(
                        f"{side} run {run.directory}: requests.jsonl holds {len(found or ())} "
                        f"measured requests of {scenario.name} repetition {summary.repetition}, "
                        f"metrics.json counts {summary.requests}: its per-request samples are "
                        "not used"
                    )
                entry.repetitions.append(
                    _Repetition(run, summary, metric_values(summary), usable)
                )
    for name, entry in scenarios.items():
        if not entry.repetitions:
            notes.append(f"{side}: scenario {name} has no complete repetition")
    return {name: entry for name, entry in scenarios.items() if entry.repetitions}


# --- bootstrap over per-request samples ----------------------------------------------------------

_nan = math.nan


def _gatherer(indices: list[int]) -> Callable[[Sequence[float]], Sequence[float]]:
    if len(indices) == 1:
        only = indices[0]
        return lambda values: (values[only],)
    return itemgetter(*indices)  # type: ignore[return-value]


def _identity(values: Sequence[float]) -> Sequence[float]:
    return values


def _count_above(ordered: list[float]) -> Callable[[float], int]:
    return lambda x: len(ordered) - bisect_right(ordered, x)


def _quantile_density(ordered: Sequence[float], q: float) -> float:
    """Density of the pooled sample at its q-quantile (0 < q < 1): a difference quotient of the
    empirical quantile function over q +- h, h by Hall and Sheather's rule (widened while the
    quotient would divide by zero). math.inf when the sample does not spread at all."""
    n = len(ordered)
    normal = statistics.NormalDist()
    z = normal.inv_cdf(q)
    h = n ** (-1 / 3) * normal.inv_cdf(0.975) ** (2 / 3) * (
        1.5 * normal.pdf(z) ** 2 / (2 * z * z + 1)
    ) ** (1 / 3)
    while True:
        low, high = max(0.0, q - h), min(1.0, q + h)
        spread = percentile(ordered, high * 100) - percentile(ordered, low * 100)
        if spread > 0:
            return (high - low) / spread
        if low == 0.0 and high == 1.0:
            return math.inf
        h *= 2


class _RepetitionSampler:
    """One repetition's requests, laid out so that a resample computes every metric quickly."""

    def __init__(self, repetition: _Repetition, *, slo: Slo | None, closed_loop: bool) -> None:
        records = repetition.records or []
        self.n = len(records)
        # Metrics whose bootstrap interval is trustworthy (see _mark_intervals).
        self.interval_ok: set[str] = set(THROUGHPUT_METRICS)
        # Per-request values (NaN where a request has none: failed, or a single token's TPOT).
        self.columns: dict[str, list[float]] = {}
        self.latencies: list[tuple[str, list[float], bool]] = []
        for name, get in (
            ("ttft_ms", lambda r: r.ttft_ms),
            ("tpot_ms", lambda r: r.tpot_ms),
            ("e2e_ms", lambda r: r.e2e_ms),
        ):
            values = [get(r) if r.ok and get(r) is not None else _nan for r in records]
            present = sorted(v for v in values if v == v)
            if present:
                self.columns[name] = present
                self.latencies.append((name, values, len(present) < len(values)))
                self._mark_intervals(name, present, _count_above(present))

        # ITL: the mean is a ratio of per-request sums; the percentiles are linearized (see
        # docs/comparison.md): q-quantile* = q-quantile + (F(x) - F*(x)) / f(x), with
        # x the observed quantile, F the pooled share of gaps <= x, F* that share in the
        # resample (a ratio of per-request counts) and f the pooled density at x.
        gaps = [sorted(r.itl_ms) if r.ok else [] for r in records]
        self.gaps = [g for g in gaps if g]
        pooled = sorted(g for request in gaps for g in request)
        self.itl: dict[str, tuple[list[float], float, float, float]] = {}
        self.gap_count = [float(len(g)) for g in gaps]
        self.gap_sum = [math.fsum(g) for g in gaps]
        if pooled:
            quantiles = {}
            for stat, q in _PERCENTILE_FIELDS.items():
                x = quantiles[stat] = percentile(pooled, q)
                below = [float(bisect_right(request, x)) for request in gaps]
                share = sum(below) / len(pooled)
                self.itl[f"itl_ms.{stat}"] = (below, x, share, _quantile_density(pooled, q / 100))
            # A request is the unit resampled: count requests, not gaps, in the tails.
            self._mark_intervals("itl_ms", quantiles,
                                 lambda x: sum(1 for g in self.gaps if g[-1] > x))

        # Closed-loop throughput: tokens (or requests) per second of worker busy time, scaled
        # to the observed value; the busy time is each request's end-to-end latency.
        self.throughputs: list[tuple[str, list[float], float, float]] = []
        self.busy = [r.e2e_ms for r in records]
        self.total_busy = 0.0
        if closed_loop and records:
            total_busy = math.fsum(self.busy)
            numerators: dict[str, list[float]] = {
                "request_throughput_rps": [1.0 if r.ok else 0.0 for r in records],
                "output_throughput_tok_s": [
                    float(r.output_tokens or 0) if r.ok else 0.0 for r in records],
                "total_throughput_tok_s": [
                    float((r.output_tokens or 0) + (r.input_tokens or 0)) if r.ok else 0.0
                    for r in records],
            }
            if slo is not None:
                numerators["goodput_rps"] = [1.0 if meets_slo(r, slo) else 0.0 for r in records]
            for name, numerator in numerators.items():
                observed = repetition.values.get(name)
                if observed is not None and total_busy > 0:
                    self.throughputs.append((name, numerator, math.fsum(numerator), observed))
            self.total_busy = total_busy

    def _mark_intervals(
        self, name: str, values: Sequence[float] | Mapping[str, float],
        beyond: Callable[[float], int],
    ) -> None:
        """A percentile's bootstrap rests on the few samples beyond it; with fewer than
        MIN_TAIL_SAMPLES there (requests, for ITL) its interval is far too narrow (the p99 of
        60 requests is about their largest value), so it is not shown. `values` are sorted
        per-request values, or (ITL) the observed percentiles by statistic."""
        self.interval_ok.add(f"{name}.mean")
        for stat, q in _PERCENTILE_FIELDS.items():
            x = values[stat] if isinstance(values, Mapping) else percentile(values, q)
            if beyond(x) >= MIN_TAIL_SAMPLES:
                self.interval_ok.add(f"{name}.{stat}")

    def statistics(self, rng: random.Random | None) -> dict[str, float]:
        """Every metric this sampler can resample, on a resample (or, without rng, the data)."""
        get: Callable[[Sequence[float]], Sequence[float]]
        if rng is None:
            get = _identity
        else:
            n = self.n
            rand = rng.random
            get = _gatherer([int(rand() * n) for _ in range(n)])
        values: dict[str, float] = {}
        for name, column, has_gaps in self.latencies:
            picked = get(column)
            ordered = sorted(v for v in picked if v == v) if has_gaps else sorted(picked)
            if not ordered:
                continue
            values[f"{name}.mean"] = math.fsum(ordered) / len(ordered)
            for stat, q in _PERCENTILE_FIELDS.items():
                values[f"{name}.{stat}"] = percentile(ordered, q)
        gap_count = sum(get(self.gap_count))
        if gap_count > 0:
            values["itl_ms.mean"] = sum(get(self.gap_sum)) / gap_count
            for metric, (below, x, share, density) in self.itl.items():
                if math.isinf(density):
                    values[metric] = x
                else:
                    values[metric] = x + (share - sum(get(below)) / gap_count) / density
        if self.throughputs:
            busy_ratio = sum(get(self.busy)) / self.total_busy
            for name, numerator, total, observed in self.throughputs:
                if total == 0:
                    values[name] = 0.0
                else:
                    values[name] = observed * (sum(get(numerator)) / total) / busy_ratio
        return values


class _SideSampler:
    """All repetitions of one side; a side's statistic is the median across its repetitions,
    like the value the comparison shows. Each repetition is resampled on its own."""

    def __init__(self, side: _ScenarioSide, *, slo: Slo | None, closed_loop: bool) -> None:
        self.samplers = [_RepetitionSampler(r, slo=slo, closed_loop=closed_loop)
                         for r in side.repetitions]
        self.interval_ok = set.intersection(*(s.interval_ok for s in self.samplers))
        self.requests = sum(s.n for s in self.samplers)
        self.gaps = [g for s in self.samplers for g in s.gaps]
        self.pooled_gaps = sorted(g for request in self.gaps for g in request)

    def values(self, name: str) -> list[float]:
        """The per-request values of a latency metric, pooled over the repetitions."""
        return [v for s in self.samplers for v in s.columns.get(name, ())]

    def statistics(self, rng: random.Random | None) -> dict[str, float]:
        per_repetition = [s.statistics(rng) for s in self.samplers]
        if len(per_repetition) == 1:
            return per_repetition[0]
        common = set(per_repetition[0]).intersection(*per_repetition[1:])
        return {m: median([v[m] for v in per_repetition]) for m in common}


def _scale(metric: str, values: Iterable[float]) -> str:
    """The scale a metric is tested on: log (ratios), or linear where a value is not > 0 and for
    the error rate (percentage points)."""
    if metric == ERROR_RATE:
        return "points"
    return "log" if all(v > 0 for v in values) else "linear"


def _transform(scale: str, value: float) -> float:
    if scale == "log":
        return math.log(value)
    return value * 100.0 if scale == "points" else value


def _units(side: _SideSampler, metric: str) -> int:
    """Independent units (requests) behind a metric on one side."""
    base = metric.split(".", 1)[0]
    if base in ("ttft_ms", "tpot_ms", "e2e_ms"):
        return len(side.values(base))
    if base == "itl_ms":
        return len(side.gaps)
    return side.requests


def _margin(scale: str, threshold: float, baseline: float) -> tuple[float, float]:
    """The threshold as bounds on the test scale: the null hypothesis of every test is "the
    change lies within the threshold" (docs/comparison.md)."""
    if scale == "log":
        low = math.log1p(-threshold / 100.0) if threshold < 100.0 else -math.inf
        return low, math.log1p(threshold / 100.0)
    if scale == "points":
        return -threshold, threshold
    bound = abs(baseline) * threshold / 100.0
    return -bound, bound


def _rank_p_value(
    metric: str, side_c: _SideSampler, side_b: _SideSampler, *, threshold: float,
    estimate: float,
) -> float | None:
    """The p-value of a percentile, from a rank-based test that needs no standard error; None
    for the metrics whose p-value comes from the bootstrap."""
    base, _, stat = metric.partition(".")
    if stat not in _PERCENTILE_FIELDS:
        return None
    q = _PERCENTILE_FIELDS[stat]
    low_ratio, high_ratio = max(0.0, 1.0 - threshold / 100.0), 1.0 + threshold / 100.0
    if base != "itl_ms":
        return quantile_test(side_c.values(base), side_b.values(base), q,
                             low_ratio=low_ratio, high_ratio=high_ratio)
    # ITL: the baseline's gaps scaled to the bound the change went past, then the clustered
    # share of gaps above the pooled percentile on each side.
    low, high = _margin("log", threshold, 1.0)
    if low <= estimate <= high:
        return 1.0
    upper = estimate > high
    ratio = high_ratio if upper else low_ratio
    baseline_gaps = [[g * ratio for g in request] for request in side_b.gaps]
    # Two sorted runs: sorted() merges them in linear time.
    pooled = sorted(side_c.pooled_gaps + [g * ratio for g in side_b.pooled_gaps])
    x = percentile(pooled, q)

    def counts(gaps: list[list[float]]) -> list[tuple[float, float]]:
        return [(float(len(g) - bisect_right(g, x)), float(len(g))) for g in gaps]

    one_sided = clustered_share_test(counts(side_c.gaps), counts(baseline_gaps),
                                     alternative="greater" if upper else "less")
    return min(1.0, 2.0 * one_sided)


def _testable(metric: str, side_c: _SideSampler, side_b: _SideSampler) -> bool:
    units = min(_units(side_c, metric), _units(side_b, metric))
    if units < MIN_REQUESTS:
        return False
    base, _, stat = metric.partition(".")
    if base == "itl_ms" and stat in _PERCENTILE_FIELDS:
        # The clustered test's variance needs requests on both sides of the split.
        pooled = sorted(side_c.pooled_gaps + side_b.pooled_gaps)
        x = percentile(pooled, _PERCENTILE_FIELDS[stat])
        beyond = sum(1 for g in (*side_c.gaps, *side_b.gaps) if g[-1] > x)
        return beyond >= MIN_TAIL_SAMPLES
    return True


def _bootstrap(
    current: _ScenarioSide,
    baseline: _ScenarioSide,
    metrics: Mapping[str, tuple[float, float, float]],
    *,
    resamples: int,
    rng: random.Random,
) -> dict[str, tuple[str, Significance]]:
    """(scale, result) of each metric in `metrics` (name -> (current, baseline) as shown, and
    the threshold) that the per-request samples of both sides allow to test.

    The interval is always the bootstrap's (requests resampled with replacement within each
    repetition, every metric of the scenario from the same resample). The p-value: for means
    and throughputs from the bootstrap standard error (Student's t, requests - 1 degrees of
    freedom on the smaller side); for percentiles of per-request values a quantile test; for
    ITL percentiles a clustered share test; for the error rate Fisher's exact test."""
    closed = current.result.load.pattern == "closed" and baseline.result.load.pattern == "closed"
    side_c = _SideSampler(current, slo=current.result.slo, closed_loop=closed)
    side_b = _SideSampler(baseline, slo=baseline.result.slo, closed_loop=closed)
    full_c, full_b = side_c.statistics(None), side_b.statistics(None)
    names = [m for m in metrics
             if m in full_c and m in full_b and _testable(m, side_c, side_b)]
    replicates: dict[str, list[tuple[float, float]]] = {m: [] for m in names}
    for _ in range(resamples):
        stats_c, stats_b = side_c.statistics(rng), side_b.statistics(rng)
        for m in names:
            if m in stats_c and m in stats_b:
                replicates[m].append((stats_c[m], stats_b[m]))
    results: dict[str, tuple[str, Significance]] = {}
    for m in names:
        pairs = replicates[m]
        if len(pairs) < resamples:  # the metric vanished from some resample: not testable
            continue
        shown_c, shown_b, threshold = metrics[m]
        scale = _scale(m, [shown_c, shown_b, full_c[m], full_b[m],
                           *(c for c, _ in pairs), *(b for _, b in pairs)])
        recomputed = _transform(scale, full_c[m]) - _transform(scale, full_b[m])
        deviations = [_transform(scale, c) - _transform(scale, b) - recomputed for c, b in pairs]
        estimate = _transform(scale, shown_c) - _transform(scale, shown_b)
        df = min(_units(side_c, m), _units(side_b, m)) - 1
        low, high = _margin(scale, threshold, shown_b)
        result = bootstrap_result(estimate, deviations, df=df, low=low, high=high)
        rank_p = _rank_p_value(m, side_c, side_b, threshold=threshold, estimate=estimate)
        if rank_p is not None:
            result = msgspec.structs.replace(result, p_value=rank_p, df=None)
        if m not in side_c.interval_ok or m not in side_b.interval_ok:
            result = msgspec.structs.replace(result, low=None, high=None)
        results[m] = (scale, result)
    return results


def _welch(metric: str, current: Sequence[float], baseline: Sequence[float], *,
           threshold: float) -> tuple[str, Significance]:
    scale = _scale(metric, [*current, *baseline])
    low, high = _margin(scale, threshold, median(baseline))
    return scale, welch_test([_transform(scale, v) for v in current],
                             [_transform(scale, v) for v in baseline], low=low, high=high)


def _error_rate_test(current: _ScenarioSide, baseline: _ScenarioSide, threshold: float
                     ) -> Significance:
    """The error rate on the requests pooled over each side's repetitions, in points."""
    result = rate_difference(
        sum(r.summary.failed for r in current.repetitions),
        sum(r.summary.requests for r in current.repetitions),
        sum(r.summary.failed for r in baseline.repetitions),
        sum(r.summary.requests for r in baseline.repetitions),
        margin=threshold / 100.0,
    )
    # In points, like change_pct; the estimate shown is the difference of the medians.
    return Significance(
        estimate=result.estimate * 100.0,
        low=None if result.low is None else result.low * 100.0,
        high=None if result.high is None else result.high * 100.0,
        p_value=result.p_value,
    )


def _interval_pct(scale: str, result: Significance, baseline: float
                  ) -> tuple[float | None, float | None]:
    """The interval of the change in the units of change_pct."""
    if result.low is None or result.high is None:
        return None, None
    if scale == "log":
        return math.expm1(result.low) * 100.0, math.expm1(result.high) * 100.0
    if scale == "points":
        return result.low, result.high
    if baseline > 0:
        return result.low / baseline * 100.0, result.high / baseline * 100.0
    return None, None


def _seed_for(seed: int, key: GroupKey, scenario: str) -> int:
    """A stable seed per scenario (hash() is salted per process; this is not)."""
    text = f"{seed}\0{key.model}\0{key.engine}\0{key.suite}\0{key.hardware}\0{scenario}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


# --- metric comparisons --------------------------------------------------------------------------


@dataclass
class _Draft:
    """A metric comparison before the Holm adjustment fixes its verdict."""

    scenario: str
    metric: str
    baseline: float | None
    current: float | None
    threshold: float
    n_baseline: int
    n_current: int
    verdict: Verdict | None = None  # missing / new, decided up front
    change: float | None = None
    low: float | None = None
    high: float | None = None
    p_value: float | None = None
    estimate: float | None = None
    method: Method = "none"
    p_adjusted: float | None = None

    def finish(self, alpha: float) -> MetricComparison:
        verdict = self.verdict or self._verdict(alpha)
        return MetricComparison(
            scenario=self.scenario,
            metric=self.metric,
            direction=direction(self.metric),
            verdict=verdict,
            baseline=self.baseline,
            current=self.current,
            change_pct=self.change,
            ci95_low_pct=self.low,
            ci95_high_pct=self.high,
            p_value=self.p_value,
            p_adjusted=self.p_adjusted,
            threshold_pct=self.threshold,
            n_baseline=self.n_baseline,
            n_current=self.n_current,
            method=self.method,
            change_unit="points" if self.metric == ERROR_RATE else "percent",
        )

    def _verdict(self, alpha: float) -> Verdict:
        assert self.current is not None and self.baseline is not None
        if self.change is None:  # from zero to something: beyond any threshold
            beyond, sign = self.current != self.baseline, 1.0
        else:
            beyond, sign = abs(self.change) > self.threshold, math.copysign(1.0, self.change)
        if not beyond:
            return "unchanged"
        supported = (
            self.p_adjusted is not None
            and self.p_adjusted < alpha
            and self.estimate is not None
            and self.estimate * sign > 0  # the test found the change in the same direction
        )
        if not supported:
            return "inconclusive"
        worse = sign > 0 if direction(self.metric) == "lower" else sign < 0
        return "regression" if worse else "improvement"


def _change(metric: str, current: float, baseline: float) -> float | None:
    if metric == ERROR_RATE:
        return (current - baseline) * 100.0
    if baseline == 0:
        return 0.0 if current == 0 else None
    return (current / baseline - 1.0) * 100.0


def _scenario_drafts(
    name: str,
    current: _ScenarioSide | None,
    baseline: _ScenarioSide | None,
    *,
    explicit: Mapping[str, float],
    suite_thresholds: Mapping[str, float],
    resamples: int,
    rng: random.Random,
) -> list[_Draft]:
    values_c = current.metrics() if current else {}
    values_b = baseline.metrics() if baseline else {}
    n_c = current.n if current else 0
    n_b = baseline.n if baseline else 0
    few = (current is not None and n_c < MIN_REPETITIONS) or (
        baseline is not None and n_b < MIN_REPETITIONS)
    order = comparable_metrics()
    names = sorted(set(values_c) | set(values_b),
                   key=lambda m: order.index(m) if m in order else len(order))
    drafts: list[_Draft] = []
    shown: dict[str, tuple[float, float, float]] = {}
    for metric in names:
        draft = _Draft(
            scenario=name,
            metric=metric,
            baseline=median(values_b[metric]) if metric in values_b else None,
            current=median(values_c[metric]) if metric in values_c else None,
            threshold=threshold_for(metric, explicit=explicit, suite=suite_thresholds,
                                    few_repetitions=few),
            n_baseline=n_b,
            n_current=n_c,
        )
        if draft.current is None:
            draft.verdict = "missing"
        elif draft.baseline is None:
            draft.verdict = "new"
        else:
            draft.change = _change(metric, draft.current, draft.baseline)
            shown[metric] = (draft.current, draft.baseline, draft.threshold)
        drafts.append(draft)
    if not shown or current is None or baseline is None:
        return drafts

    tests: dict[str, tuple[str, Significance]] = {}
    method: Method = (
        "welch-log" if n_c >= MIN_REPETITIONS and n_b >= MIN_REPETITIONS else "bootstrap")
    # The error rate is a count: tested on the requests pooled over the repetitions (a Welch
    # test of three per-repetition rates that happen to be 0, 0, 0 against 1/48 three times
    # would call that certain).
    rates = {m: shown.pop(m) for m in [ERROR_RATE] if m in shown}
    if method == "welch-log":
        tests = {m: _welch(m, values_c[m], values_b[m], threshold=shown[m][2]) for m in shown}
    elif current.has_records and baseline.has_records:
        tests = _bootstrap(current, baseline, shown, resamples=resamples, rng=rng)
    if rates and all(r.summary.requests for r in (*current.repetitions, *baseline.repetitions)):
        tests[ERROR_RATE] = ("points", _error_rate_test(current, baseline, rates[ERROR_RATE][2]))
    for draft in drafts:
        if draft.metric not in tests:
            continue
        scale, result = tests[draft.metric]
        assert draft.baseline is not None
        if draft.metric == ERROR_RATE:
            draft.method = "binomial"
        else:
            draft.method = method if method == "bootstrap" or scale == "log" else "welch"
        draft.p_value = result.p_value
        draft.estimate = result.estimate
        draft.low, draft.high = _interval_pct(scale, result, draft.baseline)
    return drafts


# --- groups --------------------------------------------------------------------------------------


def run_summary(run: RunData) -> RunSummary:
    m = run.metrics
    ci = run.config.ci if run.config else None
    return RunSummary(
        directory=run.directory,
        run_id=m.run_id,
        status=m.status,
        engine_version=m.engine.version,
        engine_image=m.engine.image,
        engine_mode=m.engine.mode,
        hardware_fingerprint=m.hardware_fingerprint,
        kitt_version=m.kitt_version,
        started_at=m.started_at,
        commit_sha=ci.commit_sha if ci else None,
        run_url=ci.run_url if ci else None,
    )


def _describe(values: Iterable[str | None]) -> str:
    distinct = sorted({v or "unknown" for v in values})
    return ", ".join(distinct)


def _mismatches(key: GroupKey, base_key: GroupKey, current: Sequence[RunData],
                baseline: Sequence[RunData]) -> list[str]:
    found: list[str] = []

    def check(what: str, get: Callable[[RunData], str | None]) -> None:
        mine = {get(r) or "unknown" for r in current}
        theirs = {get(r) or "unknown" for r in baseline}
        if mine != theirs:
            found.append(f"{what} differs: current {_describe(mine)}; "
                         f"baseline {_describe(theirs)}")

    if key.model != base_key.model:
        found.append(f"model differs: current {key.model}; baseline {base_key.model}")
    check("hardware", lambda r: r.metrics.hardware_fingerprint)
    check("engine version", lambda r: r.metrics.engine.version)

    def image(r: RunData) -> str | None:
        e = r.metrics.engine
        if e.image is None:
            return None
        return f"{e.image}@{e.image_digest}" if e.image_digest else e.image

    if any(r.metrics.engine.image for r in [*current, *baseline]):
        check("engine image", image)
    check("engine mode", lambda r: r.metrics.engine.mode)
    return found


def _context_notes(current: Sequence[RunData], baseline: Sequence[RunData]) -> list[str]:
    notes: list[str] = []

    def differs(get: Callable[[RunData], object]) -> tuple[str, str] | None:
        mine = {repr(get(r)) for r in current}
        theirs = {repr(get(r)) for r in baseline}
        return None if mine == theirs else (", ".join(sorted(mine)), ", ".join(sorted(theirs)))

    if differs(lambda r: r.metrics.engine.args):
        notes.append("engine arguments differ: current "
                     f"{_describe(' '.join(r.metrics.engine.args) or '(none)' for r in current)}"
                     f"; baseline "
                     f"{_describe(' '.join(r.metrics.engine.args) or '(none)' for r in baseline)}")
    if differs(lambda r: r.metrics.kitt_version):
        notes.append(f"kitt version differs: current "
                     f"{_describe(r.metrics.kitt_version for r in current)}; baseline "
                     f"{_describe(r.metrics.kitt_version for r in baseline)}")
    return notes


def _suite_thresholds(runs: Sequence[RunData]) -> dict[str, float] | None:
    for run in runs:
        if run.config is not None:
            return dict(run.config.suite.thresholds)
    return None


def _threshold_notes(current: Sequence[RunData], baseline: Sequence[RunData]) -> list[str]:
    notes = []
    mine, theirs = _suite_thresholds(current), _suite_thresholds(baseline)
    if mine is None and theirs is None:
        notes.append("no config.json on either side: default thresholds are used")
    elif mine is not None and theirs is not None and mine != theirs:
        notes.append("the suite's [thresholds] differ between the sides: the current side's "
                     "are used")
    known = set(threshold_names())
    unknown = sorted(set(mine or theirs or {}) - known)
    if unknown:
        notes.append("the suite's [thresholds] name unknown metrics, ignored: "
                     + ", ".join(unknown))
    return notes


def _scenario_mismatches(name: str, current: _ScenarioSide, baseline: _ScenarioSide) -> list[str]:
    found = []
    for what in ("load", "workload", "slo"):
        mine, theirs = getattr(current.result, what), getattr(baseline.result, what)
        if mine != theirs:
            found.append(f"scenario {name}: {what} differs: current "
                         f"{_json(mine)}; baseline {_json(theirs)}")
    return found


def _json(value: object) -> str:
    return msgspec.json.encode(value).decode()


def compare(
    current: Sequence[RunData],
    baseline: Sequence[RunData],
    *,
    thresholds: Mapping[str, float] = _NO_THRESHOLDS,
    alpha: float = 0.05,
    seed: int = 0,
    resamples: int = DEFAULT_RESAMPLES,
) -> Comparison:
    """Compare current runs with baseline runs (docs/comparison.md).

    `thresholds`: explicit per-metric thresholds in percent (error_rate: percentage points),
    e.g. from --threshold; a latency base name (`ttft_ms`) sets all its statistics. They are
    used as given, never doubled. `alpha`: the family-wise error rate of the Holm family (every
    metric tested in this comparison). `seed` makes the bootstrap reproducible.

    An empty `baseline` gives `baseline_found=False` and the current values with verdict `new`.
    """
    if not 0 < alpha < 1:
        raise ValueError("alpha must be within (0, 1)")
    if resamples < 2:
        raise ValueError("resamples must be >= 2")
    current_groups = group_runs(current)
    baseline_groups = group_runs(baseline)
    pairs, baseline_only = _pair_groups(list(current_groups), list(baseline_groups))

    shells: list[tuple[GroupKey, list[RunData], list[RunData], list[str], list[str], bool]] = []
    drafts_by_group: list[list[_Draft]] = []
    for key, runs_c in current_groups.items():
        base_key = pairs.get(key)
        runs_b = baseline_groups[base_key] if base_key is not None else []
        notes: list[str] = []
        mismatches = _mismatches(key, base_key, runs_c, runs_b) if base_key else []
        if runs_b:
            notes += _context_notes(runs_c, runs_b) + _threshold_notes(runs_c, runs_b)
        sides_c = _scenario_sides(runs_c, "current", notes)
        sides_b = _scenario_sides(runs_b, "baseline", notes)
        suite_thresholds = _suite_thresholds(runs_c) or _suite_thresholds(runs_b) or {}
        drafts: list[_Draft] = []
        few = False
        for name in [*sides_c, *(n for n in sides_b if n not in sides_c)]:
            side_c, side_b = sides_c.get(name), sides_b.get(name)
            if side_c and side_b:
                mismatches += _scenario_mismatches(name, side_c, side_b)
            few = few or any(s is not None and s.n < MIN_REPETITIONS for s in (side_c, side_b))
            drafts += _scenario_drafts(
                name, side_c, side_b,
                explicit=thresholds,
                suite_thresholds=suite_thresholds,
                resamples=resamples,
                rng=random.Random(_seed_for(seed, key, name)),
            )
        untested = [d for d in drafts if d.verdict is None and d.p_value is None]
        if untested and runs_b:
            notes.append(
                f"{len(untested)} metric{'s' if len(untested) != 1 else ''} could not be "
                f"tested (fewer than {MIN_REPETITIONS} repetitions, and too few per-request "
                "samples for them: small scenarios, tail percentiles, open-loop throughput, or "
                "no requests.jsonl); beyond their threshold they are inconclusive"
            )
        shells.append((key, runs_c, runs_b, mismatches, notes, few))
        drafts_by_group.append(drafts)

    tested = [d for drafts in drafts_by_group for d in drafts if d.p_value is not None]
    for draft, adjusted in zip(tested, holm([d.p_value for d in tested if d.p_value is not None]),
                               strict=True):
        draft.p_adjusted = adjusted

    groups = [
        GroupComparison(
            key=key,
            current_runs=[run_summary(r) for r in runs_c],
            baseline_runs=[run_summary(r) for r in runs_b],
            mismatches=mismatches,
            notes=notes,
            single_repetition=few,
            metrics=[d.finish(alpha) for d in drafts],
        )
        for (key, runs_c, runs_b, mismatches, notes, few), drafts in zip(
            shells, drafts_by_group, strict=True)
    ]
    return Comparison(
        baseline_found=bool(baseline),
        groups=groups,
        baseline_only=baseline_only,
        alpha=alpha,
    )
