"""Verdicts of the comparison (kitt/domain/compare.py) on runs built from synthetic requests and
summarized by the real metric code."""

from __future__ import annotations

import math
import random

import msgspec
import pytest

from kitt.domain.compare import (
    DEFAULT_RESAMPLES,
    compare,
    default_threshold,
    threshold_for,
)
from kitt.domain.comparison import Comparison, MetricComparison, RunData
from kitt.domain.metrics import summarize
from kitt.domain.significance import holm
from kitt.domain.suite import Slo
from tests.synthetic import (
    Profile,
    build_run,
    repetition_records,
    scaled_records,
    synthetic_run,
)

TTFT = ("ttft_ms.mean", "ttft_ms.p50")


def metrics_of(comparison: Comparison, scenario: str | None = None) -> dict[str, MetricComparison]:
    return {m.metric: m for g in comparison.groups for m in g.metrics
            if scenario is None or m.scenario == scenario}


def verdicts(comparison: Comparison) -> dict[str, str]:
    return {f"{m.scenario} {m.metric}": m.verdict for g in comparison.groups for m in g.metrics}


def repeated(profile: Profile, *, repetitions: int, seed: int, drift_sigma: float,
             scenario: str = "chat") -> list[list]:
    rng = random.Random(seed)
    return [repetition_records(profile, scenario=scenario, repetition=i + 1, rng=rng,
                               drift=math.exp(rng.gauss(0, drift_sigma)))
            for i in range(repetitions)]


# --- acceptance: the statistics on constructed data ----------------------------------------------


def test_identical_samples_are_unchanged():
    profile = Profile(requests=64, sigma=0.5)
    for repetitions in (1, 5):
        run = synthetic_run("r", {"chat": profile}, repetitions=repetitions, seed=1,
                            drift_sigma=0.02)
        comparison = compare([run], [msgspec.structs.replace(run, directory="b")])
        assert set(verdicts(comparison).values()) == {"unchanged"}
        tested = [m for m in metrics_of(comparison).values() if m.p_value is not None]
        assert tested and all(m.change_pct == 0 and m.p_value == 1.0 for m in tested)


def test_a_30_percent_ttft_increase_over_5_repetitions_is_a_regression():
    # 256 requests per repetition and 2% drift between repetitions: TTFT p50 varies by about
    # 2.5% (CV) from one repetition to the next.
    base = Profile(requests=256, concurrency=8, sigma=0.2)
    baseline = build_run("b", {"chat": repeated(base, repetitions=5, seed=1, drift_sigma=0.02)},
                         profiles={"chat": base})
    slower = base.scaled(ttft=1.3)
    current = build_run("c", {"chat": repeated(slower, repetitions=5, seed=2,
                                               drift_sigma=0.02)}, profiles={"chat": slower})
    m = metrics_of(compare([current], [baseline]))
    for name in TTFT:
        assert m[name].verdict == "regression", m[name]
        assert m[name].method == "welch-log"
        assert m[name].change_pct == pytest.approx(30, abs=4)
        assert m[name].ci95_low_pct is not None and m[name].ci95_low_pct > 20
        assert m[name].n_current == m[name].n_baseline == 5
        assert m[name].p_adjusted is not None and m[name].p_adjusted < 0.05
    # Token timing did not change.
    for name in ("tpot_ms.p50", "itl_ms.p50", "itl_ms.mean"):
        assert m[name].verdict == "unchanged"


def test_a_30_percent_change_in_one_noisy_repetition_each_is_inconclusive():
    # 20 requests whose TTFT spreads over more than an order of magnitude: the same requests,
    # 30% slower, are far beyond the threshold, but nothing like significant.
    noisy = Profile(requests=20, sigma=1.0)
    records = repetition_records(noisy, scenario="chat", repetition=1, rng=random.Random(3))
    baseline = build_run("b", {"chat": [records]}, profiles={"chat": noisy})
    current = build_run("c", {"chat": [scaled_records(records, ttft=1.3)]},
                        profiles={"chat": noisy})
    comparison = compare([current], [baseline])
    m = metrics_of(comparison)
    for name in ("ttft_ms.mean", "ttft_ms.p50", "ttft_ms.p90"):
        assert m[name].change_pct == pytest.approx(30)
        assert m[name].change_pct > m[name].threshold_pct
        assert m[name].verdict == "inconclusive"
        assert m[name].method == "bootstrap"
    assert comparison.groups[0].single_repetition


