"""`kitt ci report` through click's runner: flags, tokens, targets and exit codes.

The comparison service and the forge are replaced by fakes (tests/fakes.py); result directories
are real ones written by FilesystemStore.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from dependency_injector import providers

from adapters.storage.filesystem import FilesystemStore
from kitt.cli import cli
from kitt.container import Container
from kitt.domain.ci import default_report_id
from kitt.domain.comparison import Comparison
from kitt.domain.errors import ForgeError
from kitt.domain.report import report_marker
from tests.adapters.test_filesystem_store import write_run
from tests.comparisons import compared, metric, no_baseline, typical, unchanged
from tests.fakes import FakeComment, FakeComparer, FakeVcsHost, FakeVcsHostFactory

SECRET = "ghp_SECRETtoken123"


@pytest.fixture(autouse=True)
def outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests say which CI they run in: none of the runner's own variables leak in."""
    for name in list(os.environ):
        if name.startswith(("GITHUB_", "GITLAB_", "GITEA_", "CI_")) or name == "CI":
            monkeypatch.delenv(name)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    write_run(tmp_path / "results" / "job-a")
    return tmp_path / "results"


class Setup:
    def __init__(self, comparison: Comparison, host: FakeVcsHost | None = None) -> None:
        self.comparer = FakeComparer(comparison, store=FilesystemStore())
        self.host = host or FakeVcsHost()
        self.factory = FakeVcsHostFactory(self.host)
        self.container = Container()
        self.container.comparison_service.override(providers.Object(self.comparer))
        self.container.vcs_host_factory.override(providers.Object(self.factory))

    def invoke(self, args: list[str], env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(cli, ["ci", "report", *args], obj=self.container, env=env)


def test_help_lists_the_flags_and_environment_variables_but_no_token(monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", SECRET)
    result = CliRunner().invoke(cli, ["ci", "report", "--help"])
    assert result.exit_code == 0
    for flag in ("--results-dir", "--baseline-dir", "--github-token", "--repo", "--pr",
                 "--forge", "--api-url", "--token", "--output", "--json", "--fail-on-regression",
                 "--allow-mismatch", "--threshold", "--report-id"):
        assert flag in result.output
    assert "GITLAB_TOKEN" in result.output and "CI_JOB_TOKEN" in result.output
    assert SECRET not in result.output
    assert "report" in CliRunner().invoke(cli, ["ci", "--help"]).output


def test_output_file_with_no_token_and_no_network(tmp_path, results):
    setup = Setup(no_baseline())
    setup.factory = None  # type: ignore[assignment]
    setup.container.vcs_host_factory.override(providers.Object(_no_forge))
    out = tmp_path / "report.md"
    result = setup.invoke(["--results-dir", str(results), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert out.read_text().startswith("**No baseline found**")
    assert f"report written to {out}" in result.stderr
    assert setup.comparer.calls == [(results, None, {})]


def _no_forge(**kwargs: object) -> FakeVcsHost:
    raise AssertionError("no forge may be contacted without forge options")


def test_without_a_target_the_report_goes_to_stdout_and_status_to_stderr(results):
    result = Setup(typical()).invoke(["--results-dir", str(results)])
    assert result.exit_code == 0  # regressions do not fail without --fail-on-regression
    assert result.stdout.startswith("**2 regressions**, 1 improvement")
    assert result.stdout.rstrip().endswith(report_marker("default"))
    assert "kitt: 2 regressions" in result.stderr


def test_missing_results_exit_1_with_the_reason(tmp_path):
    result = Setup(typical()).invoke(["--results-dir", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert f"kitt: error: no metrics.json in {tmp_path / 'nope'}" in result.stderr


def test_posting_with_flags_creates_then_updates_one_comment(tmp_path, results):
    setup = Setup(typical())
    args = ["--results-dir", str(results), "--repo", "o/r", "--pr", "5",
            "--github-token", SECRET]
    first = setup.invoke(args)
    assert first.exit_code == 0, first.output
    assert "comment posted: https://forge.invalid/" in first.stderr
    assert first.stdout == ""  # posted, not printed
    setup.comparer.comparison = unchanged()
    second = setup.invoke(args)
    assert "comment updated: https://forge.invalid/" in second.stderr
    [mine] = setup.host.mine()
    assert mine.body.startswith("**No regressions**")
    assert setup.factory.calls[0] == {"forge": "github", "api_url": None, "token": SECRET,
                                      "repo": "o/r", "number": 5, "job_token": False}
    assert SECRET not in first.output + second.output


def test_the_token_comes_from_the_environment(results):
    setup = Setup(typical())
    result = setup.invoke(["--results-dir", str(results), "--repo", "o/r", "--pr", "5"],
                          env={"GITHUB_TOKEN": SECRET})
    assert result.exit_code == 0, result.output
    assert setup.factory.calls[0]["token"] == SECRET and len(setup.host.mine()) == 1


def test_inside_a_github_pull_request_workflow_the_rest_is_detected(tmp_path, results):
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "octo/kitt",
           "GITHUB_REF": "refs/pull/42/merge", "GITHUB_API_URL": "https://ghe.example/api/v3",
           "GITHUB_TOKEN": SECRET, "GITHUB_WORKFLOW": "bench", "GITHUB_JOB": "gpu",
           "GITHUB_STEP_SUMMARY": str(summary)}
    setup = Setup(typical())
    result = setup.invoke(["--results-dir", str(results), "--forge", "github"], env=env)
    assert result.exit_code == 0, result.output
    assert setup.factory.calls == [{"forge": "github", "api_url": "https://ghe.example/api/v3",
                                    "token": SECRET, "repo": "octo/kitt", "number": 42,
                                    "job_token": False}]
    [mine] = setup.host.mine()
    assert mine.body.endswith(report_marker("bench/gpu"))
    assert summary.read_text().startswith("**2 regressions**")
    assert "step summary" in result.stderr


def test_gitlab_merge_request_pipeline(results):
    env = {"GITLAB_CI": "true", "CI_PROJECT_PATH": "group/proj", "CI_MERGE_REQUEST_IID": "3",
           "CI_API_V4_URL": "https://gitlab.example/api/v4", "CI_JOB_TOKEN": SECRET,
           "CI_JOB_NAME": "bench: [a100]"}
    setup = Setup(typical())
    result = setup.invoke(["--results-dir", str(results), "--forge", "gitlab"], env=env)
    assert result.exit_code == 0, result.output
    assert setup.factory.calls[0] == {"forge": "gitlab", "api_url": "https://gitlab.example/api/v4",
                                      "token": SECRET, "repo": "group/proj", "number": 3,
                                      "job_token": True}
    # One comment per matrix job: the job name holds the matrix values.
    assert setup.host.mine()[0].body.endswith(report_marker(default_report_id(env)))
    assert "bench-a100" in default_report_id(env)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--forge", "github"], "posting the report to GitHub needs the repository (pass --repo "
         "OWNER/NAME), the pull request number (pass --pr N"),
        (["--repo", "o/r", "--pr", "1"], "GitHub needs a token (pass --github-token TOKEN or "
         "--token TOKEN, or set GITHUB_TOKEN)"),
        (["--forge", "gitea", "--repo", "o/r", "--pr", "1", "--token", SECRET],
         "Gitea needs the API URL (pass --api-url https://HOST/api/v1)"),
        (["--github-token", SECRET, "--forge", "gitlab"], "--github-token is for GitHub"),
        (["--report-id", "a--b"], "--report-id 'a--b' cannot be used"),
        (["--threshold", "ttft_ms.p50"], "--threshold 'ttft_ms.p50': expected METRIC=PCT"),
        (["--threshold", "speed=5"], "unknown metric 'speed'"),
        (["--pr", "0"], "Invalid value for '--pr'"),
        (["--forge", "bitbucket"], "Invalid value for '--forge'"),
    ],
)
def test_usage_errors_exit_2_with_a_precise_message(results, args, message):
    result = Setup(typical()).invoke(["--results-dir", str(results), *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert SECRET not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["--github-token", "x", SECRET],  # a token pasted where no option takes it
        ["--pr", SECRET],  # a token given to the wrong option
        ["--token"],  # missing value
    ],
)
def test_click_errors_never_echo_a_token(results, args):
    result = Setup(typical()).invoke(["--results-dir", str(results), *args],
                                     env={"GITHUB_TOKEN": SECRET})
    assert result.exit_code == 2
    assert SECRET not in result.output


class _Unauthorized(FakeVcsHost):
    def find_comment(self, marker: str) -> FakeComment | None:
        raise ForgeError("GitHub: GET /repos/o/r/issues/5/comments answered 401 Bad credentials",
                         forge="GitHub", status=401)


def test_a_forge_error_exits_1_after_writing_the_file_and_never_shows_the_token(tmp_path, results):
    setup = Setup(typical(), host=_Unauthorized())
    out = tmp_path / "report.md"
    result = setup.invoke(["--results-dir", str(results), "--output", str(out), "--repo", "o/r",
                           "--pr", "5", "--token", SECRET])
    assert result.exit_code == 1
    assert "kitt: error: GitHub: GET /repos/o/r/issues/5/comments answered 401" in result.stderr
    assert out.exists() and SECRET not in result.output


def test_fail_on_regression_exits_1_and_names_the_metrics_after_posting(results):
    setup = Setup(typical())
    result = setup.invoke(["--results-dir", str(results), "--fail-on-regression", "--repo",
                           "o/r", "--pr", "5"], env={"GITHUB_TOKEN": SECRET})
    assert result.exit_code == 1
    assert "2 regressions (--fail-on-regression): " in result.stderr
    assert "chat_short ttft_ms.p50 +30.0%" in result.stderr
    assert len(setup.host.mine()) == 1  # the report is on the PR, saying why


def test_gating_without_regression_or_without_baseline_passes(results):
    args = ["--results-dir", str(results), "--fail-on-regression"]
    assert Setup(unchanged()).invoke(args).exit_code == 0
    assert Setup(no_baseline()).invoke(args).exit_code == 0


def test_a_mismatch_refuses_gating_unless_allowed(results):
    comparison = compared([metric("chat", "ttft_ms.p50", "unchanged", 20.0, 20.1)],
                          mismatches=["engine version 0.6.2 (baseline) ≠ 0.6.3 (current)"])
    gated = Setup(comparison).invoke(["--results-dir", str(results), "--fail-on-regression"])
    assert gated.exit_code == 1
    assert "gating refused" in gated.stderr and "--allow-mismatch" in gated.stderr
    assert "engine version 0.6.2 (baseline) ≠ 0.6.3 (current)" in gated.stderr
    allowed = Setup(comparison).invoke(["--results-dir", str(results), "--fail-on-regression",
                                        "--allow-mismatch"])
    assert allowed.exit_code == 0
    ungated = Setup(comparison).invoke(["--results-dir", str(results)])
    assert ungated.exit_code == 0 and "warning: the baseline is not like for like" in (
        ungated.stderr)


def test_thresholds_json_and_report_id(tmp_path, results):
    setup = Setup(typical())
    data = tmp_path / "comparison.json"
    result = setup.invoke(["--results-dir", str(results), "--baseline-dir", str(tmp_path / "b"),
                           "--threshold", "ttft_ms.p99=10", "--threshold", "e2e_ms.p50=7.5%",
                           "--json", str(data), "--report-id", "a100"])
    assert result.exit_code == 0, result.output
    assert setup.comparer.calls == [
        (results, tmp_path / "b", {"ttft_ms.p99": 10.0, "e2e_ms.p50": 7.5})]
    assert json.loads(data.read_text())["baseline_found"] is True
    assert result.stdout.rstrip().endswith(report_marker("a100"))


def test_with_the_real_comparison_service(tmp_path, results):
    """The real container end to end, with no baseline: nothing to contact, nothing faked."""
    out = tmp_path / "report.md"
    result = CliRunner().invoke(
        cli, ["ci", "report", "--results-dir", str(results), "--baseline-dir",
              str(tmp_path / "missing"), "--output", str(out), "--fail-on-regression"],
    )
    assert result.exit_code == 0, result.output
    report = out.read_text()
    assert report.startswith("**No baseline found**")
    assert "chat_short" in report and report.endswith(report_marker("default"))


# --- through the real forge adapters, against the fake forge server (tests/forge_server.py) ----


@pytest.mark.parametrize("dialect", ["github", "gitlab", "gitea"])
def test_two_runs_leave_one_comment_on_a_real_socket(results, dialect):
    from tests.forge_server import FakeForge, kitt_comments

    token = "kitt-T0KEN-cli"
    with FakeForge(dialect) as forge:
        me, alice = forge.add_user("kitt-bot", token=token), forge.add_user("alice")
        forge.seed_comments(250, alice)
        marker = report_marker("bench")
        quoted = forge.add_comment(alice, f"quoting the bot\n{marker}")
        container = Container()  # the real forge adapters, made by the container's factory
        comparer = FakeComparer(typical(), store=FilesystemStore())
        container.comparison_service.override(providers.Object(comparer))
        args = ["ci", "report", "--results-dir", str(results), "--forge", dialect,
                "--api-url", forge.api_url, "--repo", forge.repo, "--pr", str(forge.number),
                "--report-id", "bench"]
        for comparison in (typical(), unchanged()):
            comparer.comparison = comparison
            result = CliRunner().invoke(cli, args, obj=container, env={"GITEA_TOKEN": token,
                                                                       "GITLAB_TOKEN": token,
                                                                       "GITHUB_TOKEN": token})
            assert result.exit_code == 0, result.output
            assert token not in result.output
        mine = [c for c in kitt_comments(forge, marker) if c.author is me]
        assert len(mine) == 1 and mine[0].body.startswith("**No regressions**")
        assert [c.body for c in forge.thread() if c.id == quoted.id] == [quoted.body]

        wrong = CliRunner().invoke(cli, [*args, "--token", "wrong-T0KEN-cli"], obj=container)
        assert wrong.exit_code == 1
        assert "401" in wrong.stderr and "wrong-T0KEN-cli" not in wrong.output


def test_real_comparison_gates_a_30_percent_slower_run(tmp_path):
    """Real result files, the real comparison service, the real report: only the forge is
    absent."""
    from tests.adapters.test_filesystem_store import record

    def slow_records(factor: float) -> list:
        return [
            record(rep, i, ttft=(20.0 + 3 * i + rep) * factor, gap=(5.0 + 0.25 * i) * factor,
                   start=12.5 * i)
            for rep in (1, 2, 3) for i in range(8)
        ]

    write_run(tmp_path / "baseline" / "job", tmp_records=slow_records(1.0))
    write_run(tmp_path / "same" / "job", tmp_records=slow_records(1.0))
    write_run(tmp_path / "slower" / "job", tmp_records=slow_records(1.3))
    base = ["ci", "report", "--baseline-dir", str(tmp_path / "baseline"), "--fail-on-regression"]

    same = CliRunner().invoke(cli, [*base, "--results-dir", str(tmp_path / "same")])
    assert same.exit_code == 0, same.output
    assert same.stdout.startswith("**No regressions**")

    out = tmp_path / "report.md"
    slower = CliRunner().invoke(cli, [*base, "--results-dir", str(tmp_path / "slower"),
                                      "--output", str(out)])
    assert slower.exit_code == 1, slower.output
    assert "regressions (--fail-on-regression): " in slower.stderr
    assert "chat_short ttft_ms.p50 +30.0%" in slower.stderr
    report = out.read_text()
    assert "| chat_short | ttft_ms.p50 |" in report and "**regression**" in report
