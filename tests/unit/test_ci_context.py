from __future__ import annotations

import pytest

from kitt.domain.ci import (
    ForgeTarget,
    ci_context,
    default_report_id,
    detect_forge,
    pr_number_from_event,
)
from kitt.domain.report import normalize_report_id, report_id_problem


def test_github_actions_pull_request():
    ctx = ci_context({
        "GITHUB_ACTIONS": "true", "GITHUB_SHA": "abc123", "GITHUB_REF": "refs/pull/42/merge",
        "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "o/r",
        "GITHUB_RUN_ID": "7", "GITHUB_TOKEN": "secret-token",
    })
    assert ctx is not None
    assert (ctx.provider, ctx.commit_sha, ctx.pull_request) == ("github", "abc123", "42")
    assert ctx.run_url == "https://github.com/o/r/actions/runs/7"
    assert "secret-token" not in repr(ctx)


def test_gitlab_merge_request():
    ctx = ci_context({"GITLAB_CI": "true", "CI_COMMIT_SHA": "def", "CI_MERGE_REQUEST_IID": "9",
                      "CI_JOB_URL": "https://gitlab.example/j/1", "CI_JOB_TOKEN": "t"})
    assert ctx is not None
    assert (ctx.provider, ctx.pull_request, ctx.run_url) == (
        "gitlab", "9", "https://gitlab.example/j/1")


def test_outside_ci():
    assert ci_context({"HOME": "/root"}) is None


# --- where the report goes: detect_forge, default_report_id ---------------------------------

GITHUB_PR = {
    "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/widgets",
    "GITHUB_REF": "refs/pull/42/merge",
    "GITHUB_API_URL": "https://ghe.example/api/v3", "GITHUB_SERVER_URL": "https://ghe.example",
    "GITHUB_WORKFLOW": "Benchmarks", "GITHUB_JOB": "bench", "GITHUB_RUN_ID": "123",
    "GITHUB_RUN_ATTEMPT": "1", "GITHUB_TOKEN": "ghs_secret",
}


def test_detect_github_pull_request():
    target = detect_forge(GITHUB_PR)
    assert target == ForgeTarget(forge="github", api_url="https://ghe.example/api/v3",
                                 repo="acme/widgets", number=42, token_env="GITHUB_TOKEN")
    assert "ghs_secret" not in repr(target)
    public = detect_forge({**GITHUB_PR, "GITHUB_API_URL": ""})
    assert public is not None and public.api_url == "https://api.github.com"


def test_detect_github_push_has_no_number():
    target = detect_forge({**GITHUB_PR, "GITHUB_REF": "refs/heads/main"})
    assert target is not None and target.number is None


def test_detect_gitea_and_forgejo_before_github():
    gitea = {"GITHUB_ACTIONS": "true", "GITEA_ACTIONS": "true", "GITHUB_REPOSITORY": "o/r",
             "GITHUB_REF": "refs/pull/3/head", "GITHUB_SERVER_URL": "https://gitea.example/",
             "GITEA_TOKEN": "t"}
    assert detect_forge(gitea) == ForgeTarget(
        forge="gitea", api_url="https://gitea.example/api/v1", repo="o/r", number=3,
        token_env="GITEA_TOKEN")
    forgejo = {**gitea, "GITEA_ACTIONS": "", "FORGEJO_ACTIONS": "true", "GITEA_TOKEN": "",
               "GITHUB_API_URL": "https://code.example/api/v1", "FORGEJO_TOKEN": "t"}
    target = detect_forge(forgejo)
    assert target is not None and target.forge == "gitea"
    assert (target.api_url, target.token_env) == ("https://code.example/api/v1", "FORGEJO_TOKEN")