def test_the_same_change_in_one_quiet_repetition_each_is_a_regression():
    # The counterpart of the test above: with little spread and enough requests, one
    # repetition per side is enough to see 30%.
    quiet = Profile(requests=128, sigma=0.1)
    records = repetition_records(quiet, scenario="chat", repetition=1, rng=random.Random(4))
    baseline = build_run("b", {"chat": [records]}, profiles={"chat": quiet})
    current = build_run("c", {"chat": [scaled_records(records, ttft=1.3)]},
                        profiles={"chat": quiet})
    m = metrics_of(compare([current], [baseline]))
    for name in ("ttft_ms.mean", "ttft_ms.p50", "ttft_ms.p90"):
        assert m[name].verdict == "regression", m[name]
        assert m[name].method == "bootstrap"


@pytest.mark.parametrize("repetitions", [1, 5])
def test_direction_slower_tokens_regress_latency_and_throughput(repetitions):
    # Gaps 40% longer: latencies go up and throughputs down; both are regressions.
    base = Profile(requests=128, concurrency=4, sigma=0.1, itl_sigma=0.05, request_sigma=0.02)
    baseline, current = _pair(base, base.scaled(itl=1.4), repetitions)
    m = metrics_of(compare([current], [baseline]))
    assert m["output_throughput_tok_s"].direction == "higher"
    assert m["output_throughput_tok_s"].change_pct < -20
    assert m["output_throughput_tok_s"].verdict == "regression"
    assert m["request_throughput_rps"].verdict == "regression"
    assert m["itl_ms.p50"].direction == "lower"
    assert m["itl_ms.p50"].verdict == "regression"
    assert m["e2e_ms.mean"].verdict == "regression"


@pytest.mark.parametrize("repetitions", [1, 5])
def test_direction_faster_tokens_improve_latency_and_throughput(repetitions):
    base = Profile(requests=128, concurrency=4, sigma=0.1, itl_sigma=0.05, request_sigma=0.02)
    baseline, current = _pair(base, base.scaled(itl=0.7), repetitions)
    m = metrics_of(compare([current], [baseline]))
    assert m["itl_ms.p50"].change_pct < -20
    assert m["itl_ms.p50"].verdict == "improvement"
    assert m["tpot_ms.mean"].verdict == "improvement"
    assert m["output_throughput_tok_s"].change_pct > 20
    assert m["output_throughput_tok_s"].verdict == "improvement"


def _pair(base: Profile, changed: Profile, repetitions: int) -> tuple[RunData, RunData]:
    baseline = build_run("b", {"chat": repeated(base, repetitions=repetitions, seed=5,
                                                drift_sigma=0.01)}, profiles={"chat": base})
    current = build_run("c", {"chat": repeated(changed, repetitions=repetitions, seed=6,
                                               drift_sigma=0.01)}, profiles={"chat": changed})
    return baseline, current


def _with_ttft_p50(run: RunData, factors: list[float]) -> RunData:
    """The run with the TTFT statistics of repetition i multiplied by factors[i]."""
    scenario = run.metrics.scenarios[0]
    reps = []
    for rep, factor in zip(scenario.repetitions, factors, strict=True):
        assert rep.ttft_ms is not None
        stats = msgspec.structs.replace(
            rep.ttft_ms, **{f: getattr(rep.ttft_ms, f) * factor
                            for f in ("mean", "min", "p50", "p90", "p95", "p99", "max")})
        reps.append(msgspec.structs.replace(rep, ttft_ms=stats))
    scenarios = [msgspec.structs.replace(scenario, repetitions=reps)]
    return msgspec.structs.replace(
        run, metrics=msgspec.structs.replace(run.metrics, scenarios=scenarios))


