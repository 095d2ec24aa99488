"""Statistical tests behind the comparison verdicts (docs/comparison.md).

Pure Python (the domain imports only the standard library and msgspec); tests/unit/
test_significance.py checks every function here against scipy.

- Welch's t-test: two samples with possibly different variances, Welch-Satterthwaite degrees of
  freedom, the p-value from Student's t distribution (via the regularized incomplete beta
  function) and the matching confidence interval of the difference of means.
- Percentile bootstrap: turns bootstrap replicates of a statistic into a percentile interval and
  a p-value from the bootstrap standard error.
- Holm's step-down adjustment of a family of p-values (strong family-wise error control under
  any dependence between the tests).
"""

from __future__ import annotations

import math
import random
import statistics
from bisect import bisect_right
from collections.abc import Callable, Sequence

import msgspec

from kitt.domain.stats import percentile

# --- Student's t distribution --------------------------------------------------------------------

_STANDARD_NORMAL = statistics.NormalDist()
_BETA_EPS = 1e-15
_BETA_TINY = 1e-300
_BETA_MAX_ITERATIONS = 1000


def _beta_continued_fraction(x: float, a: float, b: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz's method), which
    converges quickly for x < (a + 1) / (a + b + 2)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _BETA_TINY else _BETA_TINY)
    h = d
    for m in range(1, _BETA_MAX_ITERATIONS + 1):
        m2 = 2 * m
        # Even step.
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _BETA_TINY else _BETA_TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _BETA_TINY else _BETA_TINY
        h *= d * c
        # Odd step.
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _BETA_TINY else _BETA_TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _BETA_TINY else _BETA_TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _BETA_EPS:
            return h
    raise ArithmeticError(f"incomplete beta did not converge (x={x}, a={a}, b={b})")


def regularized_incomplete_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b) = B(x; a, b) / B(a, b) for 0 <= x <= 1 and a, b > 0."""
    if not 0.0 <= x <= 1.0:
        raise ValueError("x must be within 0..1")
    return _incomplete_beta(x, 1.0 - x, a, b)


def _incomplete_beta(x: float, y: float, a: float, b: float) -> float:
    """I_x(a, b) with y = 1 - x passed in, so that a caller who knows 1 - x more precisely than
    the subtraction would give it (x close to 1) loses nothing to rounding."""
    if a <= 0 or b <= 0:
        raise ValueError("a and b must be > 0")
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y)
    )
    front = math.exp(log_front)
    # Use the continued fraction where it converges fast, the symmetry relation elsewhere.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(x, a, b) / a
    return 1.0 - front * _beta_continued_fraction(y, b, a) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` (> 0, not necessarily whole) degrees of freedom."""
    if df <= 0:
        raise ValueError("degrees of freedom must be > 0")
    if math.isinf(t):
        return 0.0
    # P(|T| >= t) = I_x(df / 2, 1 / 2) with x = df / (df + t^2); both x and 1 - x are formed
    # directly, so neither a huge t nor a t close to 0 loses digits to rounding.
    ratio = t * t / df
    x, y = 1.0 / (1.0 + ratio), ratio / (1.0 + ratio)
    return min(1.0, _incomplete_beta(x, y, df / 2.0, 0.5))


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    tail = t_two_sided_p(t, df) / 2.0
    return 1.0 - tail if t > 0 else tail


def _t_pdf(t: float, df: float) -> float:
    log_pdf = (
        math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
        - (df + 1) / 2 * math.log1p(t * t / df)
    )
    return math.exp(log_pdf)


def t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p, for 0 < p < 1 and `df` > 0 degrees of freedom."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be within (0, 1)")
    if df <= 0:
        raise ValueError("degrees of freedom must be > 0")
    if p == 0.5:
        return 0.0
    # Solve for the smaller tail, so that p = 1e-9 keeps its digits.
    return -_t_upper(p, df) if p < 0.5 else _t_upper(1.0 - p, df)


