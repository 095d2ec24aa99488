"""Which CI run produced a result, read from the CI's environment variables."""

from __future__ import annotations

from collections.abc import Mapping

from kitt.domain.results import CiContext


def ci_context(env: Mapping[str, str]) -> CiContext | None:
    """The commit, ref, run URL and pull request of GitHub Actions, Gitea Actions or GitLab CI;
    None outside CI. Only these identifiers are read: never tokens or other variables."""
    if env.get("GITHUB_ACTIONS") == "true" or env.get("GITEA_ACTIONS") == "true":
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        repo, run_id = env.get("GITHUB_REPOSITORY"), env.get("GITHUB_RUN_ID")
        ref = env.get("GITHUB_REF")
        pr = None
        if ref and ref.startswith("refs/pull/"):
            pr = ref.split("/")[2]
        return CiContext(
            provider="gitea" if env.get("GITEA_ACTIONS") == "true" else "github",
            commit_sha=env.get("GITHUB_SHA"),
            ref=ref,
            run_url=f"{server}/{repo}/actions/runs/{run_id}" if repo and run_id else None,
            pull_request=pr,
        )
    if env.get("GITLAB_CI") == "true":
        return CiContext(
            provider="gitlab",
            commit_sha=env.get("CI_COMMIT_SHA"),
            ref=env.get("CI_COMMIT_REF_NAME"),
            run_url=env.get("CI_JOB_URL"),
            pull_request=env.get("CI_MERGE_REQUEST_IID"),
        )
    return None
