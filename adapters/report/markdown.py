"""The CI report as Markdown (DESIGN §6): the ReportRenderer port, with jinja2.

The template (kitt/templates/report.md.j2) leads with the verdict line, then mismatches, the
single-repetition caveat, the table of changes beyond the threshold, every metric folded in
`<details>`, and the run context. Every value from the result files is escaped for Markdown and
HTML by the environment's `finalize`, and forge mentions (`@user`, `#123`) are neutralized so that
a hostile or unlucky model name cannot ping anyone.

Size limit: forges cap comment bodies (GitHub: 65,536 characters). When the full report is
longer, parts are left out in this order, each until the body fits: detail rows of the folded
all-metrics tables (from the last group's end), the run context, notes, rows of the
current-results tables, rows of the changes table (inconclusive, then improvements, then
regressions, each from the end), mismatch lines. Whole rows only; a visible note says what was
left out and where the full report is. The verdict line (which counts every verdict) and the
marker always stay.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import jinja2

import kitt
from adapters.markdown import format_number, html_text, md_escape, neutralize_mentions, safe_url
from kitt.domain.comparison import Comparison, GroupComparison, MetricComparison, Verdict
from kitt.domain.report import normalize_report_id, report_marker

# The body never needs to be shorter than this: the verdict line, a note and the marker fit.
MIN_MAX_CHARS = 2000
# Values from result files are clipped to this many characters (before escaping): a model name
# of 10,000 characters is an accident or an attack, and would crowd out the report.
MAX_VALUE_CHARS = 200
MAX_TITLE_CHARS = 100

# Per-scenario headline metrics of the current-results table: (metric, column label).
HEADLINE_METRICS: tuple[tuple[str, str], ...] = (
    ("ttft_ms.p50", "TTFT p50 ms"),
    ("ttft_ms.p99", "TTFT p99 ms"),
    ("tpot_ms.p50", "TPOT p50 ms"),
    ("itl_ms.p50", "ITL p50 ms"),
    ("e2e_ms.p50", "E2E p50 ms"),
    ("output_throughput_tok_s", "Output tok/s"),
    ("request_throughput_rps", "Requests/s"),
    ("error_rate", "Error rate"),
)
_CHANGE_VERDICTS: tuple[Verdict, ...] = ("regression", "improvement", "inconclusive")
_ROWS_OF_DETAILS = ("row of the all-metrics tables", "rows of the all-metrics tables")
_METHODS = {"welch-log": "Welch (log)", "welch": "Welch", "bootstrap": "bootstrap", "none": "–"}


class _Raw(str):
    """Markup the template built itself (a link, bold): passed through `finalize` unescaped."""


def _clip(value: object) -> str:
    text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _finalize(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, _Raw):
        return value
    return neutralize_mentions(md_escape(_clip(value)))


def _html(value: object) -> _Raw:
    return _Raw(neutralize_mentions(html_text(_clip(value))))


def _change(value: float | None, unit: str = "percent", *, signed: bool = True) -> str:
    """A change in percent of the baseline (`+12.5%`) or, for rates, in percentage points
    (`+0.5 pp`: 0.0% -> 0.5% of requests failed)."""
    if value is None or not math.isfinite(value):
        return "–"
    size = abs(value)
    decimals = 0 if size >= 100 else 1 if size >= 1 or size == 0 else 2
    text = f"{value:+,.{decimals}f}" if signed else f"{value:,.{decimals}f}"
    return text + (" pp" if unit == "points" else "%")


def _p(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _threshold(m: MetricComparison) -> str:
    if m.threshold_pct is None:
        return "–"
    return "±" + _change(m.threshold_pct, m.change_unit, signed=False)


def _interval(m: MetricComparison) -> str:
    if m.ci95_low_pct is None or m.ci95_high_pct is None:
        return "–"
    return f"{_change(m.ci95_low_pct, m.change_unit)} to {_change(m.ci95_high_pct, m.change_unit)}"


def _verdict_cell(verdict: str) -> _Raw:
    return _Raw("**regression**" if verdict == "regression" else md_escape(verdict))


def _method(method: str) -> str:
    return _METHODS.get(method, method)


def _link(url: str | None, text: str = "link") -> _Raw | None:
    safe = None if url is None else safe_url(url)
    return None if safe is None else _Raw(f"[{md_escape(text)}]({safe})")


def _plural(count: int, noun: str) -> str:
    return _count(count, noun, noun + "s")


def _count(count: int, singular: str, plural: str) -> str:
    return f"{count:,} {singular if count == 1 else plural}"


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        # PackageLoader finds the template inside an installed wheel as well as in a checkout.
        loader=jinja2.PackageLoader("kitt", "templates"),
        autoescape=False,  # Markdown, not HTML: _finalize escapes for Markdown and HTML both
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=format_number, p=_p, html=_html)
    env.globals.update(
        interval=_interval,
        change=lambda m: _change(m.change_pct, m.change_unit),
        threshold=_threshold,
        verdict_cell=_verdict_cell,
        method=_method,
        link=_link,
        headline_metrics=HEADLINE_METRICS,
    )
    return env.get_template("report.md.j2")


# --- what the report holds, and what a shortened one keeps --------------------------------------


@dataclass(frozen=True)
class _Parts:
    """The droppable rows of a report, in document order, computed once per comparison."""

    comparison: Comparison
    # (group index, text) of mismatches and of notes.
    mismatches: list[tuple[int, str]]
    notes: list[tuple[int, str]]
    # (group index, row) in the order the changes table shows them.
    changes: list[tuple[int, MetricComparison]]
    # Indexes into `changes`, the first to drop first.
    change_drop_order: list[int]
    # (group index, scenario name, {metric: current value}) of groups without a baseline.
    headlines: list[tuple[int, str, dict[str, float]]]
    # (group index, row) of the folded all-metrics tables.
    details: list[tuple[int, MetricComparison]]

    @classmethod
    def of(cls, comparison: Comparison) -> _Parts:
        mismatches = [(i, text) for i, g in enumerate(comparison.groups) for text in g.mismatches]
        notes = [(i, text) for i, g in enumerate(comparison.groups) for text in g.notes]
        order = {verdict: rank for rank, verdict in enumerate(_CHANGE_VERDICTS)}
        changes = [
            (i, m)
            for i, g in enumerate(comparison.groups)
            for m in sorted(
                (m for m in g.metrics if m.verdict in order), key=lambda m: order[m.verdict]
            )
        ]
        # Least important first: inconclusive, improvements, regressions; each from the end.
        drop_order = sorted(
            range(len(changes)), key=lambda k: (-order[changes[k][1].verdict], -k)
        )
        headlines = [
            (i, scenario, values)
            for i, g in enumerate(comparison.groups)
            if not comparison.baseline_found or not g.baseline_runs
            for scenario, values in _current_by_scenario(g)
        ]
        details = [(i, m) for i, g in enumerate(comparison.groups) for m in g.metrics]
        return cls(comparison, mismatches, notes, changes, drop_order, headlines, details)


def _current_by_scenario(group: GroupComparison) -> list[tuple[str, dict[str, float]]]:
    scenarios: dict[str, dict[str, float]] = {}
    for m in group.metrics:
        values = scenarios.setdefault(m.scenario, {})
        if m.current is not None:
            values[m.metric] = m.current
    return list(scenarios.items())


@dataclass(frozen=True)
class _Keep:
    """How much of each droppable part a rendering keeps (counts from the start; for changes,
    how many survive the drop order)."""

    details: int
    context: bool
    notes: int
    headlines: int
    changes: int
    mismatches: int


def _with(keep: _Keep, part: str, amount: int) -> _Keep:
    if part == "context":
        return replace(keep, context=bool(amount))
    return replace(keep, **{part: amount})  # type: ignore[arg-type]


def _view(
    parts: _Parts,
    keep: _Keep,
    *,
    report_id: str,
    title: str | None,
    max_chars: int | None,
) -> dict[str, Any]:
    comparison = parts.comparison
    groups = comparison.groups
    counts = {verdict: comparison.count(verdict) for verdict in
              ("regression", "improvement", "unchanged", "inconclusive", "missing", "new")}

    kept_changes = set(parts.change_drop_order[len(parts.changes) - keep.changes:])
    changes: list[dict[str, Any]] = []
    for k, (i, m) in enumerate(parts.changes):
        if k in kept_changes:
            if not changes or changes[-1]["index"] != i:
                changes.append({"index": i, "key": groups[i].key, "rows": []})
            changes[-1]["rows"].append(m)
    dropped_by_verdict = {
        verdict: sum(
            1 for k, (_, m) in enumerate(parts.changes)
            if k not in kept_changes and m.verdict == verdict
        )
        for verdict in _CHANGE_VERDICTS
    }

    current_only: list[dict[str, Any]] = []
    for i, scenario, values in parts.headlines[: keep.headlines]:
        if not current_only or current_only[-1]["index"] != i:
            current_only.append({"index": i, "key": groups[i].key, "scenarios": []})
        current_only[-1]["scenarios"].append({"name": scenario, "metrics": values})

    details: list[dict[str, Any]] = []
    for i, m in parts.details[: keep.details]:
        if not details or details[-1]["index"] != i:
            details.append({"index": i, "key": groups[i].key, "rows": []})
        details[-1]["rows"].append(m)
    for d in details:
        group = groups[d["index"]]
        d["current_only"] = not comparison.baseline_found or not group.baseline_runs
        total, shown = len(group.metrics), len(d["rows"])
        d["shown_label"] = (
            _plural(total, "metric") if shown == total else f"{shown:,} of {total:,} metrics shown"
        )

    dropped = {
        "details": len(parts.details) - keep.details,
        "headlines": len(parts.headlines) - keep.headlines,
        "notes": len(parts.notes) - keep.notes,
        "changes": len(parts.changes) - keep.changes,
        "mismatches": len(parts.mismatches) - keep.mismatches,
    }
    summary = [
        _count(count, *nouns)
        for count, nouns in (
            (dropped["details"], _ROWS_OF_DETAILS),
            (dropped["notes"], ("note", "notes")),
            (dropped["headlines"], ("row of the current results", "rows of the current results")),
            (dropped["changes"], ("row of the changes table", "rows of the changes table")),
            (dropped["mismatches"], ("mismatch line", "mismatch lines")),
        )
        if count
    ]
    if not keep.context:
        summary.append("the run context")

    def label(i: int) -> str | None:
        # Which group a line is about, when there is more than one.
        return _group_label(groups[i]) if len(groups) > 1 else None

    head, tail = _verdict_parts(counts)
    return {
        "baseline_found": comparison.baseline_found,
        "counts": counts,
        "verdict_head": head,
        "verdict_tail": _Raw(tail),
        "title": _clip_title(title),
        "current_runs": sum(len(g.current_runs) for g in groups),
        "group_count": len(groups),
        "compared": sum(
            1 for g in groups for m in g.metrics if m.baseline is not None and m.current is not None
        ),
        "mismatch_count": len(parts.mismatches),
        "mismatches": [
            {"label": label(i), "text": text} for i, text in parts.mismatches[: keep.mismatches]
        ],
        "mismatches_dropped": dropped["mismatches"],
        "notes": [{"label": label(i), "text": text} for i, text in parts.notes[: keep.notes]],
        "notes_dropped": dropped["notes"],
        # The caveat is about comparing: groups without a baseline have nothing to caveat.
        "single_repetition": sum(1 for g in groups if g.single_repetition and g.baseline_runs),
        "changes": changes,
        "changes_dropped": dropped["changes"],
        "changes_dropped_detail": ", ".join(
            _count(n, verdict, verdict if verdict == "inconclusive" else verdict + "s")
            for verdict, n in dropped_by_verdict.items()
            if n
        ),
        "current_only": current_only,
        "headlines_dropped": dropped["headlines"],
        "details": details,
        "context": groups if keep.context else None,
        "baseline_only": comparison.baseline_only,
        "shortened": bool(summary),
        "dropped_summary": _join(summary),
        "max_chars": max_chars,
        "kitt_version": kitt.__version__,
        "report_id": normalize_report_id(report_id),
        "alpha": comparison.alpha,
    }


def _verdict_parts(counts: dict[str, int]) -> tuple[str, str]:
    """The verdict line after its bold head: `**2 regressions**, 1 improvement, 37 unchanged`."""
    regressions = counts["regression"]
    head = _plural(regressions, "regression") if regressions else "No regressions"
    rest = [
        _plural(counts["improvement"], "improvement") if verdict == "improvement"
        else f"{counts[verdict]:,} {verdict}"
        for verdict in ("improvement", "unchanged", "inconclusive", "missing", "new")
        if counts[verdict] or verdict == "unchanged"
    ]
    return head, (", " if regressions else ": ") + ", ".join(rest)


def _group_label(group: GroupComparison) -> str:
    key = group.key
    hardware = f", hardware {_clip(key.hardware)}" if key.hardware else ""
    return f"{_clip(key.model)} on {_clip(key.engine)}, suite {_clip(key.suite)}{hardware}"


def _clip_title(title: str | None) -> str | None:
    if not title or not title.strip():
        return None
    title = " ".join(title.split())
    return title if len(title) <= MAX_TITLE_CHARS else title[: MAX_TITLE_CHARS - 1] + "…"


def _join(items: Sequence[str]) -> str:
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _largest(low: int, high: int, fits: Callable[[int], bool]) -> int:
    """The largest n in [low, high] with fits(n), given fits(low); fits is (nearly) monotone,
    and the caller checks the final rendering anyway."""
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


class MarkdownReportRenderer:
    """ReportRenderer: the report as GitHub/GitLab/Gitea-flavoured Markdown."""

    def render(
        self,
        comparison: Comparison,
        *,
        report_id: str,
        max_chars: int | None,
        title: str | None = None,
    ) -> str:
        if max_chars is not None and max_chars < MIN_MAX_CHARS:
            raise ValueError(f"max_chars must be at least {MIN_MAX_CHARS}, got {max_chars}")
        marker = report_marker(report_id)
        parts = _Parts.of(comparison)

        def body(keep: _Keep) -> str:
            view = _view(parts, keep, report_id=report_id, title=title, max_chars=max_chars)
            return _template().render(v=view).rstrip() + "\n\n" + marker

        keep = _Keep(
            details=len(parts.details),
            context=True,
            notes=len(parts.notes),
            headlines=len(parts.headlines),
            changes=len(parts.changes),
            mismatches=len(parts.mismatches),
        )
        text = body(keep)
        if max_chars is None or len(text) <= max_chars:
            return text
        limit = max_chars

        def fits(k: _Keep) -> bool:
            return len(body(k)) <= limit

        # Shed parts in order of importance, least important first (see the module docstring):
        # empty each part in turn until the body fits, then put back as much of the last one
        # as still fits.
        for part in ("details", "context", "notes", "headlines", "changes", "mismatches"):
            emptied = _with(keep, part, 0)
            if not fits(emptied):
                keep = emptied
                continue
            if part == "context":
                return body(emptied)
            most = getattr(keep, part)

            def fits_with(n: int, part: str = part, base: _Keep = emptied) -> bool:
                return fits(_with(base, part, n))

            text = body(_with(emptied, part, _largest(0, most, fits_with)))
            # The search assumes longer bodies for more rows; should a rendering break that,
            # the emptied one is known to fit.
            return text if len(text) <= limit else body(emptied)
        # Everything droppable is gone and it still does not fit: only the verdict line, a
        # note and the marker are left (MIN_MAX_CHARS is chosen so that they fit).
        return _minimal(comparison, marker, limit)


def _minimal(comparison: Comparison, marker: str, limit: int) -> str:
    head, tail = _verdict_parts(
        {v: comparison.count(v) for v in
         ("regression", "improvement", "unchanged", "inconclusive", "missing", "new")}
    )
    note = (
        "The report did not fit the comment size limit: see the full report written by "
        "`kitt ci report --output FILE` or the job's step summary."
    )
    text = f"**{head}**{tail}\n\n{note}\n\n{marker}"
    return text if len(text) <= limit else f"**{head}**\n\n{marker}"
