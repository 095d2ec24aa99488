"""Every metric definition of DESIGN §4 against values computed by hand."""

from __future__ import annotations

import pytest

from kitt.domain.metrics import aggregate, direction, failure_reasons, meets_slo, summarize
from kitt.domain.records import StreamResult, make_record
from kitt.domain.stats import describe, mean_interval_95, percentile
from kitt.domain.suite import Slo

MS = 1_000_000  # ns per ms


def record(
    *,
    t0_ms: float = 0.0,
    chunks_ms: tuple[float, ...] = (),
    end_ms: float | None = None,
    completion_tokens: int | None = None,
    prompt_tokens: int | None = 100,
    requested: int = 4,
    error_kind: str | None = None,
    window_start_ms: float = 0.0,
    warmup: bool = False,
    index: int = 0,
):
    t0 = round(t0_ms * MS)
    result = StreamResult(
        t0_ns=t0,
        end_ns=round((end_ms if end_ms is not None else (chunks_ms[-1] if chunks_ms else 0)) * MS)
        + t0,
        content_ns=tuple(t0 + round(c * MS) for c in chunks_ms),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        error_kind=error_kind,
        error=None if error_kind is None else "boom",
    )
    return make_record(
        result,
        scenario="s",
        repetition=1,
        index=index,
        requested_output_tokens=requested,
        window_start_ns=round(window_start_ms * MS),
        warmup=warmup,
    )


def test_ttft_is_the_first_content_event_after_t0():
    # The client drops role-only / content:null events; the first content event is at 50 ms.
    r = record(t0_ms=1000, chunks_ms=(50, 60, 70), end_ms=75, completion_tokens=3)
    assert r.ttft_ms == pytest.approx(50)
    assert r.e2e_ms == pytest.approx(75)
    assert r.start_ms == pytest.approx(1000)
    assert r.end_ms == pytest.approx(1075)


def test_tpot_needs_two_tokens():
    one = record(chunks_ms=(40,), completion_tokens=1, requested=1)
    two = record(chunks_ms=(40, 52), completion_tokens=2, requested=2)
    assert one.tpot_ms is None
    assert two.tpot_ms == pytest.approx(12)  # (52 - 40) / (2 - 1)


def test_itl_is_per_chunk_and_tpot_per_token_with_multi_token_chunks():
    # Three events of two tokens each.
    r = record(chunks_ms=(10, 30, 50), completion_tokens=6, requested=6)
    assert r.itl_ms == pytest.approx([20, 20])
    assert r.tpot_ms == pytest.approx(8)  # (50 - 10) / (6 - 1)


def test_output_tokens_fall_back_to_counting_chunks_without_usage():
    r = record(chunks_ms=(10, 20, 30), completion_tokens=None, requested=3)
    assert r.output_tokens == 3
    assert r.token_source == "chunks"
    assert not r.output_length_mismatch  # chunk counts are not token counts: never flagged


def test_output_length_mismatch_is_flagged_from_usage():
    assert record(chunks_ms=(10, 20), completion_tokens=2, requested=4).output_length_mismatch
    assert not record(chunks_ms=(10, 20), completion_tokens=4, requested=4).output_length_mismatch


def test_percentiles_interpolate_linearly():
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 90) == pytest.approx(3.7)  # h = 2.7 -> 3 + 0.7 * (4 - 3)
    assert percentile(values, 99) == pytest.approx(3.97)
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile([7.0], 99) == 7.0


