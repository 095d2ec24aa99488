"""GitHub (and GitHub Enterprise Server) pull request comments, through the REST API.

A pull request's conversation comments are issue comments: listed with
GET /repos/{owner}/{repo}/issues/{number}/comments (100 a page, following Link rel="next"),
created with POST on the same path, updated with PATCH /repos/{owner}/{repo}/issues/comments/{id}.

Whose comments count as kitt's own: GET /user names the token's user, and only comments by
that user id are considered. A GitHub App installation token (the Actions GITHUB_TOKEN is one)
is not a user: /user answers 403. Its comments are written by the app's bot account, so kitt
then takes comments whose author is a Bot named `bot_login` ("github-actions[bot]" for
GITHUB_TOKEN; "<app-slug>[bot]" for another app's token). The app's own name cannot be asked
for: GET /app wants the app's JWT, not an installation token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

import httpx
import msgspec

from adapters.forge.http import ForgeComment, ForgeHttp, RetryPolicy
from kitt.domain.errors import UsageError

DEFAULT_API_URL = "https://api.github.com"
MAX_BODY_CHARS = 65536  # "body is too long (maximum is 65536 characters)"
ACTIONS_BOT_LOGIN = "github-actions[bot]"

_FORK_ADVICE = (
    "the token may not write to this pull request. A pull_request workflow triggered from a "
    "fork gets a read-only GITHUB_TOKEN whatever `permissions:` says. Use the workflow_run "
    "pattern: run the benchmark in the pull_request workflow and upload the results as an "
    "artifact; post the report from a second workflow triggered by `workflow_run` with "
    "`permissions: pull-requests: write`, which downloads that artifact. Otherwise give the job "
    "`permissions: pull-requests: write` (or a token with write access to pull requests)"
)


def _advice(status: int, reason: str) -> str | None:
    if status == 401:
        return ("the token was rejected (invalid, expired or revoked): check GITHUB_TOKEN or "
                "--github-token")
    if status == 403:
        return _FORK_ADVICE
    if status == 404:
        return ("the repository or pull request was not found, or the token cannot see it: "
                "check --repo, --pr and, for GitHub Enterprise, --api-url "
                "(https://HOST/api/v3); a private repository needs a token with access to it")
    if status == 422:
        return (f"GitHub rejected the comment body (at most {MAX_BODY_CHARS} characters; "
                "report this as a kitt bug if the body was shorter)")
    return None


class _User(msgspec.Struct):
    login: str
    id: int
    type: str = "User"


class _Comment(msgspec.Struct):
    id: int
    body: str | None = None
    user: _User | None = None
    html_url: str | None = None


class GitHubHost:
    """One pull request's comments on GitHub (VcsHost). `repo` is OWNER/NAME; `api_url` is
    https://api.github.com or, for GitHub Enterprise Server, https://HOST/api/v3."""

    def __init__(
        self,
        *,
        token: str,
        repo: str,
        number: int,
        api_url: str = DEFAULT_API_URL,
        client: httpx.Client | None = None,
        sleep: Callable[[float], object] = time.sleep,
        max_body_chars: int = MAX_BODY_CHARS,
        bot_login: str = ACTIONS_BOT_LOGIN,
        policy: RetryPolicy | None = None,
    ) -> None:
        owner, _, name = repo.partition("/")
        if not owner or not name or "/" in name:
            raise UsageError(f"--repo must be OWNER/NAME for GitHub, got {repo!r}")
        self.repo, self.number = repo, number
        self._max_body_chars = max_body_chars
        self._bot_login = bot_login
        self._repo_path = f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"
        self._http = ForgeHttp(
            forge="GitHub", api_url=api_url, auth={"Authorization": f"Bearer {token}"},
            secrets=[token], advice=_advice, client=client, sleep=sleep, policy=policy,
            headers={"Accept": "application/vnd.github+json",
                     "X-GitHub-Api-Version": "2022-11-28"},
        )
        # (user id, None) for a user token; (None, bot login) for an installation token.
        self._me: tuple[int | None, str | None] | None = None

    def __repr__(self) -> str:
        return (f"GitHubHost(repo={self.repo!r}, number={self.number}, "
                f"api_url={self._http.api_url!r})")

    @property
    def max_body_chars(self) -> int:
        return self._max_body_chars

    def close(self) -> None:
        self._http.close()

    def find_comment(self, marker: str) -> ForgeComment | None:
        """The newest comment by the token's own user containing `marker`, over all pages."""
        return self._newest_own(lambda body: marker in body)

    def create_comment(self, body: str) -> ForgeComment:
        return self._http.create(
            f"{self._repo_path}/issues/{self.number}/comments", {"body": body},
            parse=self._parse, already_done=lambda: self._newest_own(lambda b: b == body),
        )

    def update_comment(self, comment_id: str, body: str) -> ForgeComment | None:
        response = self._http.request(
            "PATCH", f"{self._repo_path}/issues/comments/{quote(comment_id, safe='')}",
            json={"body": body}, tolerate=(404,),
        )
        return None if response.status_code == 404 else self._parse(response)

    def _parse(self, response: httpx.Response) -> ForgeComment:
        comment = self._http.decode(response, _Comment)
        return ForgeComment(str(comment.id), comment.html_url)

    def _identity(self) -> tuple[int | None, str | None]:
        if self._me is None:
            response = self._http.request("GET", "/user", tolerate=(403,))
            if response.status_code == 403:
                self._me = (None, self._bot_login)  # an installation token: see the module doc
            else:
                self._me = (self._http.decode(response, _User).id, None)
        return self._me

    def _newest_own(self, wanted: Callable[[str], bool]) -> ForgeComment | None:
        user_id, bot_login = self._identity()
        best: _Comment | None = None
        thread = f"{self._repo_path}/issues/{self.number}/comments"
        for response in self._http.pages(thread, {"per_page": 100}):
            for comment in self._http.decode(response, list[_Comment]):
                user = comment.user
                mine = user is not None and (
                    user.id == user_id if user_id is not None
                    else user.login == bot_login and user.type == "Bot"
                )
                if mine and comment.body is not None and wanted(comment.body) and (
                    best is None or comment.id > best.id  # ids grow with time: newest wins
                ):
                    best = comment
        return None if best is None else ForgeComment(str(best.id), best.html_url)
