"""Hand-made comparisons for the report, the `kitt ci report` service and its CLI tests."""

from __future__ import annotations

from typing import Any

from kitt.domain.comparison import (
    Comparison,
    GroupComparison,
    GroupKey,
    MetricComparison,
    RunSummary,
)
from kitt.domain.metrics import direction

KEY = GroupKey(model="meta-llama/Llama-3.1-8B-Instruct", engine="vllm", suite="quick")


def run_summary(side: str = "current", **overrides: Any) -> RunSummary:
    fields: dict[str, Any] = {
        "directory": f"{side}/job-a", "run_id": f"20250101T000000Z-{side}", "status": "complete",
        "engine_version": "0.6.3", "engine_image": "vllm/vllm-openai:v0.6.3",
        "engine_mode": "docker", "hardware_fingerprint": "hw-1a2b3c", "kitt_version": "0.1.0",
        "started_at": "2025-01-01T00:00:00Z", "commit_sha": "0123abcd",
        "run_url": "https://github.com/o/r/actions/runs/7",
    }
    fields.update(overrides)
    return RunSummary(**fields)


def metric(
    scenario: str,
    name: str,
    verdict: str,
    baseline: float | None = 100.0,
    current: float | None = 100.0,
    **overrides: Any,
) -> MetricComparison:
    change = None if not baseline or current is None else (current / baseline - 1) * 100
    fields: dict[str, Any] = {
        "scenario": scenario, "metric": name, "direction": direction(name), "verdict": verdict,
        "baseline": baseline, "current": current, "change_pct": change,
        "ci95_low_pct": None if change is None else change - 4.0,
        "ci95_high_pct": None if change is None else change + 4.0,
        "p_value": 0.0004, "p_adjusted": 0.004, "threshold_pct": 5.0, "n_baseline": 5,
        "n_current": 5, "method": "welch-log",
    }
    fields.update(overrides)
    return MetricComparison(**fields)


def compared(
    metrics: list[MetricComparison],
    *,
    key: GroupKey = KEY,
    mismatches: list[str] | None = None,
    single_repetition: bool = False,
) -> Comparison:
    """A comparison of one group, with a baseline."""
    return Comparison(
        baseline_found=True,
        groups=[GroupComparison(
            key=key, current_runs=[run_summary("current")],
            baseline_runs=[run_summary("baseline")], mismatches=mismatches or [],
            single_repetition=single_repetition, metrics=metrics,
        )],
    )  # fmt: skip


def typical() -> Comparison:
    """2 regressions, 1 improvement, 3 unchanged, 1 inconclusive."""
    return compared([
        metric("chat_short", "ttft_ms.p50", "regression", 20.0, 26.0),
        metric("chat_short", "ttft_ms.p99", "unchanged", 40.0, 40.4),
        metric("chat_short", "output_throughput_tok_s", "improvement", 1000.0, 1200.0),
        metric("chat_short", "e2e_ms.p50", "unchanged", 500.0, 502.0),
        metric("long_context", "ttft_ms.p50", "regression", 200.0, 260.0),
        metric("long_context", "tpot_ms.p50", "inconclusive", 8.0, 10.0, p_adjusted=0.4),
        metric("long_context", "e2e_ms.p50", "unchanged", 900.0, 903.0),
    ])  # fmt: skip


def no_baseline() -> Comparison:
    return Comparison(
        baseline_found=False,
        groups=[GroupComparison(
            key=KEY, current_runs=[run_summary("current")],
            metrics=[
                metric(scenario, name, "new", None, value, n_baseline=0, method="none",
                       p_value=None, p_adjusted=None)
                for scenario in ("chat_short", "long_context")
                for name, value in (("ttft_ms.p50", 21.5), ("e2e_ms.p50", 480.0),
                                    ("output_throughput_tok_s", 1234.5), ("error_rate", 0.0))
            ],
        )],
    )  # fmt: skip


def unchanged() -> Comparison:
    return compared([metric("chat_short", "ttft_ms.p50", "unchanged", 20.0, 20.1)])


def big(scenarios: int = 40, regressions: int = 3) -> Comparison:
    """Too long for a GitHub comment: 800 unchanged metrics, some regressions, 30 inconclusive."""
    names = [f"{base}.{stat}" for base in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")
             for stat in ("mean", "p50", "p90", "p95", "p99")]
    metrics = [metric(f"scenario_{i:02d}", name, "unchanged", 10.0, 10.1)
               for i in range(scenarios) for name in names]
    metrics += [metric(f"scenario_{i:02d}", "ttft_ms.p99", "regression", 10.0, 14.0)
                for i in range(regressions)]
    metrics += [metric(f"scenario_{i:02d}", "itl_ms.p99", "inconclusive", 10.0, 14.0)
                for i in range(30)]
    return compared(metrics)
