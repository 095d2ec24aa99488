"""`kitt compare` through click's runner, on result directories written by the real
FilesystemStore from synthetic runs."""

from __future__ import annotations

import random
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from adapters.storage.filesystem import FilesystemStore
from kitt.cli import cli
from kitt.container import Container
from kitt.domain.comparison import Comparison, RunData
from tests.fakes import FakeHardwareProbe
from tests.synthetic import Profile, build_run, repetition_records, scaled_records, synthetic_run

QUIET = Profile(requests=96, sigma=0.1)


def write_run(directory: Path, run: RunData) -> Path:
    writer = FilesystemStore().create_run(directory)
    for record in run.requests:
        writer.append_request(record)
    assert run.config is not None
    writer.write_results(run.metrics, run.config, FakeHardwareProbe().probe())
    writer.close()
    return directory


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), obj=Container())


@pytest.fixture
def slower(tmp_path: Path) -> tuple[Path, Path]:
    """A baseline, and the same requests with TTFT 30% higher as the current results."""
    records = repetition_records(QUIET, scenario="chat", repetition=1, rng=random.Random(1))
    baseline = build_run("b", {"chat": [records]}, profiles={"chat": QUIET})
    current = build_run("c", {"chat": [scaled_records(records, ttft=1.3)]},
                        profiles={"chat": QUIET})
    return (write_run(tmp_path / "current" / "job-1", current),
            write_run(tmp_path / "baseline" / "job-1", baseline))


def test_a_regression_is_shown_and_the_exit_code_stays_0(slower):
    current, baseline = slower
    result = invoke("compare", str(current.parent), str(baseline.parent))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    rows = [line for line in lines if "ttft_ms.p50" in line]
    assert len(rows) == 1 and "regression" in rows[0] and "+30.0%" in rows[0]
    # Only what changed is listed without --all.
    assert not any("unchanged" in line for line in lines if "│" in line)
    assert "regressions" in lines[-1] and "unchanged" in lines[-1]
    assert "fewer than 3 repetitions" in result.output


def test_all_lists_every_metric_and_json_holds_the_same_verdicts(slower, tmp_path):
    current, baseline = slower
    out = tmp_path / "comparison.json"
    result = invoke("compare", str(current), str(baseline), "--all", "--json", str(out))
    assert result.exit_code == 0, result.output
    comparison = msgspec.json.decode(out.read_bytes(), type=Comparison)
    assert comparison.baseline_found and comparison.has_regression
    shown = [line for line in result.output.splitlines() if "│" in line and " chat " in line]
    assert len(shown) == len(comparison.groups[0].metrics)
    for m in comparison.groups[0].metrics:
        row = next(line for line in shown if f" {m.metric} " in line)
        assert m.verdict in row


def test_a_missing_or_empty_baseline_is_not_an_error(slower, tmp_path):
    current, _ = slower
    (tmp_path / "empty").mkdir()
    for baseline in (tmp_path / "nowhere", tmp_path / "empty"):
        result = invoke("compare", str(current), str(baseline))
        assert result.exit_code == 0, result.output
        assert f"No baseline results in {baseline}" in " ".join(result.output.split())
        assert "TTFT p50 ms" in result.output and "chat" in result.output
        assert result.output.splitlines()[-1] == "no baseline: nothing compared"


def test_missing_or_invalid_current_results_exit_1(slower, tmp_path):
    _, baseline = slower
    missing = invoke("compare", str(tmp_path / "nowhere"), str(baseline))
    assert missing.exit_code == 1
    assert "kitt: error: results directory" in missing.output and "does not exist" in (
        missing.output)
    (tmp_path / "empty").mkdir()
    empty = invoke("compare", str(tmp_path / "empty"), str(baseline))
    assert empty.exit_code == 1 and "no results in" in empty.output
    broken = tmp_path / "broken"
    write_run(broken, synthetic_run("x", {"chat": QUIET}, seed=3))
    (broken / "metrics.json").write_text('{"schema_version": 1, "run_id": 5}')
    invalid = invoke("compare", str(broken), str(baseline))
    assert invalid.exit_code == 1
    assert str(broken / "metrics.json") in invalid.output and "Traceback" not in invalid.output


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ttft_ms.p50", "expected METRIC=PCT"),
        ("=5", "expected METRIC=PCT"),
        ("ttft.p50=5", "unknown metric 'ttft.p50'"),
        ("ttft_ms.p50=fast", "must be a number of percent"),
        ("ttft_ms.p50=-3", "must be a number of percent"),
    ],
)
def test_a_bad_threshold_is_a_usage_error(slower, value, message):
    current, baseline = slower
    result = invoke("compare", str(current), str(baseline), "--threshold", value)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"kitt: error: --threshold {value!r}")
    assert message in result.output


def test_a_threshold_changes_the_verdict(slower):
    current, baseline = slower
    result = invoke("compare", str(current), str(baseline), "--threshold", "ttft_ms=40%")
    assert result.exit_code == 0
    assert not any("ttft_ms" in line for line in result.output.splitlines() if "│" in line)


def test_mismatches_and_notes_are_shown_first(tmp_path):
    current = write_run(tmp_path / "c", synthetic_run("c", {"chat": QUIET}, seed=1,
                                                        fingerprint="GPU A [aaa]"))
    baseline_run = synthetic_run("b", {"chat": QUIET}, seed=2, fingerprint="GPU B [bbb]")
    baseline = write_run(tmp_path / "b", baseline_run)
    (baseline / "requests.jsonl").unlink()
    result = invoke("compare", str(current), str(baseline))
    assert result.exit_code == 0
    first = result.output.splitlines()[0]
    assert first.startswith("MISMATCH") and "hardware differs: current GPU A [aaa]" in first
    assert "requests.jsonl not used" in " ".join(result.output.split())


def test_names_from_result_files_are_printed_literally(tmp_path):
    odd = "[bold]chat"
    run = synthetic_run("c", {odd: QUIET}, seed=1)
    current = write_run(tmp_path / "c", run)
    baseline = write_run(tmp_path / "b", synthetic_run("b", {odd: QUIET}, seed=2))
    result = invoke("compare", str(current), str(baseline), "--all")
    assert result.exit_code == 0 and "[bold]chat" in result.output


def test_compare_is_listed_in_help():
    result = invoke("--help")
    assert "compare" in result.output and "Compare results with a baseline" in result.output