def _t_upper(tail: float, df: float) -> float:
    """The t > 0 with P(T >= t) = tail (< 0.5): Newton's method on log P(T >= t), kept inside
    a bisection bracket."""
    target = math.log(tail)

    def log_tail(t: float) -> float:
        return math.log(t_two_sided_p(t, df) / 2.0)

    low, high = 0.0, 1.0
    while log_tail(high) > target:
        low, high = high, high * 2.0
        if high > 1e300:
            return math.inf
    t = min(max(_STANDARD_NORMAL.inv_cdf(1.0 - tail), low), high) if tail > 1e-300 else high
    for _ in range(200):
        value = log_tail(t)
        error = value - target
        if abs(error) < 1e-13:
            break
        if error > 0:
            low = t
        else:
            high = t
        # d/dt log P(T >= t) = -pdf(t) / P(T >= t)
        slope = -_t_pdf(t, df) / math.exp(value)
        step = t - error / slope if slope < 0 else (low + high) / 2.0
        # A Newton step that leaves the bracket is replaced by a bisection step.
        t = step if low < step < high else (low + high) / 2.0
        if high - low < 1e-15 * high:
            break
    return t


# --- results -------------------------------------------------------------------------------------


class Significance(msgspec.Struct, frozen=True, kw_only=True):
    """One test and the interval of the difference it is about.

    `estimate`, `low` and `high` are on the scale the test ran on: a difference of means of log
    values (a log ratio) or of raw values. The interval is None where it would not be reliable.
    `p_value` is that of "the true difference lies within the margin" (see `margin_p`); with no
    margin, the usual two-sided p-value of "no difference".
    """

    estimate: float
    low: float | None
    high: float | None
    p_value: float
    df: float | None = None  # degrees of freedom of the t reference, where there is one


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be within (0, 1)")


def _check_margin(low: float, high: float) -> None:
    if low > 0.0 or high < 0.0:
        raise ValueError("the margin must contain 0 (low <= 0 <= high)")


def margin_p(
    estimate: float, se: float, *, low: float = 0.0, high: float = 0.0, df: float | None = None
) -> float:
    """p-value of the null hypothesis "the true difference lies within [low, high]" (a
    minimum-effect test; low <= 0 <= high), for an estimate with standard error `se` whose
    sampling distribution is normal (df None) or Student's t with `df` degrees of freedom.

    Only the bound the estimate went past can be rejected: p = 2 * P(T >= distance / se),
    capped at 1, where distance is how far past it the estimate lies (1 when it is within).
    The factor 2 keeps the test at its level over both bounds, and makes p the usual
    two-sided p-value when low == high == 0.
    """
    _check_margin(low, high)
    if estimate > high:
        distance = estimate - high
    elif estimate < low:
        distance = low - estimate
    else:
        return 1.0
    if se <= 0.0:
        return 0.0
    z = distance / se
    return min(1.0, normal_two_sided_p(z) if df is None else t_two_sided_p(z, df))


def welch_test(
    current: Sequence[float],
    baseline: Sequence[float],
    *,
    confidence: float = 0.95,
    low: float = 0.0,
    high: float = 0.0,
) -> Significance:
    """Welch's t-test of d = mean(current) - mean(baseline), with its confidence interval.

    The p-value is that of "d lies within [low, high]" (`margin_p`, Student's t with the
    Welch-Satterthwaite degrees of freedom); with the default margin the usual two-sided test.
    Needs at least two values on each side. When neither side varies at all, the difference is
    exact: p is 0 or 1 and the interval is the difference itself. Pass log values to compare
    ratios (what the comparison does).
    """
    _check_confidence(confidence)
    n_c, n_b = len(current), len(baseline)
    if n_c < 2 or n_b < 2:
        raise ValueError("Welch's test needs at least two values on each side")
    mean_c = math.fsum(current) / n_c
    mean_b = math.fsum(baseline) / n_b
    var_c = math.fsum((v - mean_c) ** 2 for v in current) / (n_c - 1)
    var_b = math.fsum((v - mean_b) ** 2 for v in baseline) / (n_b - 1)
    difference = mean_c - mean_b
    se_c, se_b = var_c / n_c, var_b / n_b
    se2 = se_c + se_b
    if se2 <= 0.0:
        return Significance(estimate=difference, low=difference, high=difference,
                            p_value=margin_p(difference, 0.0, low=low, high=high))
    se = math.sqrt(se2)
    df = se2 * se2 / (se_c * se_c / (n_c - 1) + se_b * se_b / (n_b - 1))
    half = t_quantile(0.5 + confidence / 2.0, df) * se
    return Significance(
        estimate=difference,
        low=difference - half,
        high=difference + half,
        p_value=margin_p(difference, se, low=low, high=high, df=df),
        df=df,
    )


