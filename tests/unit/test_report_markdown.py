"""The CI report as Markdown: what a reviewer sees on the pull request."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.markdown import WORD_JOINER
from adapters.report.markdown import MIN_MAX_CHARS, MarkdownReportRenderer
from kitt.domain.comparison import (
    Comparison,
    GroupComparison,
    GroupKey,
    MetricComparison,
)
from kitt.domain.report import report_id_problem, report_marker
from kitt.ports import ReportRenderer
from tests.comparisons import (
    KEY,
    big,
    compared,
    metric,
    no_baseline,
    run_summary,
    typical,
    unchanged,
)

EVIL = "evil|<script>*x* @octocat #12"


def render(comparison: Comparison, **kwargs: Any) -> str:
    renderer: ReportRenderer = MarkdownReportRenderer()
    kwargs.setdefault("report_id", "default")
    kwargs.setdefault("max_chars", None)
    return renderer.render(comparison, **kwargs)


class _Page(HTMLParser):
    """Text and tags of rendered HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.parts)


def to_html(markdown: str) -> _Page:
    """As GitHub would: CommonMark + tables, raw HTML allowed (for <details>)."""
    markdown_it = pytest.importorskip("markdown_it")
    renderer = markdown_it.MarkdownIt("commonmark", {"html": True}).enable(
        ["table", "strikethrough"])
    page = _Page()
    page.feed(renderer.render(markdown))
    return page


# --- layout ------------------------------------------------------------------------------------


def test_the_verdict_line_comes_first_and_counts_every_verdict():
    body = render(typical())
    assert body.splitlines()[0] == (
        "**2 regressions**, 1 improvement, 3 unchanged, 1 inconclusive")
    assert render(unchanged()).splitlines()[0] == "**No regressions**: 1 unchanged"
    titled = render(typical(), title="nightly  A100 ")
    assert titled.splitlines()[0].endswith(" · nightly A100")


def test_the_marker_is_the_last_line():
    body = render(typical(), report_id="bench/a100")
    assert body.endswith("\n<!-- kitt-report:bench/a100 -->")
    assert body.splitlines()[-1] == report_marker("bench/a100")
    assert body.count("kitt-report:") == 1


def test_report_ids_from_ci_job_names_become_safe_markers():
    # A GitLab matrix job name: spaces, brackets, commas; and an attempt to end the comment.
    for raw in ("bench: [a100, vllm]", "x --> <script>", "a" * 300):
        marker = report_marker(raw)
        inner = marker.removeprefix("<!-- kitt-report:").removesuffix(" -->")
        assert report_id_problem(inner) is None, (raw, inner)
        assert report_marker(raw) == marker  # the same job finds the same comment
    assert report_marker("bench: [a100]") != report_marker("bench: [h100]")
    assert report_marker("a" * 300) != report_marker("a" * 299)


def test_changes_table_lists_regressions_first_with_interval_and_holm_p():
    body = render(typical())
    changes = body.split("### Changes beyond the threshold")[1].split("###")[0]
    rows = [line for line in changes.splitlines() if line.startswith("| ")][2:]
    assert [row.split(" | ")[-1] for row in rows] == [
        "**regression** |", "**regression** |", "improvement |", "inconclusive |"]
    assert rows[0] == ("| chat_short | ttft_ms.p50 | 20.0 | 26.0 | +30.0% | +26.0% to +34.0% "
                       "| 0.004 | **regression** |")
    assert "unchanged" not in changes