def test_describe_uses_sample_std():
    stats = describe([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert stats is not None
    assert stats.mean == pytest.approx(5.0)
    assert stats.std == pytest.approx(2.13809, rel=1e-5)  # sqrt(32 / 7)
    assert (stats.min, stats.max, stats.count) == (2.0, 9.0, 8)
    assert describe([]) is None
    assert describe([3.0]).std == 0.0  # type: ignore[union-attr]


def test_throughput_window_runs_from_first_send_to_last_completion():
    records = [
        # Two successful requests and one failure; window 0 ms -> 2000 ms.
        record(t0_ms=0, chunks_ms=(100, 200), end_ms=500, completion_tokens=10,
               prompt_tokens=50, requested=10, index=0),
        record(t0_ms=500, chunks_ms=(100, 1000), end_ms=1500, completion_tokens=10,
               prompt_tokens=50, requested=10, index=1),
        record(t0_ms=100, end_ms=300, error_kind="http_500", index=2),
        # Warm-up requests count for nothing, even when they lie outside the window.
        record(t0_ms=-5000, chunks_ms=(1,), end_ms=2, completion_tokens=1, warmup=True),
    ]
    s = summarize(records, repetition=1)
    assert s.duration_s == pytest.approx(2.0)
    assert (s.requests, s.completed, s.failed) == (3, 2, 1)
    assert s.request_throughput_rps == pytest.approx(1.0)  # 2 ok / 2 s
    assert s.output_throughput_tok_s == pytest.approx(10.0)  # 20 tokens / 2 s
    assert s.total_throughput_tok_s == pytest.approx(60.0)  # (20 + 100) / 2 s
    assert s.errors == {"http_500": 1}
    assert s.error_rate == pytest.approx(1 / 3)


def test_errors_are_excluded_from_latency_statistics():
    records = [
        record(chunks_ms=(10, 20), end_ms=20, completion_tokens=2, requested=2, index=0),
        record(chunks_ms=(30, 40), end_ms=40, completion_tokens=2, requested=2, index=1),
        # Failed mid-stream after a very slow first token: must not move TTFT.
        record(chunks_ms=(9000,), end_ms=9100, error_kind="stream_error", index=2),
    ]
    s = summarize(records, repetition=1)
    assert s.ttft_ms is not None and s.ttft_ms.count == 2
    assert s.ttft_ms.max == pytest.approx(30)
    assert s.e2e_ms is not None and s.e2e_ms.max == pytest.approx(40)
    assert s.itl_ms is not None and s.itl_ms.count == 2


def test_goodput_counts_requests_meeting_every_slo():
    slo = Slo(ttft_ms=100, tpot_ms=10)
    records = [
        record(t0_ms=0, chunks_ms=(50, 55, 60), end_ms=1000, completion_tokens=3, requested=3),
        record(t0_ms=0, chunks_ms=(150, 155), end_ms=500, completion_tokens=2, requested=2),
        record(t0_ms=0, chunks_ms=(50, 90), end_ms=500, completion_tokens=2, requested=2),
        record(t0_ms=0, chunks_ms=(50,), end_ms=500, completion_tokens=1, requested=1),
        record(t0_ms=0, end_ms=100, error_kind="timeout"),
    ]
    # ok: 1st (TTFT 50, TPOT 5); too slow TTFT: 2nd; too slow TPOT (40): 3rd;
    # one token has no TPOT and meets it: 4th. Window 0 -> 1000 ms.
    assert [meets_slo(r, slo) for r in records] == [True, False, False, True, False]
    s = summarize(records, repetition=1, slo=slo)
    assert s.goodput_rps == pytest.approx(2.0)
    assert summarize(records, repetition=1).goodput_rps is None


def test_aggregate_takes_the_median_and_a_t_interval_across_repetitions():
    def rep(n: int, ttft: float):
        return summarize(
            [record(chunks_ms=(ttft, ttft + 10), end_ms=ttft + 10, completion_tokens=2,
                    requested=2)],
            repetition=n,
        )

    agg = aggregate([rep(1, 10), rep(2, 14), rep(3, 12)])
    ttft = agg["ttft_ms.p50"]
    assert (ttft.n, ttft.median, ttft.mean) == (3, 12, 12)
    # mean 12, s = 2, t(0.975, 2) = 4.303: 12 -/+ 4.303 * 2 / sqrt(3)
    assert ttft.ci95_low == pytest.approx(12 - 4.969, abs=1e-3)
    assert ttft.ci95_high == pytest.approx(12 + 4.969, abs=1e-3)
    assert aggregate([rep(1, 10)])["ttft_ms.p50"].ci95_low is None
    assert mean_interval_95([1.0]) is None


def test_incomplete_repetitions_are_left_out_of_the_aggregate():
    full = summarize([record(chunks_ms=(10,), completion_tokens=1, requested=1)], repetition=1)
    partial = summarize(
        [record(chunks_ms=(99,), completion_tokens=1, requested=1)], repetition=2, complete=False
    )
    agg = aggregate([full, partial])
    assert agg["ttft_ms.p50"].n == 1
    assert agg["ttft_ms.p50"].median == pytest.approx(10)


def test_failure_reasons_name_the_error_kinds():
    reps = [
        summarize(
            [record(chunks_ms=(10,), completion_tokens=1, requested=1, index=0),
             record(end_ms=5, error_kind="http_500", index=1)],
            repetition=1,
        )
    ]
    reasons = failure_reasons(reps, max_error_rate=0.0, repetitions=2)
    assert "1 of 2 requests failed" in reasons[0] and "http_500 x1" in reasons[0]
    assert reasons[1] == "1 of 2 repetitions did not run"
    assert failure_reasons(reps, max_error_rate=0.5, repetitions=1) == []


def test_metric_directions():
    assert direction("ttft_ms.p99") == "lower"
    assert direction("output_throughput_tok_s") == "higher"
    assert direction("goodput_rps") == "higher"
    assert direction("error_rate") == "lower"
    with pytest.raises(KeyError):
        direction("nonsense")