# --- bootstrap -----------------------------------------------------------------------------------


def normal_two_sided_p(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z (accurate far into the tails)."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def bootstrap_result(
    estimate: float,
    deviations: Sequence[float],
    *,
    confidence: float = 0.95,
    df: float | None = None,
    low: float = 0.0,
    high: float = 0.0,
) -> Significance:
    """Summarize a bootstrap of a difference (or log ratio).

    `estimate` is the observed difference; `deviations` are the bootstrap replicates minus the
    difference recomputed from the data the bootstrap resampled (so, centred on 0 when the
    observed value and the resampled data agree). The interval is the percentile interval
    shifted to `estimate`: estimate + the (1 - confidence) / 2 and (1 + confidence) / 2
    quantiles of the deviations.

    The p-value (of "the difference lies within [low, high]", `margin_p`) rests on the
    bootstrap standard error, referred to Student's t with `df` degrees of freedom (the normal
    distribution without). A p-value counted from the replicates could not fall below 1 / B,
    far above what a Holm adjustment over a hundred metrics needs. This suits smooth statistics
    (means, ratios of sums); for percentiles, whose bootstrap standard error is itself too
    noisy, use `quantile_test`.
    """
    _check_confidence(confidence)
    if len(deviations) < 2:
        raise ValueError("a bootstrap needs at least two replicates")
    ordered = sorted(deviations)
    tail = (1.0 - confidence) / 2.0 * 100.0
    mean = math.fsum(ordered) / len(ordered)
    sd = math.sqrt(math.fsum((d - mean) ** 2 for d in ordered) / (len(ordered) - 1))
    return Significance(
        estimate=estimate,
        low=estimate + percentile(ordered, tail),
        high=estimate + percentile(ordered, 100.0 - tail),
        p_value=margin_p(estimate, sd, low=low, high=high, df=df),
        df=df,
    )


def bootstrap_log_ratio(
    current: Sequence[float],
    baseline: Sequence[float],
    statistic: Callable[[Sequence[float]], float],
    *,
    resamples: int,
    rng: random.Random,
    confidence: float = 0.95,
) -> Significance:
    """Percentile bootstrap of log(statistic(current) / statistic(baseline)): each side is
    resampled with replacement, independently, `resamples` times. The statistic must be > 0.

    The comparison runs its own multi-metric version of this loop (every latency metric of a
    scenario from one resample of its requests); this one is the reference for a single metric.
    """
    if not current or not baseline:
        raise ValueError("a bootstrap needs values on both sides")
    observed = math.log(statistic(current)) - math.log(statistic(baseline))
    n_c, n_b = len(current), len(baseline)
    deviations = []
    for _ in range(resamples):
        resampled_c = rng.choices(current, k=n_c)
        resampled_b = rng.choices(baseline, k=n_b)
        replicate = math.log(statistic(resampled_c)) - math.log(statistic(resampled_b))
        deviations.append(replicate - observed)
    return bootstrap_result(observed, deviations, confidence=confidence)


# --- exact and rank-based tests ------------------------------------------------------------------


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _hypergeometric_log_pmf(population: int, successes: int, draws: int) -> dict[int, float]:
    low, high = max(0, draws - (population - successes)), min(draws, successes)
    total = _log_comb(population, draws)
    return {j: _log_comb(successes, j) + _log_comb(population - successes, draws - j) - total
            for j in range(low, high + 1)}