def test_holm_turns_a_raw_pass_into_inconclusive():
    # One metric moved 30% with repetitions that scatter by ~7%: its own p-value passes 0.05,
    # but not after adjusting for the 25 metrics of the comparison.
    profile = Profile(requests=32)
    reps = repeated(profile, repetitions=4, seed=7, drift_sigma=0.0)
    same = build_run("b", {"chat": reps}, profiles={"chat": profile})
    baseline = _with_ttft_p50(same, [1.0, 1.08, 0.93, 1.0])
    current = _with_ttft_p50(msgspec.structs.replace(same, directory="c"),
                             [1.30, 1.20, 1.42, 1.31])
    comparison = compare([current], [baseline])
    m = metrics_of(comparison)["ttft_ms.p50"]
    assert m.change_pct > m.threshold_pct
    assert m.p_value is not None and m.p_adjusted is not None
    assert m.p_value < 0.05 <= m.p_adjusted
    assert m.verdict == "inconclusive"
    # The family is every metric tested in the comparison.
    tested = [x for g in comparison.groups for x in g.metrics if x.p_value is not None]
    assert len(tested) > 20
    expected = holm([x.p_value for x in tested if x.p_value is not None])
    assert [x.p_adjusted for x in tested] == pytest.approx(expected)


def test_the_holm_family_spans_every_group_of_the_comparison():
    profile = Profile(requests=96, sigma=0.15)
    records = repetition_records(profile, scenario="chat", repetition=1, rng=random.Random(8))
    baseline = build_run("b", {"chat": [records]}, profiles={"chat": profile})
    current = build_run("c", {"chat": [scaled_records(records, ttft=1.25)]},
                        profiles={"chat": profile})
    alone = metrics_of(compare([current], [baseline]))["ttft_ms.p50"]
    other = synthetic_run("o", {"chat": profile}, seed=9, model="other")
    other_b = synthetic_run("ob", {"chat": profile}, seed=10, model="other")
    together = compare([current, other], [baseline, other_b])
    assert len(together.groups) == 2
    joint = metrics_of(together, "chat")
    first = next(m for m in together.groups[0].metrics if m.metric == "ttft_ms.p50")
    assert first.p_value == alone.p_value
    assert first.p_adjusted is not None and alone.p_adjusted is not None
    assert first.p_adjusted > alone.p_adjusted
    assert joint


# --- acceptance: false alarms in A/A comparisons -------------------------------------------------

# Realistic, on the noisy side: TTFT spreads by ~40% between requests, each request's tokens
# share a slow-down factor, 1% of requests fail, and every run (repetition) drifts by ~1%.
AA_PROFILE = Profile(requests=48, concurrency=4, output_tokens=12, sigma=0.4, itl_sigma=0.25,
                     request_sigma=0.15, fail_rate=0.01, slo=Slo(ttft_ms=150, tpot_ms=14))


@pytest.mark.parametrize("repetitions", [1, 3])
def test_a_a_comparisons_rarely_report_a_regression(repetitions):
    comparisons = 200
    flagged = 0
    beyond = 0
    for i in range(comparisons):
        a = synthetic_run("a", {"chat": AA_PROFILE}, repetitions=repetitions, seed=2 * i,
                          drift_sigma=0.01)
        b = synthetic_run("b", {"chat": AA_PROFILE}, repetitions=repetitions, seed=2 * i + 1,
                          drift_sigma=0.01)
        comparison = compare([a], [b], seed=i)
        flagged += comparison.has_regression
        beyond += comparison.count("inconclusive") > 0
    assert flagged <= comparisons * 0.01
    # The data are noisy enough that changes beyond the thresholds are common: the statistics,
    # not the thresholds alone, keep these reports quiet.
    assert beyond > comparisons * 0.5


# --- matching, thresholds, mismatches ------------------------------------------------------------


def test_scenarios_and_metrics_on_one_side_only_are_missing_or_new():
    plain = Profile(requests=16)
    with_slo = Profile(requests=16, slo=Slo(ttft_ms=500))
    baseline = synthetic_run("b", {"chat": plain, "old": plain}, seed=1)
    current = synthetic_run("c", {"chat": with_slo, "fresh": plain}, seed=2)
    v = verdicts(compare([current], [baseline]))
    assert v["chat goodput_rps"] == "new"
    assert all(v[k] == "missing" for k in v if k.startswith("old "))
    assert all(v[k] == "new" for k in v if k.startswith("fresh "))
    assert v["chat ttft_ms.p50"] != "new"