def test_detect_gitlab_merge_request():
    env = {"GITLAB_CI": "true", "CI_API_V4_URL": "https://gitlab.example/api/v4",
           "CI_PROJECT_PATH": "fork/proj", "CI_MERGE_REQUEST_PROJECT_PATH": "group/sub/proj",
           "CI_MERGE_REQUEST_IID": "17", "CI_JOB_TOKEN": "job-secret"}
    target = detect_forge(env)
    assert target == ForgeTarget(forge="gitlab", api_url="https://gitlab.example/api/v4",
                                 repo="group/sub/proj", number=17, token_env="CI_JOB_TOKEN")
    assert target.job_token and "job-secret" not in repr(target)
    with_pat = detect_forge({**env, "GITLAB_TOKEN": "glpat"})
    assert with_pat is not None and with_pat.token_env == "GITLAB_TOKEN" and not with_pat.job_token
    branch = detect_forge({"GITLAB_CI": "true", "CI_PROJECT_PATH": "g/p",
                           "CI_SERVER_URL": "https://gl.example"})
    assert branch == ForgeTarget(forge="gitlab", api_url="https://gl.example/api/v4", repo="g/p",
                                 number=None, token_env="GITLAB_TOKEN")


def test_detect_nothing_outside_ci_or_without_a_repository():
    assert detect_forge({"HOME": "/root"}) is None
    assert detect_forge({"GITHUB_ACTIONS": "true"}) is None
    assert detect_forge({"GITEA_ACTIONS": "true", "GITHUB_REPOSITORY": "o/r"}) is None


def test_pr_number_from_event_payloads():
    assert pr_number_from_event({"pull_request": {"number": 5}}) == 5
    assert pr_number_from_event({"issue": {"number": 6, "pull_request": {"url": "u"}}}) == 6
    assert pr_number_from_event({"issue": {"number": 6}}) is None  # a plain issue
    assert pr_number_from_event({"workflow_run": {"pull_requests": [{"number": 7}]}}) == 7
    assert pr_number_from_event({"workflow_run": {"pull_requests": []}}) is None  # from a fork
    assert pr_number_from_event({}) is None


def test_default_report_id_is_stable_across_reruns_and_apart_across_jobs():
    first = default_report_id(GITHUB_PR)
    assert first == "Benchmarks/bench"
    assert default_report_id({**GITHUB_PR, "GITHUB_RUN_ID": "999", "GITHUB_RUN_ATTEMPT": "2",
                              "GITHUB_REF": "refs/pull/43/merge"}) == first
    assert default_report_id({**GITHUB_PR, "GITHUB_JOB": "bench-gpu"}) != first
    assert default_report_id({**GITHUB_PR, "GITHUB_WORKFLOW": "Nightly"}) != first


def test_default_report_id_keeps_matrix_legs_apart():
    leg_a = default_report_id({**GITHUB_PR, "KITT_MATRIX": '{"engine": "vllm", "gpu": "a100"}'})
    leg_a_again = default_report_id({**GITHUB_PR,
                                     "KITT_MATRIX": '{"gpu":"a100","engine":"vllm"}'})
    leg_b = default_report_id({**GITHUB_PR, "KITT_MATRIX": '{"engine": "sglang", "gpu": "a100"}'})
    assert leg_a == leg_a_again and leg_a != leg_b
    assert leg_a.startswith("Benchmarks/bench.")
    gitlab = {"GITLAB_CI": "true", "CI_JOB_ID": "1"}
    one = default_report_id({**gitlab, "CI_JOB_NAME": "bench: [vllm, a100]"})
    two = default_report_id({**gitlab, "CI_JOB_NAME": "bench: [sglang, a100]"})
    assert one.startswith("bench-vllm-a100.") and two.startswith("bench-sglang-a100.")
    assert default_report_id({**gitlab, "CI_JOB_NAME": "bench", "CI_JOB_ID": "2"}) == "bench"
    assert default_report_id({}) == "default"


@pytest.mark.parametrize("env", [
    GITHUB_PR,
    {**GITHUB_PR, "GITHUB_WORKFLOW": ".github/workflows/bench.yml", "KITT_MATRIX": "not json"},
    {**GITHUB_PR, "GITHUB_WORKFLOW": "x" * 39 + " --> <b>", "GITHUB_JOB": "-" * 60},
    {"GITLAB_CI": "true", "CI_JOB_NAME": "bench: [vllm, a100] -- <!-- -->" * 5},
    {"GITLAB_CI": "true", "CI_JOB_NAME": "[]"},
])
def test_default_report_ids_are_valid_marker_ids(env):
    report_id = default_report_id(env)
    assert report_id_problem(report_id) is None, report_id
    assert report_id == normalize_report_id(report_id)
