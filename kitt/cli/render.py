"""Terminal rendering of results."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from kitt.domain.metrics import AggregateValue
from kitt.domain.results import RunMetrics


def _fmt(value: AggregateValue | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value.median:,.{digits}f}"


def results_table(metrics: RunMetrics) -> Table:
    """One row per scenario: medians across repetitions of the headline metrics."""
    table = Table(
        title=f"{metrics.model} on {metrics.engine.name} ({metrics.engine.mode}), "
        f"suite {metrics.suite}",
        title_justify="left",
    )
    for header in ("scenario", "ok/failed", "TTFT p50", "TTFT p99", "TPOT p50", "ITL p50",
                   "E2E p50", "out tok/s", "req/s", "goodput", "result"):
        table.add_column(header, justify="left" if header in ("scenario", "result") else "right")
    for scenario in metrics.scenarios:
        agg = scenario.aggregate
        ok = sum(r.completed for r in scenario.repetitions)
        failed = sum(r.failed for r in scenario.repetitions)
        table.add_row(
            scenario.name,
            f"{ok}/{failed}",
            _fmt(agg.get("ttft_ms.p50")),
            _fmt(agg.get("ttft_ms.p99")),
            _fmt(agg.get("tpot_ms.p50"), 2),
            _fmt(agg.get("itl_ms.p50"), 2),
            _fmt(agg.get("e2e_ms.p50")),
            _fmt(agg.get("output_throughput_tok_s")),
            _fmt(agg.get("request_throughput_rps"), 2),
            _fmt(agg.get("goodput_rps"), 2),
            "[green]pass[/]" if scenario.passed else "[red]FAIL[/]",
        )
    table.caption = "latencies in ms; medians across repetitions"
    return table


def print_results(console: Console, metrics: RunMetrics) -> None:
    if metrics.scenarios:
        console.print(results_table(metrics))
    for scenario in metrics.scenarios:
        for reason in scenario.reasons:
            console.print(f"[red]{scenario.name}[/]: {reason}")
