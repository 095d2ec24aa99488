"""The statistics behind comparison verdicts, checked against scipy (a test-only dependency: the
domain itself is pure Python)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy import special, stats

from kitt.domain.significance import (
    bootstrap_log_ratio,
    bootstrap_result,
    clustered_share_test,
    fisher_exact_p,
    holm,
    hypergeometric_two_sided_p,
    margin_p,
    quantile_test,
    rate_difference_p,
    regularized_incomplete_beta,
    t_cdf,
    t_quantile,
    t_two_sided_p,
    welch_test,
)
from kitt.domain.stats import percentile


def test_regularized_incomplete_beta_matches_scipy():
    rng = random.Random(1)
    cases = [(rng.random(), rng.uniform(0.05, 300), rng.uniform(0.05, 300)) for _ in range(400)]
    cases += [(0.0, 2, 3), (1.0, 2, 3), (0.5, 0.5, 0.5), (1e-12, 0.5, 40), (1 - 1e-12, 40, 0.5)]
    for x, a, b in cases:
        expected = special.betainc(a, b, x)
        assert regularized_incomplete_beta(x, a, b) == pytest.approx(expected, rel=1e-10,
                                                                    abs=1e-300)


@pytest.mark.parametrize("df", [0.7, 1, 2, 3.5, 4.2, 8, 30, 250, 1e5])
@pytest.mark.parametrize("t", [0.0, 1e-9, 0.3, 1.0, 2.0, 2.776, 5.0, 12.0, 40.0, 1e4])
def test_student_t_tail_and_cdf_match_scipy(t, df):
    expected = 2 * stats.t.sf(t, df)
    assert t_two_sided_p(t, df) == pytest.approx(expected, rel=1e-9, abs=1e-300)
    assert t_two_sided_p(-t, df) == t_two_sided_p(t, df)
    assert t_cdf(-t, df) == pytest.approx(stats.t.cdf(-t, df), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("df", [0.8, 1, 2, 4.3, 9, 29.5, 1000])
@pytest.mark.parametrize("p", [1e-9, 0.001, 0.025, 0.3, 0.5, 0.8, 0.975, 0.999])
def test_student_t_quantile_matches_scipy(p, df):
    assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-9, abs=1e-12)


def test_welch_matches_scipy_p_value_and_interval():
    rng = random.Random(2)
    for _ in range(50):
        a = [rng.gauss(0, rng.uniform(0.1, 3)) for _ in range(rng.randint(2, 12))]
        b = [rng.gauss(rng.uniform(-1, 1), rng.uniform(0.1, 3)) for _ in range(rng.randint(2, 12))]
        ours = welch_test(a, b)
        ref = stats.ttest_ind(a, b, equal_var=False)
        interval = ref.confidence_interval(0.95)
        assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-8)
        assert ours.estimate == pytest.approx(np.mean(a) - np.mean(b), rel=1e-12, abs=1e-12)
        assert ours.low == pytest.approx(interval.low, rel=1e-8)
        assert ours.high == pytest.approx(interval.high, rel=1e-8)
        assert ours.df == pytest.approx(ref.df, rel=1e-10)


def test_welch_without_any_variance_is_exact():
    assert welch_test([1.0, 1.0, 1.0], [1.0, 1.0]).p_value == 1.0
    different = welch_test([2.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    assert different.p_value == 0.0 and different.low == different.high == 1.0
    with pytest.raises(ValueError, match="at least two"):
        welch_test([1.0], [1.0, 2.0])


def test_hypergeometric_and_fisher_match_scipy():
    rng = random.Random(3)
    for _ in range(300):
        population = rng.randint(2, 400)
        successes, draws = rng.randint(0, population), rng.randint(0, population)
        k = rng.randint(max(0, draws - (population - successes)), min(draws, successes))
        table = [[k, draws - k], [successes - k, population - successes - draws + k]]
        expected = stats.fisher_exact(table).pvalue
        assert hypergeometric_two_sided_p(k, population, successes, draws) == pytest.approx(
            expected, rel=1e-9, abs=1e-300)
    assert fisher_exact_p(3, 32, 0, 32) == pytest.approx(
        stats.fisher_exact([[3, 29], [0, 32]]).pvalue, rel=1e-12)


def test_quantile_test_at_the_median_is_moods_exact_median_test():
    rng = random.Random(4)
    for _ in range(40):
        a = [rng.lognormvariate(0, 0.5) for _ in range(rng.randint(5, 80))]
        b = [rng.lognormvariate(0.2, 0.5) for _ in range(rng.randint(5, 80))]
        # scipy's median test splits at the grand median; "below" puts ties with the lower part,
        # as the quantile test does (it counts values strictly above the split). The p-value is
        # twice the hypergeometric tail on the side the sample medians point to.
        _, _, _, table = stats.median_test(a, b, ties="below")
        law = stats.hypergeom(M=len(a) + len(b), n=int(table[0].sum()), N=len(a))
        above_a = int(table[0][0])
        if np.median(a) > np.median(b):
            expected = min(1.0, 2 * law.sf(above_a - 1))
        elif np.median(a) < np.median(b):
            expected = min(1.0, 2 * law.cdf(above_a))
        else:
            expected = 1.0
        assert quantile_test(a, b, 50) == pytest.approx(expected, rel=1e-9)


def test_quantile_test_finds_a_shift_and_holds_its_level_under_the_null():
    rng = random.Random(5)
    slower = [rng.lognormvariate(math.log(130), 0.1) for _ in range(60)]
    usual = [rng.lognormvariate(math.log(100), 0.1) for _ in range(60)]
    assert quantile_test(slower, usual, 50) < 1e-10
    assert quantile_test(usual, slower, 90) < 1e-3  # only the 12 values above the split count
    p_values = [
        quantile_test([rng.lognormvariate(0, 1) for _ in range(40)],
                      [rng.lognormvariate(0, 1) for _ in range(40)], q)
        for q in (50, 90) for _ in range(400)
    ]
    # An exact (conservative, discrete) test: at most its level, give or take sampling.
    assert sum(p < 0.05 for p in p_values) / len(p_values) <= 0.06


def test_quantile_test_with_a_margin_tests_the_ratio_against_it():
    rng = random.Random(11)
    usual = [rng.lognormvariate(math.log(100), 0.1) for _ in range(80)]
    slower = [v * 1.3 for v in usual]
    # 30% slower is beyond a 10% margin, and not beyond a 40% one.
    assert quantile_test(slower, usual, 50, low_ratio=0.9, high_ratio=1.1) < 1e-6
    assert quantile_test(slower, usual, 50, low_ratio=0.6, high_ratio=1.4) == 1.0
    # Testing against a margin is testing against the baseline scaled to it.
    assert quantile_test(slower, usual, 50, high_ratio=1.1) == pytest.approx(
        quantile_test(slower, [v * 1.1 for v in usual], 50))
    faster = [v * 0.7 for v in usual]
    assert quantile_test(faster, usual, 50, low_ratio=0.9, high_ratio=1.1) < 1e-6
    # At the edge of the margin (true ratio 1.1), the test holds its level.
    rejections = sum(
        quantile_test([rng.lognormvariate(math.log(110), 0.3) for _ in range(50)],
                      [rng.lognormvariate(math.log(100), 0.3) for _ in range(50)], 50,
                      low_ratio=0.9, high_ratio=1.1) < 0.05
        for _ in range(400))
    assert rejections / 400 <= 0.06


def test_margin_p_tests_the_bound_the_estimate_went_past():
    assert margin_p(0.0, 1.0) == 1.0
    assert margin_p(1.96, 1.0) == pytest.approx(0.05, rel=1e-3)
    assert margin_p(2.96, 1.0, low=-1.0, high=1.0) == pytest.approx(0.05, rel=1e-3)
    assert margin_p(-2.5, 1.0, low=-0.5, high=1.0) == pytest.approx(0.0455, rel=1e-2)
    assert margin_p(0.9, 1.0, low=-1.0, high=1.0) == 1.0
    assert margin_p(3.0, 1.0, high=1.0, df=4) == pytest.approx(2 * stats.t.sf(2.0, 4))
    assert margin_p(3.0, 0.0, high=1.0) == 0.0 and margin_p(0.5, 0.0, high=1.0) == 1.0
    with pytest.raises(ValueError, match="contain 0"):
        margin_p(1.0, 1.0, low=0.5, high=1.0)


def test_welch_with_a_margin_is_a_t_test_against_the_nearer_bound():
    rng = random.Random(12)
    a = [rng.gauss(1.0, 0.1) for _ in range(5)]
    b = [rng.gauss(0.0, 0.1) for _ in range(5)]
    plain = stats.ttest_ind(a, b, equal_var=False)
    shifted = stats.ttest_ind([v - 0.5 for v in a], b, equal_var=False)
    assert welch_test(a, b, low=-0.5, high=0.5).p_value == pytest.approx(shifted.pvalue, rel=1e-8)
    assert welch_test(a, b).p_value == pytest.approx(plain.pvalue, rel=1e-8)
    assert welch_test(a, b, low=-2, high=2).p_value == 1.0


def test_rate_difference_with_and_without_a_margin():
    assert rate_difference_p(3, 32, 0, 32) == pytest.approx(
        stats.fisher_exact([[3, 29], [0, 32]]).pvalue)
    assert rate_difference_p(60, 200, 0, 200, margin=0.02) < 1e-10
    assert rate_difference_p(3, 200, 0, 200, margin=0.02) == 1.0  # 1.5 points < 2
    assert 0.05 < rate_difference_p(6, 100, 0, 100, margin=0.02) < 1.0


def test_clustered_share_test_accounts_for_correlation_within_clusters():
    rng = random.Random(6)

    def clusters(share_sd: float, n: int) -> list[tuple[float, float]]:
        # Each cluster has its own share of observations above the split (correlation).
        out = []
        for _ in range(n):
            share = min(1.0, max(0.0, rng.gauss(0.5, share_sd)))
            size = 50
            out.append((float(sum(rng.random() < share for _ in range(size))), float(size)))
        return out

    false_alarms = sum(
        clustered_share_test(clusters(0.2, 30), clusters(0.2, 30)) < 0.05 for _ in range(300))
    assert false_alarms / 300 <= 0.08  # about 5%; ignoring the clusters gives ~50%
    # Independent observations (clusters of one): about the two-proportion test.
    a = [(1.0, 1.0)] * 58 + [(0.0, 1.0)] * 42
    b = [(1.0, 1.0)] * 45 + [(0.0, 1.0)] * 55
    assert clustered_share_test(a, b) == pytest.approx(
        stats.chi2_contingency([[58, 42], [45, 55]], correction=False).pvalue, rel=0.1)
    assert clustered_share_test(a, b, alternative="greater") == pytest.approx(
        clustered_share_test(a, b) / 2)
    assert clustered_share_test(a, b, alternative="less") == 1.0


def test_bootstrap_result_is_a_shifted_percentile_interval_with_a_t_p_value():
    deviations = [-2.0, -1.0, 0.0, 1.0, 2.0] * 40
    result = bootstrap_result(3.0, deviations, df=10)
    assert result.low == pytest.approx(3.0 + percentile(sorted(deviations), 2.5))
    assert result.high == pytest.approx(3.0 + percentile(sorted(deviations), 97.5))
    sd = float(np.std(deviations, ddof=1))
    assert result.p_value == pytest.approx(2 * stats.t.sf(3.0 / sd, 10), rel=1e-9)
    assert bootstrap_result(3.0, deviations).p_value == pytest.approx(
        2 * stats.norm.sf(3.0 / sd), rel=1e-9)
    assert bootstrap_result(0.0, [0.0, 0.0]).p_value == 1.0
    assert bootstrap_result(0.5, [0.0, 0.0]).p_value == 0.0


def test_bootstrap_log_ratio_agrees_with_scipy_bootstrap():
    rng = random.Random(7)
    a = [rng.lognormvariate(math.log(120), 0.3) for _ in range(150)]
    b = [rng.lognormvariate(math.log(100), 0.3) for _ in range(150)]
    ours = bootstrap_log_ratio(a, b, lambda xs: sum(xs) / len(xs), resamples=4000,
                               rng=random.Random(8))
    ref = stats.bootstrap(
        (np.array(a), np.array(b)), lambda x, y, axis: np.log(x.mean(axis)) - np.log(y.mean(axis)),
        method="percentile", n_resamples=4000, random_state=np.random.default_rng(9),
    )
    assert ours.estimate == pytest.approx(math.log(np.mean(a) / np.mean(b)), rel=1e-12)
    assert ours.low == pytest.approx(ref.confidence_interval.low, abs=0.015)
    assert ours.high == pytest.approx(ref.confidence_interval.high, abs=0.015)
    assert ours.p_value == pytest.approx(
        2 * stats.norm.sf(ours.estimate / ref.standard_error), rel=0.3)


def test_holm_step_down():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([]) == []
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    # A p-value that passes alone at 0.05 but not after adjusting for 20 tests.
    adjusted = holm([0.01] + [0.5] * 19)
    assert adjusted[0] == pytest.approx(0.2) and adjusted[0] > 0.05


def test_holm_never_rejects_less_than_bonferroni_and_is_monotone():
    rng = random.Random(10)
    for _ in range(100):
        p = [rng.random() ** 3 for _ in range(rng.randint(1, 30))]
        adjusted = holm(p)
        m = len(p)
        for raw, adj in zip(p, adjusted, strict=True):
            assert raw <= adj <= min(1.0, m * raw) + 1e-15
        order = sorted(range(m), key=lambda i: p[i])
        assert all(adjusted[order[i]] <= adjusted[order[i + 1]] for i in range(m - 1))