def test_every_metric_is_folded_in_details_that_github_renders_as_tables():
    comparison = typical()
    body = render(comparison)
    details = body.split("### All metrics")[1]
    assert "<details>\n<summary>" in details
    assert "</summary>\n\n| Scenario |" in details and "|\n\n</details>" in details
    rows = [line for line in details.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(comparison.groups[0].metrics)
    page = to_html(body)
    assert page.tags.count("table") == 2 and "details" in page.tags


def test_run_context_names_model_engine_hardware_commit_and_run_link():
    body = render(typical())
    context = body.split("### Run context")[1]
    assert "meta-llama/Llama-3.1-8B-Instruct" in context and "hw-1a2b3c" in context
    assert "vllm/vllm-openai:v0.6.3" in context and "0123abcd" in context
    assert "[CI run](https://github.com/o/r/actions/runs/7)" in context
    assert context.count("- Current: run") == 1 and context.count("- Baseline: run") == 1
    assert "kitt 0.1.0" in context


def test_no_baseline_says_so_and_shows_the_current_results_alone():
    body = render(no_baseline())
    assert body.splitlines()[0].startswith("**No baseline found**")
    assert "### Changes" not in body and "Few repetitions" not in body
    current = body.split("### Current results")[1].split("###")[0]
    assert "| chat_short | 21.5 | – | – | – | 480 | 1,234 | – | 0 |" in current
    assert "| long_context |" in current
    details = body.split("### All metrics")[1]
    assert "| Scenario | Metric | Current | n |" in details and "Baseline" not in details


def test_a_mismatch_is_shown_before_the_changes_and_explains_gating():
    comparison = compared(
        [metric("chat_short", "ttft_ms.p50", "regression", 20.0, 26.0)],
        mismatches=["hardware fingerprint hw-1 (baseline) ≠ hw-2 (current)"],
    )
    body = render(comparison)
    assert "**baseline not like for like**" in body.splitlines()[0]
    banner = body.index("**Mismatch between the baseline and the current results.**")
    assert banner < body.index("### Changes")
    assert "hardware fingerprint hw-1 (baseline) ≠ hw-2 (current)" in body
    assert "`--allow-mismatch`" in body and "`--fail-on-regression`" in body


def test_single_repetition_caveat():
    assert "**Few repetitions**" in render(compared(
        [metric("chat_short", "ttft_ms.p50", "inconclusive", 20.0, 26.0)], single_repetition=True))
    assert "Few repetitions" not in render(typical())


def test_notes_are_listed_after_the_changes():
    note = "current run r/job-a is interrupted: only 2 of 3 repetitions"
    group = msgspec.structs.replace(typical().groups[0], notes=[note])
    comparison = msgspec.structs.replace(typical(), groups=[group])
    body = render(comparison)
    notes = body.index("Notes:\n\n- current run r/job-a is interrupted")
    assert body.index("### Changes") < notes < body.index("### All metrics")


def test_error_rate_changes_are_in_percentage_points():
    m = metric("chat", "error_rate", "regression", 0.0, 0.005, change_pct=0.5, ci95_low_pct=0.2,
               ci95_high_pct=0.8, threshold_pct=0.25, change_unit="points", method="welch")
    body = render(compared([m]))
    assert "| +0.50 pp | +0.20 pp to +0.80 pp |" in body
    assert "| ±0.25 pp | 5 / 5 | Welch |" in body


def test_groups_name_their_hardware():
    key = GroupKey(model="m", engine="vllm", suite="quick", hardware="8x H100 [abc]")
    body = render(compared([metric("s", "ttft_ms.p50", "regression", 1.0, 2.0)], key=key))
    assert "<summary>m on vllm, suite quick, hardware 8x H100 [abc]:" in body
    assert "**m** on **vllm**, suite quick, hardware 8x H100 \\[abc\\]" in body


def test_no_change_beyond_threshold_is_said_plainly():
    assert "No metric changed beyond its threshold." in render(unchanged())


# --- escaping ----------------------------------------------------------------------------------


def hostile() -> Comparison:
    key = GroupKey(model=EVIL, engine="vllm`rm -rf`", suite="_quick_")
    return Comparison(baseline_found=True, groups=[GroupComparison(
        key=key,
        current_runs=[run_summary("current", run_url="javascript:alert(1)",
                                  engine_image="<img src=x onerror=alert(1)>")],
        baseline_runs=[run_summary("baseline", run_url="https://ci.example/run (1)|x")],
        mismatches=[f"model {EVIL} ≠ other"],
        metrics=[metric("[click](https://evil.example)", "ttft_ms.p50", "regression", 1.0, 2.0),
                 metric("| x |", "e2e_ms.p50", "unchanged")],
    )])  # fmt: skip


def test_values_from_result_files_render_as_themselves_and_cannot_inject_markup():
    body = render(hostile())
    page = to_html(body)
    assert not {"script", "img", "em"} & set(page.tags)
    links = re.findall(r"<a href=\"([^\"]*)\"", _html(body))
    assert links == ["https://ci.example/run%20%281%29%7Cx"]  # javascript: is no link
    text = page.text.replace(WORD_JOINER, "")
    assert f"{EVIL} on vllm`rm -rf`, suite _quick_" in text  # in the <summary>, no backslashes
    assert "[click](https://evil.example)" in text and "| x |" in text
    # Every table row kept its cells: the pipes from the files did not split them.
    for line in body.splitlines():
        if line.startswith("| Scenario | Metric | Baseline"):
            columns = line.count(" | ")
        elif line.startswith("| [click]") or line.startswith("| \\| x"):
            assert len(re.findall(r"(?<!\\)\|", line)) - 2 == columns


def test_mentions_and_references_from_result_files_do_not_ping_anyone():
    body = render(hostile())
    assert "@octocat" not in body and "#12" not in body
    assert f"@{WORD_JOINER}octocat" in body and f"#{WORD_JOINER}12" in body


def test_enormous_values_are_clipped():
    key = GroupKey(model="m" * 5000, engine="vllm", suite="quick")
    body = render(compared([metric("s", "ttft_ms.p50", "unchanged")], key=key))
    assert "m" * 200 not in body and "m" * 199 + "…" in body
    assert len(body) < 8000


def _html(markdown: str) -> str:
    markdown_it = pytest.importorskip("markdown_it")
    return str(markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table")
               .render(markdown))


# --- size limit --------------------------------------------------------------------------------


def table_rows(body: str) -> list[str]:
    return [line for line in body.splitlines() if line.startswith("|")]


def test_a_long_report_drops_detail_rows_first_and_says_where_the_full_one_is():
    comparison = big()
    full = render(comparison)
    assert len(full) > 65536
    body = render(comparison, max_chars=65536, report_id="r")
    assert len(body) <= 65536 and body.endswith(report_marker("r"))
    assert body.splitlines()[0] == full.splitlines()[0]
    changes = body.split("### Changes beyond the threshold")[1].split("###")[0]
    assert changes.count("**regression**") == 3 and changes.count("inconclusive |") == 30
    shown = len(table_rows(body.split("### All metrics")[1])) - 2  # header and rule
    total = len(comparison.groups[0].metrics)
    match = re.search(r"([\d,]+) rows of the all-metrics tables", body)
    assert match and int(match.group(1).replace(",", "")) == total - shown
    assert f"{shown:,} of {total:,} metrics shown" in body
    assert "`--output FILE`" in body and "step summary" in body
    assert "### Run context" in body  # dropped only after every detail row
    for row in table_rows(body):
        assert row.endswith("|")  # no row cut in the middle


def test_at_the_floor_regressions_outlive_everything_else():
    body = render(big(regressions=3), max_chars=MIN_MAX_CHARS)
    assert len(body) <= MIN_MAX_CHARS
    assert body.count("**regression** |") == 3
    kept = body.count("inconclusive |")
    assert kept < 30 and "| scenario_29 | itl_ms.p99 |" not in body  # dropped from the end
    assert f"{30 - kept} more rows of changes left out" in body
    assert f"({30 - kept} inconclusive)" in body
    assert "### All metrics" not in body and "### Run context" not in body
    assert body.splitlines()[0].startswith("**3 regressions**")


def test_max_chars_below_the_floor_is_refused():
    with pytest.raises(ValueError, match="at least"):
        render(typical(), max_chars=MIN_MAX_CHARS - 1)


_text = st.text(alphabet=st.sampled_from(list("ab_|*<>&@#`[]()- \n\\é")), max_size=30) | st.text(
    alphabet="xyz|", min_size=150, max_size=400)
_number = st.none() | st.floats(allow_nan=True, allow_infinity=True, width=32)
_verdicts = st.sampled_from(
    ["regression", "improvement", "inconclusive", "unchanged", "missing", "new"])


@st.composite
def _metric(draw: st.DrawFn) -> MetricComparison:
    return MetricComparison(
        scenario=draw(_text), metric=draw(st.sampled_from(["ttft_ms.p50", "error_rate"]) | _text),
        direction=draw(st.sampled_from(["lower", "higher", None])), verdict=draw(_verdicts),
        baseline=draw(_number), current=draw(_number), change_pct=draw(_number),
        ci95_low_pct=draw(_number), ci95_high_pct=draw(_number), p_value=draw(_number),
        p_adjusted=draw(_number), threshold_pct=draw(_number),
        method=draw(st.sampled_from(["welch-log", "welch", "bootstrap", "none"])),
        change_unit=draw(st.sampled_from(["percent", "points"])),
    )  # fmt: skip


@st.composite
def _group(draw: st.DrawFn) -> GroupComparison:
    side = st.lists(st.builds(run_summary, st.just("x"), run_id=_text, engine_version=_text,
                              run_url=_text | st.just("https://x.example/run")), max_size=2)
    return GroupComparison(
        key=GroupKey(model=draw(_text), engine=draw(_text), suite=draw(_text),
                     hardware=draw(_text)),
        current_runs=draw(side), baseline_runs=draw(side),
        mismatches=draw(st.lists(_text, max_size=3)), notes=draw(st.lists(_text, max_size=3)),
        single_repetition=draw(st.booleans()),
        metrics=draw(st.lists(_metric(), max_size=80)),
    )  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    groups=st.lists(_group(), min_size=0, max_size=4),
    baseline_found=st.booleans(),
    max_chars=st.integers(min_value=MIN_MAX_CHARS, max_value=30_000),
    report_id=st.sampled_from(["default", "bench: [a100, vllm]", "x" * 150]),
    title=st.none() | _text,
)
def test_any_report_fits_its_limit_and_ends_with_the_marker(
    groups: list[GroupComparison], baseline_found: bool, max_chars: int, report_id: str,
    title: str | None,
) -> None:
    comparison = Comparison(baseline_found=baseline_found, groups=groups,
                            baseline_only=[KEY] if groups else [])
    body = render(comparison, max_chars=max_chars, report_id=report_id, title=title)
    assert len(body) <= max_chars
    assert body.endswith("\n" + report_marker(report_id))
    first = body.splitlines()[0]
    assert first.startswith("**No baseline found**" if not baseline_found else "**")
    assert all(line.endswith("|") for line in body.splitlines() if line.startswith("|"))
    full = render(comparison, report_id=report_id, title=title)
    if len(full) <= max_chars:
        assert body == full  # nothing dropped when it fits


