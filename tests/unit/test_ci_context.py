from __future__ import annotations

from kitt.domain.ci import ci_context


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