def hypergeometric_two_sided_p(k: int, population: int, successes: int, draws: int) -> float:
    """Two-sided p-value of drawing `k` successes in `draws` draws without replacement from
    `population` items of which `successes` are successes: the total probability of every
    outcome no more likely than `k` (the rule of Fisher's exact test)."""
    if not 0 <= successes <= population or not 0 <= draws <= population:
        raise ValueError("successes and draws must be within 0..population")
    log_pmf = _hypergeometric_log_pmf(population, successes, draws)
    if k not in log_pmf:
        raise ValueError(f"k={k} is impossible (possible: {min(log_pmf)}..{max(log_pmf)})")
    # Relative tolerance, as in scipy and R, so that outcomes as likely as k but for rounding
    # count as "no more likely".
    limit = log_pmf[k] + math.log1p(1e-7)
    return min(1.0, math.fsum(math.exp(lp) for lp in log_pmf.values() if lp <= limit))


def hypergeometric_tail(k: int, population: int, successes: int, draws: int, *,
                        upper: bool) -> float:
    """P(X >= k) (upper) or P(X <= k) for the hypergeometric X of `hypergeometric_two_sided_p`."""
    log_pmf = _hypergeometric_log_pmf(population, successes, draws)
    terms = [lp for j, lp in log_pmf.items() if (j >= k if upper else j <= k)]
    return min(1.0, math.fsum(math.exp(lp) for lp in terms))


def fisher_exact_p(events_current: int, n_current: int, events_baseline: int,
                   n_baseline: int) -> float:
    """Fisher's exact two-sided test of equal event rates (failed requests, say)."""
    return hypergeometric_two_sided_p(
        events_current, n_current + n_baseline, events_current + events_baseline, n_current
    )


def rate_difference(
    events_current: int, n_current: int, events_baseline: int, n_baseline: int, *,
    margin: float = 0.0, confidence: float = 0.95,
) -> Significance:
    """The difference of two event rates (current - baseline, as fractions), its Agresti-Caffo
    interval, and the p-value of "the rates differ by at most `margin`" (>= 0).

    Without a margin, the p-value is Fisher's exact test's. With one, a z-test (`margin_p`) on
    the Agresti-Caffo standard error (one event and one non-event added to each side), which
    stays sensible with zero events on a side, where the plain Wald test would not."""
    _check_confidence(confidence)
    if n_current < 1 or n_baseline < 1:
        raise ValueError("each side needs at least one trial")
    if margin < 0:
        raise ValueError("margin must be >= 0")
    rate_c = (events_current + 1) / (n_current + 2)
    rate_b = (events_baseline + 1) / (n_baseline + 2)
    se = math.sqrt(rate_c * (1 - rate_c) / (n_current + 2)
                   + rate_b * (1 - rate_b) / (n_baseline + 2))
    observed = events_current / n_current - events_baseline / n_baseline
    half = _STANDARD_NORMAL.inv_cdf(0.5 + confidence / 2.0) * se
    adjusted = rate_c - rate_b
    if margin == 0.0:
        p = fisher_exact_p(events_current, n_current, events_baseline, n_baseline)
    else:
        p = margin_p(observed, se, low=-margin, high=margin)
    return Significance(estimate=observed, low=adjusted - half, high=adjusted + half, p_value=p)


def rate_difference_p(events_current: int, n_current: int, events_baseline: int,
                      n_baseline: int, *, margin: float = 0.0) -> float:
    """The p-value of `rate_difference`."""
    return rate_difference(events_current, n_current, events_baseline, n_baseline,
                           margin=margin).p_value


