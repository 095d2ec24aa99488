"""`kitt ci report` as a use case: where the report goes, one sticky comment, and the gate."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from adapters.report.markdown import MarkdownReportRenderer
from kitt.cli.exit import ExitCode, exit_code_for_error, gate_report
from kitt.domain.comparison import Comparison
from kitt.domain.errors import ForgeError, KittError, ResultFileError, UsageError
from kitt.domain.report import report_marker
from kitt.services.ci_report import (
    CiReportRequest,
    CiReportService,
    ForgeOptions,
    ForgeSettings,
    detect_ci_target,
    resolve_forge,
)
from tests.comparisons import big, compared, metric, no_baseline, typical, unchanged
from tests.fakes import FakeComment, FakeComparer, FakeVcsHost, FakeVcsHostFactory

GITHUB = ForgeSettings(forge="github", repo="o/r", number=7, token="ghp_secret")


def service(
    comparison: Comparison | None = None, host: FakeVcsHost | None = None
) -> tuple[CiReportService, FakeComparer, FakeVcsHostFactory]:
    comparer = FakeComparer(comparison or typical())
    factory = FakeVcsHostFactory(host)
    return (
        CiReportService(comparer=comparer, renderer=MarkdownReportRenderer(),
                        vcs_host_factory=factory),
        comparer,
        factory,
    )


# --- targets -----------------------------------------------------------------------------------


def test_without_targets_the_body_is_returned_for_printing(tmp_path: Path):
    svc, comparer, factory = service()
    outcome = svc.report(CiReportRequest(results_dir=tmp_path / "r",
                                         baseline_dir=tmp_path / "b",
                                         thresholds={"ttft_ms.p99": 10.0}))
    assert outcome.printed and outcome.written == ()
    assert outcome.body.startswith("**2 regressions**")
    assert outcome.body.endswith(report_marker("default"))
    assert comparer.calls == [(tmp_path / "r", tmp_path / "b", {"ttft_ms.p99": 10.0})]
    assert factory.calls == [] and outcome.comment_url is None
    assert outcome.regressions == 2


def test_output_and_json_files(tmp_path: Path):
    svc, _, _ = service()
    out, data = tmp_path / "deep" / "report.md", tmp_path / "comparison.json"
    outcome = svc.report(CiReportRequest(results_dir=tmp_path, output=out, json_output=data,
                                         report_id="job-a"))
    assert not outcome.printed and outcome.written == (out, data)
    assert out.read_text() == outcome.body
    assert out.read_text().endswith("<!-- kitt-report:job-a -->")
    decoded = msgspec.json.decode(data.read_bytes(), type=Comparison)
    assert decoded == typical()
    assert [p.name for p in tmp_path.rglob(".*.tmp")] == []


def test_the_step_summary_gets_the_report_appended(tmp_path: Path):
    summary = tmp_path / "step_summary.md"
    summary.write_text("## earlier step\n")
    svc, _, _ = service()
    outcome = svc.report(CiReportRequest(results_dir=tmp_path, step_summary=summary))
    text = summary.read_text()
    assert text.startswith("## earlier step\n**2 regressions**")
    assert "kitt-report" not in text
    assert outcome.printed  # a step summary is not a report target: stdout still gets it


def test_an_unwritable_output_is_an_error_that_names_the_file(tmp_path: Path):
    (tmp_path / "file").write_text("")
    svc, _, _ = service()
    with pytest.raises(KittError, match=r"cannot write .*file/report\.md: ") as info:
        svc.report(CiReportRequest(results_dir=tmp_path, output=tmp_path / "file" / "report.md"))
    assert exit_code_for_error(info.value) == ExitCode.FAILED


def test_missing_current_results_fail_before_anything_is_written(tmp_path: Path):
    from tests.fakes import FakeResultStore

    comparer = FakeComparer(typical(), store=FakeResultStore())
    svc = CiReportService(comparer=comparer, renderer=MarkdownReportRenderer(),
                          vcs_host_factory=FakeVcsHostFactory())
    with pytest.raises(ResultFileError):
        svc.report(CiReportRequest(results_dir=tmp_path / "r", output=tmp_path / "x.md"))
    assert not (tmp_path / "x.md").exists()


# --- the sticky comment ------------------------------------------------------------------------


def test_first_run_creates_the_comment_second_run_updates_it(tmp_path: Path):
    host = FakeVcsHost()
    svc, _, factory = service(typical(), host)
    first = svc.report(CiReportRequest(results_dir=tmp_path, forge=GITHUB, report_id="a100"))
    assert first.comment_action == "created" and first.comment_url
    assert factory.calls == [{"forge": "github", "api_url": None, "token": "ghp_secret",
                              "repo": "o/r", "number": 7, "job_token": False}]
    assert host.closed

    svc2, _, _ = service(unchanged(), host)
    second = svc2.report(CiReportRequest(results_dir=tmp_path, forge=GITHUB, report_id="a100"))
    assert second.comment_action == "updated" and second.comment_url == first.comment_url
    [mine] = host.mine()
    assert mine.body.startswith("**No regressions**")
    assert mine.body.endswith("<!-- kitt-report:a100 -->")


def test_another_users_comment_with_the_marker_is_left_alone(tmp_path: Path):
    host = FakeVcsHost()
    quoted = host.add(f"quoting kitt:\n{report_marker('a100')}", author="someone-else")
    svc, _, _ = service(typical(), host)
    outcome = svc.report(CiReportRequest(results_dir=tmp_path, forge=GITHUB, report_id="a100"))
    assert outcome.comment_action == "created"
    assert quoted.body.startswith("quoting kitt:") and len(host.mine()) == 1


def test_matrix_jobs_keep_their_own_comments(tmp_path: Path):
    host = FakeVcsHost()
    for job in ("a100", "h100", "a100"):
        svc, _, _ = service(typical(), host)
        svc.report(CiReportRequest(results_dir=tmp_path, forge=GITHUB, report_id=job))
    assert len(host.mine()) == 2


class _DeletedMeanwhile(FakeVcsHost):
    """Someone deletes the comment between kitt finding it and updating it."""

    def find_comment(self, marker: str) -> FakeComment | None:
        found = super().find_comment(marker)
        if found is not None:
            self.delete(found.id)
        return found


def test_a_comment_deleted_meanwhile_is_posted_again(tmp_path: Path):
    host = _DeletedMeanwhile()
    old = host.add(f"old report\n{report_marker('default')}")
    svc, _, _ = service(typical(), host)
    outcome = svc.report(CiReportRequest(results_dir=tmp_path, forge=GITHUB))
    assert outcome.comment_action == "recreated"
    [mine] = host.mine()
    assert mine.id != old.id and mine.body.startswith("**2 regressions**")


def test_the_comment_fits_the_forge_limit_while_the_file_holds_everything(tmp_path: Path):
    host = FakeVcsHost(max_body_chars=20_000)
    svc, _, _ = service(big(), host)
    out = tmp_path / "report.md"
    outcome = svc.report(CiReportRequest(results_dir=tmp_path, forge=GITHUB, output=out))
    [mine] = host.mine()
    assert len(mine.body) <= 20_000 and "shortened" in mine.body
    assert out.read_text() == outcome.body and len(outcome.body) > 20_000
    assert "shortened" not in outcome.body


class _Broken(FakeVcsHost):
    def find_comment(self, marker: str) -> FakeComment | None:
        raise ForgeError("GitHub: GET /repos/o/r/issues/7/comments answered 503", forge="GitHub")


def test_local_files_are_written_before_posting_and_the_host_is_closed_on_error(tmp_path: Path):
    host = _Broken()
    svc, _, _ = service(typical(), host)
    out = tmp_path / "report.md"
    with pytest.raises(ForgeError):
        svc.report(CiReportRequest(results_dir=tmp_path, forge=GITHUB, output=out))
    assert out.exists() and host.closed


# --- gating (decided in kitt/cli/exit.py) --------------------------------------------------------

MISMATCH = "hardware fingerprint hw-1 (baseline) ≠ hw-2 (current)"


def mismatched(regression: bool) -> Comparison:
    verdict = "regression" if regression else "unchanged"
    return compared([metric("chat", "ttft_ms.p50", verdict, 20.0, 26.0)], mismatches=[MISMATCH])


@pytest.mark.parametrize(
    ("comparison", "fail_on_regression", "allow_mismatch", "code", "reason"),
    [
        (typical(), False, False, ExitCode.OK, None),
        (typical(), True, False, ExitCode.FAILED, "2 regressions (--fail-on-regression): "),
        (unchanged(), True, False, ExitCode.OK, None),
        (no_baseline(), True, False, ExitCode.OK, None),
        (mismatched(False), False, False, ExitCode.OK, None),
        (mismatched(False), True, False, ExitCode.FAILED, "gating refused"),
        (mismatched(True), True, False, ExitCode.FAILED, "gating refused"),
        (mismatched(False), True, True, ExitCode.OK, None),
        (mismatched(True), True, True, ExitCode.FAILED, "1 regression (--fail-on-regression)"),
    ],
)
def test_gating_matrix(comparison, fail_on_regression, allow_mismatch, code, reason):
    gate = gate_report(comparison, fail_on_regression=fail_on_regression,
                       allow_mismatch=allow_mismatch)
    assert gate.code == code
    if reason is None:
        assert gate.reason is None
    else:
        assert gate.reason is not None and gate.reason.startswith(reason)


def test_gate_messages_name_the_mismatch_and_the_regressed_metrics():
    refused = gate_report(mismatched(True), fail_on_regression=True, allow_mismatch=False)
    assert MISMATCH in str(refused.reason) and "--allow-mismatch" in str(refused.reason)
    failed = gate_report(typical(), fail_on_regression=True, allow_mismatch=False)
    assert "chat_short ttft_ms.p50 +30.0%" in str(failed.reason)
    assert "long_context ttft_ms.p50 +30.0%" in str(failed.reason)


# --- where to post: flags, then the CI environment ----------------------------------------------

GHA_PR = {
    "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "octo/kitt", "GITHUB_REF": "refs/pull/42/merge",
    "GITHUB_API_URL": "https://ghe.example/api/v3", "GITHUB_TOKEN": "ghp_env",
}  # fmt: skip
GITLAB_MR = {
    "GITLAB_CI": "true", "CI_PROJECT_PATH": "group/proj", "CI_MERGE_REQUEST_IID": "9",
    "CI_API_V4_URL": "https://gitlab.example/api/v4", "CI_JOB_TOKEN": "SECRET-job",
}  # fmt: skip


def resolve(env: dict[str, str], **options: object) -> ForgeSettings | None:
    return resolve_forge(ForgeOptions(**options), env, detect_ci_target(env))  # type: ignore[arg-type]


def test_without_forge_options_nothing_is_posted_even_with_a_token_in_the_environment():
    assert resolve(GHA_PR) is None


def test_in_a_github_pull_request_one_option_is_enough():
    settings = resolve(GHA_PR, forge="github")
    assert settings == ForgeSettings(forge="github", repo="octo/kitt", number=42,
                                     token="ghp_env", api_url="https://ghe.example/api/v3")


def test_explicit_options_win_over_the_environment():
    settings = resolve(GHA_PR, repo="o/r", number=7, api_url="https://api.github.com",
                       github_token="ghp_flag")
    assert settings == ForgeSettings(forge="github", repo="o/r", number=7, token="ghp_flag",
                                     api_url="https://api.github.com")


def test_gitlab_merge_request_pipeline_with_the_job_token():
    settings = resolve(GITLAB_MR, forge="gitlab")
    assert settings == ForgeSettings(forge="gitlab", repo="group/proj", number=9,
                                     token="SECRET-job",
                                     api_url="https://gitlab.example/api/v4", job_token=True)
    preferred = resolve({**GITLAB_MR, "GITLAB_TOKEN": "glpat"}, forge="gitlab")
    assert preferred is not None and (preferred.token, preferred.job_token) == ("glpat", False)


def test_gitea_actions():
    env = {"GITEA_ACTIONS": "true", "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "o/r",
           "GITHUB_REF": "refs/pull/3/head", "GITHUB_SERVER_URL": "https://gitea.example",
           "GITEA_TOKEN": "tea"}
    assert resolve(env, token="t") == ForgeSettings(
        forge="gitea", repo="o/r", number=3, token="t", api_url="https://gitea.example/api/v1")


def test_outside_ci_the_forge_defaults_to_github():
    settings = resolve({"GITHUB_TOKEN": "ghp_env"}, repo="o/r", number=1)
    assert settings is not None and settings.forge == "github" and settings.api_url is None


@pytest.mark.parametrize(
    ("env", "options", "expected"),
    [
        ({}, {"forge": "github"}, "posting the report to GitHub needs the repository (pass "
         "--repo OWNER/NAME), the pull request number (pass --pr N; found automatically in "
         "pull_request workflows) and a token (pass --github-token TOKEN or --token TOKEN, or "
         "set GITHUB_TOKEN)"),
        ({"GITHUB_TOKEN": "SECRET-x"}, {"repo": "o/r"},
         "GitHub needs the pull request number (pass --pr N"),
        ({}, {"repo": "o/r", "number": 1}, "GitHub needs a token (pass --github-token TOKEN or "
         "--token TOKEN, or set GITHUB_TOKEN)"),
        ({}, {"forge": "gitlab", "repo": "g/p", "number": 1}, "GitLab needs a token (pass "
         "--token TOKEN, or set GITLAB_TOKEN or CI_JOB_TOKEN)"),
        ({}, {"forge": "gitlab", "token": "SECRET-t"}, "GitLab needs the project (pass --repo "
         "GROUP/PROJECT or the numeric project ID) and the merge request IID (pass --pr IID"),
        ({}, {"forge": "gitea", "repo": "o/r", "number": 1, "token": "SECRET-t"},
         "Gitea needs the API URL (pass --api-url https://HOST/api/v1)"),
        ({}, {"forge": "gitlab", "github_token": "SECRET-t"}, "--github-token is for GitHub: with "
         "--forge gitlab, pass --token or set GITLAB_TOKEN or CI_JOB_TOKEN"),
        ({}, {"token": "SECRET-a", "github_token": "SECRET-b"}, "pass the token once"),
        ({"GITHUB_TOKEN": "SECRET-x"}, {"repo": "just-a-name", "number": 1}, "--repo must be "
         "OWNER/NAME"),
        # A GitLab pipeline's project and MR are no use when posting to GitHub.
        (GITLAB_MR, {"forge": "github", "token": "SECRET-t"}, "GitHub needs the repository"),
    ],
)
def test_missing_pieces_are_named_with_how_to_pass_them(env, options, expected):
    with pytest.raises(UsageError) as info:
        resolve(env, **options)
    assert expected in str(info.value)
    assert "SECRET" not in str(info.value) and "ghp_" not in str(info.value)


def test_tokens_never_show_in_a_repr():
    options = ForgeOptions(token="ghp_secret1", github_token="ghp_secret2")
    assert "ghp_secret" not in repr(options) and "ghp_secret" not in repr(GITHUB)


def test_the_pull_request_number_of_other_events_comes_from_the_event_payload(tmp_path: Path):
    event = tmp_path / "event.json"
    event.write_text('{"workflow_run": {"pull_requests": [{"number": 31}]}}')
    env = {**GHA_PR, "GITHUB_REF": "refs/heads/main", "GITHUB_EVENT_PATH": str(event)}
    settings = resolve(env, forge="github")
    assert settings is not None and settings.number == 31
    unreadable = {**env, "GITHUB_EVENT_PATH": str(tmp_path / "missing.json")}
    with pytest.raises(UsageError, match="pull request number"):
        resolve(unreadable, forge="github")