def test_runs_of_one_group_are_pooled_and_other_groups_kept_apart():
    profile = Profile(requests=16)
    current = [synthetic_run(f"c{i}", {"chat": profile}, repetitions=2, seed=i)
               for i in range(2)]
    baseline = [synthetic_run("b", {"chat": profile}, repetitions=3, seed=5),
                synthetic_run("x", {"chat": profile}, seed=6, model="gone")]
    comparison = compare(current, baseline)
    assert len(comparison.groups) == 1
    group = comparison.groups[0]
    assert [r.directory for r in group.current_runs] == ["c0", "c1"]
    m = metrics_of(comparison)["ttft_ms.p50"]
    assert (m.n_current, m.n_baseline, m.method) == (4, 3, "welch-log")
    assert not group.single_repetition
    assert [k.model for k in comparison.baseline_only] == ["gone"]


def test_another_machine_or_model_is_compared_with_a_mismatch():
    profile = Profile(requests=16)
    current = synthetic_run("c", {"chat": profile}, seed=1, fingerprint="A100 [aaa]",
                            version="0.6.3")
    baseline = synthetic_run("b", {"chat": profile}, seed=2, fingerprint="H100 [bbb]",
                             version="0.6.2", model="renamed")
    group = compare([current], [baseline]).groups[0]
    assert group.baseline_runs
    text = "\n".join(group.mismatches)
    assert "model differs: current demo; baseline renamed" in text
    assert "hardware differs: current A100 [aaa]; baseline H100 [bbb]" in text
    assert "engine version differs: current 0.6.3; baseline 0.6.2" in text
    same = compare([current], [msgspec.structs.replace(current, directory="b")]).groups[0]
    assert same.mismatches == []


def test_scenario_definitions_that_differ_are_a_mismatch():
    current = synthetic_run("c", {"chat": Profile(requests=16, concurrency=4)}, seed=1)
    baseline = synthetic_run("b", {"chat": Profile(requests=16, concurrency=8)}, seed=2)
    mismatches = compare([current], [baseline]).groups[0].mismatches
    assert any("scenario chat: load differs" in m and '"concurrency":4' in m for m in mismatches)


def test_thresholds_explicit_suite_default_and_doubling():
    assert default_threshold("ttft_ms.p50") == 5
    assert default_threshold("itl_ms.p95") == 7.5
    assert default_threshold("e2e_ms.p99") == 10
    assert default_threshold("goodput_rps") == 5
    assert default_threshold("error_rate") == 1

    def get(metric: str, few: bool, explicit=None, suite=None) -> float:
        return threshold_for(metric, explicit=explicit or {}, suite=suite or {},
                             few_repetitions=few)

    assert get("ttft_ms.p99", False) == 10 and get("ttft_ms.p99", True) == 20
    assert get("ttft_ms.p99", True, suite={"ttft_ms.p99": 12}) == 24
    assert get("ttft_ms.p90", False, suite={"ttft_ms": 8}) == 8
    # Explicit values are used as given, also with few repetitions.
    assert get("ttft_ms.p99", True, explicit={"ttft_ms.p99": 3}, suite={"ttft_ms.p99": 12}) == 3
    assert get("ttft_ms.p50", True, explicit={"ttft_ms": 4}) == 4


def test_thresholds_come_from_the_current_suite_and_the_command_line():
    profile = Profile(requests=16)
    current = synthetic_run("c", {"chat": profile}, seed=1, repetitions=3,
                            thresholds={"ttft_ms.p50": 4})
    baseline = synthetic_run("b", {"chat": profile}, seed=2, repetitions=3,
                             thresholds={"ttft_ms.p50": 6})
    comparison = compare([current], [baseline], thresholds={"itl_ms": 2})
    m = metrics_of(comparison)
    assert m["ttft_ms.p50"].threshold_pct == 4
    assert m["itl_ms.p99"].threshold_pct == 2
    assert m["e2e_ms.p99"].threshold_pct == 10
    assert any("[thresholds] differ" in n for n in comparison.groups[0].notes)