def quantile_test(
    current: Sequence[float],
    baseline: Sequence[float],
    q: float,
    *,
    low_ratio: float = 1.0,
    high_ratio: float = 1.0,
) -> float:
    """p-value that the q-th percentiles (0 < q < 100) of two samples of positive values have a
    ratio (current / baseline) within [low_ratio, high_ratio] (default: are equal).

    Mood's median test generalized to any quantile and to a margin: when the current
    percentile is above high_ratio times the baseline's, the baseline is scaled by high_ratio
    (so that under the null boundary both have the same percentile); the pooled sample's q-th
    percentile splits the two, and the number of current values above the split is
    hypergeometric under the null. p = 2 * the one-sided tail, capped at 1; symmetrically
    below low_ratio. The p-value is exact whatever the shape of the data (for distributions
    that differ by a scale factor) and rests on no estimated standard error, which for a
    percentile is noisy enough to make a bootstrap z-test cry wolf several times too often at
    the 0.1% level.
    """
    if not current or not baseline:
        raise ValueError("a quantile test needs values on both sides")
    if not 0.0 < q < 100.0:
        raise ValueError("q must be within (0, 100)")
    if not 0.0 <= low_ratio <= 1.0 <= high_ratio:
        raise ValueError("need 0 <= low_ratio <= 1 <= high_ratio")
    ordered_b = sorted(baseline)
    current_q = percentile(sorted(current), q)
    baseline_q = percentile(ordered_b, q)
    if current_q > baseline_q * high_ratio:
        ratio, upper = high_ratio, True
    elif current_q < baseline_q * low_ratio:
        ratio, upper = low_ratio, False
    else:
        return 1.0
    pooled = sorted((*current, *(v * ratio for v in ordered_b)))
    x = percentile(pooled, q)
    above = len(pooled) - bisect_right(pooled, x)
    above_current = sum(1 for v in current if v > x)
    tail = hypergeometric_tail(above_current, len(pooled), above, len(current), upper=upper)
    return min(1.0, 2.0 * tail)


def clustered_share_test(
    current: Sequence[tuple[float, float]],
    baseline: Sequence[tuple[float, float]],
    *,
    alternative: str = "two-sided",
) -> float:
    """p-value that two sides have the same share of observations above a split point, when
    observations come in clusters (the gaps of one request): each pair is (observations above,
    observations) of one cluster. The variance of each side's share is the cluster-robust
    (ratio estimator) one, around the pooled share (a score test); the statistic is referred to
    Student's t with (clusters on the smaller side - 1) degrees of freedom. `alternative`:
    "greater" (the current share is larger), "less", or "two-sided"."""
    if len(current) < 2 or len(baseline) < 2:
        raise ValueError("a clustered share test needs at least two clusters per side")
    total_above = math.fsum(a for a, _ in (*current, *baseline))
    total = math.fsum(n for _, n in (*current, *baseline))
    if total <= 0:
        raise ValueError("no observations")
    pooled = total_above / total

    def share_and_variance(side: Sequence[tuple[float, float]]) -> tuple[float, float]:
        k = len(side)
        above = math.fsum(a for a, _ in side)
        size = math.fsum(n for _, n in side)
        residuals = math.fsum((a - pooled * n) ** 2 for a, n in side)
        return above / size, k / (k - 1) * residuals / (size * size)

    share_c, var_c = share_and_variance(current)
    share_b, var_b = share_and_variance(baseline)
    difference = share_c - share_b
    se2 = var_c + var_b
    if alternative == "two-sided":
        sign = 1.0
    elif alternative in ("greater", "less"):
        sign = 1.0 if alternative == "greater" else -1.0
        if difference * sign <= 0:
            return 1.0
    else:
        raise ValueError(f"unknown alternative {alternative!r}")
    if se2 <= 0:
        return 1.0 if difference == 0 else 0.0
    two_sided = t_two_sided_p(difference / math.sqrt(se2), min(len(current), len(baseline)) - 1)
    return two_sided if alternative == "two-sided" else two_sided / 2.0


# --- multiple comparisons ------------------------------------------------------------------------


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given.

    With m p-values sorted ascending, p_(i) (i = 1..m) is adjusted to
    max over j <= i of min(1, (m - j + 1) * p_(j)). Rejecting every hypothesis whose adjusted
    p-value is below alpha keeps the probability of any false rejection at most alpha,
    whatever the dependence between the tests.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
