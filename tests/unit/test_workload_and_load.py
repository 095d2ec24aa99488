"""Seeded workloads and arrival schedules."""

from __future__ import annotations

import itertools
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kitt.domain.load import LoadSpec, arrival_offsets_s
from kitt.domain.workload import SyntheticWorkload, WorkloadSpec


def test_same_seed_same_prompts_and_other_seed_other_prompts():
    spec = WorkloadSpec(input_tokens=64, output_tokens=8)
    a = SyntheticWorkload(spec, seed=1, stream="s/r1")
    b = SyntheticWorkload(spec, seed=1, stream="s/r1")
    c = SyntheticWorkload(spec, seed=2, stream="s/r1")
    assert [a.request(i) for i in range(5)] == [b.request(i) for i in range(5)]
    assert a.request(0).prompt != c.request(0).prompt


@given(st.integers(min_value=2, max_value=2000), st.integers(min_value=0, max_value=2**32))
def test_prompt_has_the_target_length_in_words_at_one_token_per_word(tokens, seed):
    spec = WorkloadSpec(input_tokens=tokens, output_tokens=1)
    prompt = SyntheticWorkload(spec, seed=seed, stream="x").request(3).prompt
    assert len(prompt.split()) == tokens


def test_calibration_scales_the_word_count():
    spec = WorkloadSpec(input_tokens=1000, output_tokens=1)
    words = len(SyntheticWorkload(spec, seed=0, stream="x", tokens_per_word=1.25)
                .request(0).prompt.split())
    assert words == pytest.approx(800, abs=2)


def test_every_prompt_starts_unique_unless_a_shared_prefix_is_asked_for():
    unique = SyntheticWorkload(WorkloadSpec(input_tokens=50), seed=0, stream="x")
    firsts = {unique.request(i).prompt.split()[0] for i in range(200)}
    assert len(firsts) == 200
    # Different repetitions (streams) never repeat a prompt either.
    other = SyntheticWorkload(WorkloadSpec(input_tokens=50), seed=0, stream="y")
    assert unique.request(0).prompt != other.request(0).prompt

    shared = SyntheticWorkload(
        WorkloadSpec(input_tokens=50, shared_prefix_tokens=20), seed=0, stream="x"
    )
    prompts = [shared.request(i).prompt.split() for i in range(3)]
    assert prompts[0][:20] == prompts[1][:20] == prompts[2][:20]
    assert len({p[20] for p in prompts}) == 3  # the unique marker follows the shared part
    assert all(len(p) == 50 for p in prompts)


def test_request_carries_the_output_budget():
    r = SyntheticWorkload(WorkloadSpec(output_tokens=33, api="completions"), seed=0,
                          stream="x").request(7)
    assert (r.index, r.max_tokens, r.api, r.ignore_eos) == (7, 33, "completions", True)


def test_constant_arrivals_are_evenly_spaced_on_an_absolute_schedule():
    spec = LoadSpec(pattern="constant", rate_rps=4, requests=5)
    assert list(arrival_offsets_s(spec, seed=0)) == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])


def test_poisson_arrivals_have_the_requested_mean_rate_and_are_seeded():
    spec = LoadSpec(pattern="poisson", rate_rps=10, requests=5000)
    offsets = list(arrival_offsets_s(spec, seed=3))
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert statistics.fmean(gaps) == pytest.approx(0.1, rel=0.05)
    # Exponential gaps: the standard deviation equals the mean.
    assert statistics.stdev(gaps) == pytest.approx(0.1, rel=0.08)
    assert offsets == list(arrival_offsets_s(spec, seed=3))
    assert offsets != list(arrival_offsets_s(spec, seed=4))


def test_duration_bounds_the_schedule_and_the_count_wins_when_smaller():
    by_time = list(arrival_offsets_s(LoadSpec(pattern="constant", rate_rps=2, duration_s=3),
                                     seed=0))
    assert by_time == pytest.approx([0, 0.5, 1, 1.5, 2, 2.5])
    both = LoadSpec(pattern="constant", rate_rps=2, duration_s=3, requests=2)
    assert len(list(arrival_offsets_s(both, seed=0))) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pattern": "closed"}, "needs `requests`, `duration_s`"),
        ({"pattern": "poisson", "requests": 3}, "needs rate_rps > 0"),
        ({"pattern": "closed", "requests": 3, "rate_rps": 1.0}, "rate_rps applies"),
        ({"pattern": "closed", "requests": 3, "concurrency": 0}, "concurrency >= 1"),
    ],
)
def test_invalid_loads_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LoadSpec(**kwargs)


def test_pool_size_covers_every_request_in_flight():
    assert LoadSpec(concurrency=16, requests=1).pool_size() == 16
    assert LoadSpec(pattern="poisson", rate_rps=8, concurrency=64, requests=1).pool_size() == 64
    assert LoadSpec(pattern="poisson", rate_rps=100, requests=1).pool_size() == 400
