"""Synthetic benchmark runs for comparison tests: RequestRecords drawn from known distributions,
summarized by the real domain code (kitt.domain.metrics.summarize) into RunMetrics, so that a
comparison sees exactly what it would read from a results directory."""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import msgspec

from kitt.domain.comparison import RunData
from kitt.domain.load import LoadSpec
from kitt.domain.metrics import aggregate, summarize
from kitt.domain.records import RequestRecord
from kitt.domain.results import EngineInfo, RunConfig, RunMetrics, ScenarioResult
from kitt.domain.suite import Scenario, Slo, Suite
from kitt.domain.workload import WorkloadSpec


@dataclass(frozen=True)
class Profile:
    """How one scenario's requests behave. Latencies are log-normal around their medians:
    `sigma` is the per-request spread of TTFT, `itl_sigma` of each inter-token gap, and
    `request_sigma` a per-request factor on all its gaps (requests that share the engine with a
    prefill run slower throughout)."""

    ttft_ms: float = 120.0
    itl_ms: float = 12.0
    sigma: float = 0.25
    itl_sigma: float = 0.10
    request_sigma: float = 0.05
    output_tokens: int = 32
    input_tokens: int = 256
    concurrency: int = 4
    requests: int = 100
    fail_rate: float = 0.0
    slo: Slo | None = None

    def scaled(self, *, ttft: float = 1.0, itl: float = 1.0) -> Profile:
        return replace(self, ttft_ms=self.ttft_ms * ttft, itl_ms=self.itl_ms * itl)


def repetition_records(
    profile: Profile, *, scenario: str, repetition: int, rng: random.Random, drift: float = 1.0
) -> list[RequestRecord]:
    """One closed-loop repetition: `concurrency` workers, each sending its next request 0.2 ms
    after the previous one ended. `drift` multiplies every latency (run-to-run drift)."""
    workers = [0.0] * profile.concurrency
    heapq.heapify(workers)
    records = []
    for index in range(profile.requests):
        start = heapq.heappop(workers)
        if rng.random() < profile.fail_rate:
            e2e = profile.ttft_ms * drift * 0.5
            records.append(RequestRecord(
                scenario=scenario, repetition=repetition, index=index, ok=False,
                start_ms=start, end_ms=start + e2e, e2e_ms=e2e, http_status=500,
                error_kind="http_500", requested_output_tokens=profile.output_tokens))
            heapq.heappush(workers, start + e2e + 0.2)
            continue
        ttft = profile.ttft_ms * drift * math.exp(rng.gauss(0, profile.sigma))
        factor = math.exp(rng.gauss(0, profile.request_sigma))
        chunks = [ttft]
        for _ in range(profile.output_tokens - 1):
            gap = profile.itl_ms * drift * factor * math.exp(rng.gauss(0, profile.itl_sigma))
            chunks.append(chunks[-1] + gap)
        e2e = chunks[-1] + 0.5
        tokens = profile.output_tokens
        records.append(RequestRecord(
            scenario=scenario, repetition=repetition, index=index, ok=True,
            start_ms=start, end_ms=start + e2e, e2e_ms=e2e, ttft_ms=ttft,
            tpot_ms=(chunks[-1] - chunks[0]) / (tokens - 1) if tokens >= 2 else None,
            chunk_ms=chunks, input_tokens=profile.input_tokens, output_tokens=tokens,
            requested_output_tokens=tokens, finish_reason="length"))
        heapq.heappush(workers, start + e2e + 0.2)
    return records


def build_run(
    directory: str,
    repetitions: Mapping[str, Sequence[Sequence[RequestRecord]]],
    *,
    profiles: Mapping[str, Profile],
    model: str = "demo",
    engine: str = "simulated",
    suite: str = "synthetic",
    fingerprint: str = "Fake CPU x4 | 24 GiB RAM | no GPU [0123456789ab]",
    version: str | None = "1.0",
    thresholds: Mapping[str, float] | None = None,
    with_requests: bool = True,
) -> RunData:
    """A RunData holding the given records, summarized per scenario and repetition."""
    engine_info = EngineInfo(name=engine, mode="simulated", version=version)
    scenarios = []
    suite_scenarios = []
    for name, reps in repetitions.items():
        profile = profiles[name]
        load = LoadSpec(concurrency=profile.concurrency, requests=profile.requests)
        workload = WorkloadSpec(input_tokens=profile.input_tokens,
                                output_tokens=profile.output_tokens)
        summaries = [summarize(records, repetition=i + 1, slo=profile.slo)
                     for i, records in enumerate(reps)]
        scenarios.append(ScenarioResult(name=name, load=load, workload=workload,
                                        slo=profile.slo, repetitions=summaries,
                                        aggregate=aggregate(summaries), passed=True))
        suite_scenarios.append(Scenario(name=name, load=load, workload=workload, slo=profile.slo))
    run_id = f"run-{directory}"
    metrics = RunMetrics(
        run_id=run_id, kitt_version="0.1.0", status="complete",
        started_at="2025-01-01T00:00:00Z", finished_at="2025-01-01T00:10:00Z",
        model=model, engine=engine_info, suite=suite, seed=0,
        hardware_fingerprint=fingerprint, scenarios=scenarios,
    )
    config = RunConfig(
        run_id=run_id, kitt_version="0.1.0", model=model, engine=engine_info,
        suite=Suite(name=suite, repetitions=max(len(r) for r in repetitions.values()),
                    thresholds=dict(thresholds or {}), scenarios=suite_scenarios),
        seed=0,
    )
    records = [r for reps in repetitions.values() for rep in reps for r in rep]
    return RunData(directory=directory, metrics=metrics, config=config,
                   requests=records if with_requests else [])


def synthetic_run(
    directory: str,
    profiles: Mapping[str, Profile],
    *,
    repetitions: int = 1,
    seed: int = 0,
    drift_sigma: float = 0.0,
    **kwargs: object,
) -> RunData:
    """A run of every scenario in `profiles`, `repetitions` times, each repetition with its own
    log-normal drift factor (sd `drift_sigma`) on every latency."""
    rng = random.Random(seed)
    reps = {
        name: [
            repetition_records(profile, scenario=name, repetition=i + 1, rng=rng,
                               drift=math.exp(rng.gauss(0, drift_sigma)))
            for i in range(repetitions)
        ]
        for name, profile in profiles.items()
    }
    return build_run(directory, reps, profiles=profiles, **kwargs)  # type: ignore[arg-type]


def scaled_records(records: Sequence[RequestRecord], *, ttft: float = 1.0,
                   itl: float = 1.0) -> list[RequestRecord]:
    """The same requests with TTFT multiplied by `ttft` and every inter-token gap by `itl`
    (end-to-end latency, TPOT and chunk times follow), so a comparison sees an exact change."""
    out = []
    for r in records:
        if not r.ok or r.ttft_ms is None:
            out.append(r)
            continue
        first = r.ttft_ms * ttft
        chunks = [first + (c - r.chunk_ms[0]) * itl for c in r.chunk_ms]
        e2e = chunks[-1] + (r.e2e_ms - r.chunk_ms[-1])
        out.append(replace_record(
            r, ttft_ms=first, chunk_ms=chunks, e2e_ms=e2e, end_ms=r.start_ms + e2e,
            tpot_ms=None if r.tpot_ms is None else r.tpot_ms * itl))
    return out


def replace_record(record: RequestRecord, **changes: object) -> RequestRecord:
    return msgspec.structs.replace(record, **changes)
