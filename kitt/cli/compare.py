"""`kitt compare CURRENT_DIR BASELINE_DIR`: the comparison `kitt ci report` posts, as a terminal
table. Informational: it exits 0 whatever the verdicts (gating is `kitt ci report
--fail-on-regression`'s job); 1 when the current results are missing or invalid, 2 on usage."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from kitt.cli.app import container

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from kitt.domain.comparison import Comparison, GroupComparison, MetricComparison, Verdict

# Shown first, in this order; the rest (unchanged) only with --all.
_NOTABLE = ("regression", "improvement", "inconclusive", "missing", "new")
_STYLES = {
    "regression": "bold red",
    "improvement": "green",
    "inconclusive": "yellow",
    "missing": "cyan",
    "new": "cyan",
    "unchanged": "dim",
}
# Without a baseline: the current values of these, one row per scenario.
_HEADLINES = (
    ("ttft_ms.p50", "TTFT p50 ms"),
    ("ttft_ms.p99", "TTFT p99 ms"),
    ("tpot_ms.p50", "TPOT p50 ms"),
    ("itl_ms.p50", "ITL p50 ms"),
    ("e2e_ms.p50", "E2E p50 ms"),
    ("output_throughput_tok_s", "out tok/s"),
    ("request_throughput_rps", "req/s"),
    ("error_rate", "errors"),
)


@click.command()
@click.argument("current_dir", type=click.Path(path_type=Path))
@click.argument("baseline_dir", type=click.Path(path_type=Path))
@click.option("--threshold", "thresholds", multiple=True, metavar="METRIC=PCT",
              help="Threshold in percent for a metric (e.g. ttft_ms.p99=10, or ttft_ms=8 for all "
              "its statistics; error_rate in percentage points). Repeatable; overrides the "
              "suite's thresholds and the defaults, and is never doubled.")
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the comparison as JSON to FILE.")
@click.option("--all", "show_all", is_flag=True,
              help="Show every metric, not only those that changed, appeared or vanished.")
@click.pass_context
def compare(
    ctx: click.Context,
    current_dir: Path,
    baseline_dir: Path,
    thresholds: tuple[str, ...],
    json_file: Path | None,
    show_all: bool,
) -> None:
    """Compare the results in CURRENT_DIR with those in BASELINE_DIR.

    Both may hold one run or many (metrics.json at any depth). Runs are grouped by model,
    engine, suite and hardware; scenarios match by name. A metric is a regression or an
    improvement when its change is beyond its threshold and statistically supported after a
    Holm correction over every metric tested; inconclusive when beyond the threshold but not
    supported. See docs/comparison.md.

    A BASELINE_DIR that does not exist or holds no results is not an error: the current
    results are shown alone. Exit code 0 whatever the verdicts (gate with
    `kitt ci report --fail-on-regression`).
    """
    import msgspec

    from kitt.domain.errors import ResultFileError
    from kitt.services.comparison import parse_thresholds

    parsed = parse_thresholds(thresholds)
    comparison = container(ctx).comparison_service().compare(
        current_dir, baseline_dir, thresholds=parsed
    )
    if json_file is not None:
        data = msgspec.json.format(msgspec.json.encode(comparison), indent=2) + b"\n"
        try:
            json_file.write_bytes(data)
        except OSError as exc:
            raise ResultFileError(f"cannot write {json_file}: {exc.strerror or exc}") from exc
    from kitt.cli.console import make_console

    console = make_console()
    if not console.is_terminal:
        # Logs and pipes have no width; rich would assume 80 and squash the table.
        console.width = 160
    print_comparison(console, comparison, baseline_dir=baseline_dir, show_all=show_all)


def print_comparison(
    console: Console, comparison: Comparison, *, baseline_dir: Path, show_all: bool
) -> None:
    from rich.text import Text

    if not comparison.baseline_found:
        console.print(Text(f"No baseline results in {baseline_dir} (missing or empty): "
                           "showing the current results alone.", style="yellow"))
    for group in comparison.groups:
        for mismatch in group.mismatches:
            console.print(Text(f"MISMATCH ({_title(group)}): {mismatch}", style="bold red"))
    for key in comparison.baseline_only:
        console.print(Text(f"baseline only, nothing current to compare with: {key.model} on "
                           f"{key.engine}, suite {key.suite}", style="yellow"))
    for group in comparison.groups:
        console.print()
        console.print(Text(_title(group), style="bold"))
        for note in group.notes:
            console.print(Text(f"note: {note}", style="yellow"))
        if not comparison.baseline_found or not group.baseline_runs:
            if comparison.baseline_found:
                console.print(Text("no baseline for this group", style="yellow"))
            console.print(_current_table(group))
            continue
        rows = group.metrics if show_all else sorted(
            (m for m in group.metrics if m.verdict in _NOTABLE),
            key=lambda m: _NOTABLE.index(m.verdict),
        )
        if rows:
            console.print(_changes_table(rows))
        else:
            console.print("no metric changed beyond its threshold")
        if group.single_repetition:
            console.print(Text(
                "fewer than 3 repetitions on a side: its intervals and p-values cover the "
                "sampling noise within one run, not the drift between runs; thresholds are "
                "doubled. Run more repetitions (--runs 3) for a firmer verdict.",
                style="yellow"))
    console.print()
    console.print(Text(verdict_line(comparison), style="bold"))


def verdict_line(comparison: Comparison) -> str:
    """e.g. "2 regressions, 1 improvement, 37 unchanged"."""
    if not comparison.baseline_found:
        return "no baseline: nothing compared"
    parts = []
    words: tuple[tuple[Verdict, str], ...] = (
        ("regression", "regressions"), ("improvement", "improvements"),
        ("inconclusive", "inconclusive"), ("unchanged", "unchanged"),
        ("missing", "missing"), ("new", "new"),
    )
    for verdict, plural in words:
        count = comparison.count(verdict)
        if count or verdict == "unchanged":
            parts.append(f"{count} {verdict if count == 1 else plural}")
    return ", ".join(parts)


def _title(group: GroupComparison) -> str:
    key = group.key
    engine = key.engine
    versions = sorted({r.engine_version for r in group.current_runs if r.engine_version})
    if versions:
        engine += f" {', '.join(versions)}"
    return f"{key.model} on {engine}, suite {key.suite}, hardware {key.hardware}"


def _changes_table(rows: list[MetricComparison]) -> Table:
    from rich.table import Table

    table = Table(title_justify="left")
    for header in ("scenario", "metric", "baseline", "current", "change", "95% interval",
                   "threshold", "p (Holm)", "n", "verdict"):
        table.add_column(header, justify="left" if header in (
            "scenario", "metric", "verdict") else "right", no_wrap=header != "scenario")
    for m in rows:
        table.add_row(
            _text(m.scenario),
            _text(m.metric),
            _value(m.metric, m.baseline),
            _value(m.metric, m.current),
            _change(m.change_pct, m.change_unit, m.baseline, m.current),
            _interval(m),
            "-" if m.threshold_pct is None else _change(m.threshold_pct, m.change_unit,
                                                         signed=False),
            _p(m.p_adjusted),
            f"{m.n_baseline}/{m.n_current}",
            _text(m.verdict, _STYLES.get(m.verdict, "")),
        )
    table.caption = ("latencies in ms; values are medians across repetitions; n = complete "
                     "repetitions baseline/current; error_rate changes in percentage points")
    return table


def _current_table(group: GroupComparison) -> Table:
    from rich.table import Table

    table = Table(title_justify="left")
    table.add_column("scenario")
    for _, label in _HEADLINES:
        table.add_column(label, justify="right")
    scenarios: dict[str, dict[str, float]] = {}
    for m in group.metrics:
        if m.current is not None:
            scenarios.setdefault(m.scenario, {})[m.metric] = m.current
    for scenario, values in scenarios.items():
        table.add_row(_text(scenario), *(_value(metric, values.get(metric))
                                         for metric, _ in _HEADLINES))
    table.caption = "current results; latencies in ms; medians across repetitions"
    return table


def _text(value: str, style: str = "") -> Text:
    # Text, not a markup string: names from result files must not be read as rich markup.
    from rich.text import Text

    return Text(value, style=style)


def _value(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric == "error_rate":
        return f"{value * 100:.2f}%"
    size = abs(value)
    return f"{value:,.1f}" if size >= 100 else f"{value:.2f}" if size >= 1 else f"{value:.3f}"


def _change(
    change: float | None,
    unit: str,
    baseline: float | None = None,
    current: float | None = None,
    *,
    signed: bool = True,
) -> str:
    if change is None:
        return "from 0" if baseline == 0 and current else "-"
    sign = "+" if signed else ""
    if unit == "points":
        return f"{change:{sign}.2f} pp"
    return f"{change:{sign}.1f}%"


def _interval(m: MetricComparison) -> str:
    if m.ci95_low_pct is None or m.ci95_high_pct is None:
        return "-"
    return (f"{_change(m.ci95_low_pct, m.change_unit)} .. "
            f"{_change(m.ci95_high_pct, m.change_unit)}")


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"