def test_a_matrix_report_has_a_section_per_group_and_well_formed_blocks():
    groups = [
        GroupComparison(
            key=GroupKey(model="m", engine=engine, suite="quick", hardware=hardware),
            current_runs=[run_summary("current")], baseline_runs=[run_summary("baseline")],
            notes=[f"note about {engine}"],
            metrics=[metric("chat", "ttft_ms.p50", "regression", 20.0, 26.0),
                     metric("chat", "e2e_ms.p50", "unchanged")],
        )
        for engine, hardware in (("vllm", "8x H100 [a]"), ("sglang", "8x A100 [b]"))
    ]  # fmt: skip
    body = render(Comparison(baseline_found=True, groups=groups))
    assert body.splitlines()[0] == "**2 regressions**, 2 unchanged"
    page = to_html(body)
    assert page.tags.count("table") == 4  # a changes table and a details table per group
    assert page.tags.count("details") == 2
    lines = body.splitlines()
    for i, line in enumerate(lines):
        starts_block = line.startswith("| Scenario") or (
            line.startswith("- ") and not lines[i - 1].startswith("- "))
        if starts_block:
            assert lines[i - 1] == "", f"no blank line before {line!r}"
    assert "- m on sglang, suite quick, hardware 8x A100 \\[b\\]: note about sglang" in body
