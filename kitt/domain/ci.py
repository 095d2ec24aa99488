"""Which CI run produced a result, and where its report goes, read from the CI's environment
variables. Pure: the caller passes the environment; nothing here reads a token's value."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

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


Forge = Literal["github", "gitlab", "gitea"]


class ForgeTarget(msgspec.Struct, frozen=True, kw_only=True):
    """The pull/merge request a CI job would report on, as its environment tells.

    `repo` is OWNER/NAME (GitHub, Gitea) or the project path (GitLab). `number` is the pull
    request number (GitLab: the merge request IID), None when the job does not run for one
    (a push, a schedule, a `workflow_run` whose number must come from elsewhere). `token_env`
    is the NAME of the environment variable holding the token: the token itself never enters
    the domain.
    """

    forge: Forge
    api_url: str
    repo: str
    number: int | None
    token_env: str

    @property
    def job_token(self) -> bool:
        """GitLab's CI_JOB_TOKEN, which goes in a JOB-TOKEN header (and cannot post notes on
        gitlab.com)."""
        return self.token_env == "CI_JOB_TOKEN"


_PULL_REF = re.compile(r"refs/pull/(\d+)/")


def _actions(env: Mapping[str, str]) -> Forge | None:
    # Gitea and Forgejo runners set GITHUB_ACTIONS=true too, so they are asked first.
    if env.get("GITEA_ACTIONS") == "true" or env.get("FORGEJO_ACTIONS") == "true":
        return "gitea"
    return "github" if env.get("GITHUB_ACTIONS") == "true" else None


def _first_set(env: Mapping[str, str], *names: str) -> str:
    """The first of `names` that is set, else the first (for the "set X" message)."""
    return next((name for name in names if env.get(name)), names[0])


def detect_forge(env: Mapping[str, str]) -> ForgeTarget | None:
    """Where this CI job's report goes; None outside GitHub Actions, Gitea/Forgejo Actions and
    GitLab CI, or when the job's repository is not named.

    - GitHub Actions: API GITHUB_API_URL (GitHub Enterprise included), else api.github.com;
      repo GITHUB_REPOSITORY; number from GITHUB_REF `refs/pull/N/merge`; token GITHUB_TOKEN.
      (The event payload at GITHUB_EVENT_PATH is a file: see `pr_number_from_event`.)
    - Gitea/Forgejo Actions (GITEA_ACTIONS or FORGEJO_ACTIONS): API GITHUB_API_URL, which their
      runners set to SERVER/api/v1, else GITHUB_SERVER_URL + /api/v1; number from GITHUB_REF
      `refs/pull/N/head`; token GITEA_TOKEN, else FORGEJO_TOKEN, else GITHUB_TOKEN (whichever
      is set).
    - GitLab CI: API CI_API_V4_URL, else CI_SERVER_URL + /api/v4; project
      CI_MERGE_REQUEST_PROJECT_PATH (the project the MR belongs to, also for MRs from forks),
      else CI_PROJECT_PATH; number CI_MERGE_REQUEST_IID; token GITLAB_TOKEN, else CI_JOB_TOKEN.
    """
    forge = _actions(env)
    if forge is not None:
        repo = env.get("GITHUB_REPOSITORY")
        if not repo:
            return None
        match = _PULL_REF.match(env.get("GITHUB_REF", "") + "/")
        number = int(match.group(1)) if match else None
        if forge == "github":
            api_url = env.get("GITHUB_API_URL") or "https://api.github.com"
            token_env = "GITHUB_TOKEN"
        else:
            server = env.get("GITHUB_SERVER_URL", "").rstrip("/")
            api_url = env.get("GITHUB_API_URL") or (f"{server}/api/v1" if server else "")
            if not api_url:
                return None
            token_env = _first_set(env, "GITEA_TOKEN", "FORGEJO_TOKEN", "GITHUB_TOKEN")
        return ForgeTarget(forge=forge, api_url=api_url.rstrip("/"), repo=repo, number=number,
                           token_env=token_env)
    if env.get("GITLAB_CI") == "true":
        project = env.get("CI_MERGE_REQUEST_PROJECT_PATH") or env.get("CI_PROJECT_PATH")
        if not project:
            return None
        server = env.get("CI_SERVER_URL", "https://gitlab.com").rstrip("/")
        iid = env.get("CI_MERGE_REQUEST_IID", "")
        return ForgeTarget(
            forge="gitlab",
            api_url=(env.get("CI_API_V4_URL") or f"{server}/api/v4").rstrip("/"),
            repo=project,
            number=int(iid) if iid.isdigit() else None,
            token_env=_first_set(env, "GITLAB_TOKEN", "CI_JOB_TOKEN"),
        )
    return None


def pr_number_from_event(payload: Mapping[str, Any]) -> int | None:
    """The pull request number in a GitHub/Gitea event payload (the JSON at GITHUB_EVENT_PATH),
    for events whose GITHUB_REF does not name it: pull_request_target, issue_comment on a pull
    request, workflow_run. A workflow_run from a fork lists no pull requests (GitHub leaves
    `pull_requests` empty then): pass the number along in the results (config.json's
    ci.pull_request) or with --pr."""
    def number(value: Any) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    pull = payload.get("pull_request")
    if isinstance(pull, Mapping) and number(pull.get("number")) is not None:
        return number(pull.get("number"))
    issue = payload.get("issue")
    if isinstance(issue, Mapping) and issue.get("pull_request"):
        return number(issue.get("number"))
    run = payload.get("workflow_run")
    if isinstance(run, Mapping):
        pulls = run.get("pull_requests")
        if isinstance(pulls, list) and pulls and isinstance(pulls[0], Mapping):
            return number(pulls[0].get("number"))
    return None


def _slug(text: str, limit: int) -> str:
    # What report IDs allow (kitt.domain.report): no spaces, brackets or commas, never `--`,
    # no `-` at either end.
    return re.sub(r"[^A-Za-z0-9._]+", "-", text)[:limit].strip("-.")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def default_report_id(env: Mapping[str, str]) -> str:
    """The report ID when --report-id is not given: one sticky comment per CI job, the same
    across re-runs of that job (no run ids or attempt numbers go in), different between jobs.

    - GitHub/Gitea/Forgejo Actions: `WORKFLOW/JOB` (GITHUB_WORKFLOW, GITHUB_JOB). Matrix legs
      share a job id and the runner exports no matrix values, so a workflow whose legs each
      post a report sets `KITT_MATRIX: ${{ toJSON(matrix) }}`; a digest of it is appended
      (`WORKFLOW/JOB.1a2b3c4d`; key order does not matter). A single report job after the
      matrix needs nothing.
    - GitLab CI: CI_JOB_NAME, which already holds the `parallel:matrix` values
      ("bench: [vllm, a100]"); when it has characters an ID cannot hold, the slug gets a digest
      of the exact name so that distinct names stay distinct.
    - Elsewhere: "default".
    The result is at most 100 characters of letters, digits and `. _ / -`.
    """
    if _actions(env) is not None and (env.get("GITHUB_WORKFLOW") or env.get("GITHUB_JOB")):
        workflow, job = env.get("GITHUB_WORKFLOW", ""), env.get("GITHUB_JOB", "")
        name = "/".join(part for part in (_slug(workflow, 40), _slug(job, 40)) if part)
        matrix = env.get("KITT_MATRIX", "").strip()
        if matrix:
            # Not JSON: the text itself is the identity.
            with contextlib.suppress(ValueError):
                matrix = json.dumps(json.loads(matrix), sort_keys=True, separators=(",", ":"))
            name = f"{name}.{_digest(matrix)}"
        return name or "default"
    job_name = env.get("CI_JOB_NAME", "") if env.get("GITLAB_CI") == "true" else ""
    if job_name:
        slug = _slug(job_name, 80)
        return slug if slug == job_name else f"{slug}.{_digest(job_name)}".lstrip(".")
    return "default"