def test_a_large_threshold_keeps_a_real_change_unchanged():
    quiet = Profile(requests=128, sigma=0.1)
    records = repetition_records(quiet, scenario="chat", repetition=1, rng=random.Random(4))
    baseline = build_run("b", {"chat": [records]}, profiles={"chat": quiet})
    current = build_run("c", {"chat": [scaled_records(records, ttft=1.3)]},
                        profiles={"chat": quiet})
    m = metrics_of(compare([current], [baseline], thresholds={"ttft_ms": 35}))
    assert m["ttft_ms.p50"].verdict == "unchanged" and m["ttft_ms.p50"].threshold_pct == 35


def test_error_rate_is_compared_in_percentage_points():
    ok = Profile(requests=200, sigma=0.1)
    failing = Profile(requests=200, sigma=0.1, fail_rate=0.3)
    baseline = synthetic_run("b", {"chat": ok}, seed=1)
    current = synthetic_run("c", {"chat": failing}, seed=2)
    m = metrics_of(compare([current], [baseline]))["error_rate"]
    assert m.change_unit == "points"
    assert m.baseline == 0 and m.current == pytest.approx(0.3, abs=0.08)
    assert m.change_pct == pytest.approx(m.current * 100)
    assert m.threshold_pct == 2  # 1 point, doubled for a single repetition
    assert m.verdict == "regression"
    small = metrics_of(compare([synthetic_run("c", {"chat": Profile(requests=200, sigma=0.1,
                                                               fail_rate=0.01)}, seed=3)],
                               [baseline]))["error_rate"]
    assert small.verdict == "unchanged"


def test_no_baseline_shows_the_current_values_as_new():
    run = synthetic_run("c", {"chat": Profile(requests=16)}, seed=1)
    comparison = compare([run], [])
    assert not comparison.baseline_found and not comparison.has_regression
    assert set(verdicts(comparison).values()) == {"new"}
    assert metrics_of(comparison)["ttft_ms.p50"].current is not None


def test_incomplete_repetitions_and_runs_are_left_out_with_a_note():
    profile = Profile(requests=16)
    run = synthetic_run("c", {"chat": profile}, seed=1, repetitions=3)
    scenario = run.metrics.scenarios[0]
    reps = [*scenario.repetitions[:2],
            msgspec.structs.replace(scenario.repetitions[2], complete=False)]
    interrupted = msgspec.structs.replace(run, metrics=msgspec.structs.replace(
        run.metrics, status="interrupted", status_reason="Ctrl-C",
        scenarios=[msgspec.structs.replace(scenario, repetitions=reps)]))
    baseline = synthetic_run("b", {"chat": profile}, seed=2, repetitions=3)
    comparison = compare([interrupted], [baseline])
    assert metrics_of(comparison)["ttft_ms.p50"].n_current == 2
    assert comparison.groups[0].single_repetition
    assert any("is interrupted (Ctrl-C)" in n for n in comparison.groups[0].notes)


def test_without_per_request_samples_few_repetitions_cannot_be_tested():
    profile = Profile(requests=64, sigma=0.1)
    records = repetition_records(profile, scenario="chat", repetition=1, rng=random.Random(4))
    baseline = build_run("b", {"chat": [records]}, profiles={"chat": profile},
                         with_requests=False)
    current = build_run("c", {"chat": [scaled_records(records, ttft=1.3)]},
                        profiles={"chat": profile})
    comparison = compare([current], [baseline])
    m = metrics_of(comparison)["ttft_ms.p50"]
    assert (m.method, m.p_value, m.verdict) == ("none", None, "inconclusive")
    assert any("could not be tested" in n for n in comparison.groups[0].notes)


def test_the_bootstrap_is_seeded():
    profile = Profile(requests=64, sigma=0.3)
    a = synthetic_run("a", {"chat": profile}, seed=1)
    b = synthetic_run("b", {"chat": profile}, seed=2)
    first, again, other = compare([a], [b]), compare([a], [b]), compare([a], [b], seed=1)
    assert msgspec.json.encode(first) == msgspec.json.encode(again)
    assert msgspec.json.encode(first) != msgspec.json.encode(other)
    assert verdicts(first) == verdicts(other)
    assert DEFAULT_RESAMPLES >= 200


def test_bad_arguments_are_refused():
    run = synthetic_run("a", {"chat": Profile(requests=8)}, seed=1)
    with pytest.raises(ValueError, match="alpha"):
        compare([run], [run], alpha=1.5)
    assert summarize([], repetition=1).requests == 0  # an empty repetition summarizes
