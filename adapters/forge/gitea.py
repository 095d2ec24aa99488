"""Gitea and Forgejo pull request comments, through the API v1.

A pull request's comments are issue comments: GET /repos/{owner}/{repo}/issues/{index}/comments
answers all of them at once (the endpoint is not paged; a Link rel="next" would still be
followed), POST on the same path creates one, PATCH /repos/{owner}/{repo}/issues/comments/{id}
updates it. kitt's own comments are those whose author id is GET /user's id. The token is sent
as `Authorization: token <token>`.

Body limit: Gitea and Forgejo document none (the column is LONGTEXT), but requests pass through
reverse proxies whose default body limit is often 1 MiB (nginx's client_max_body_size). kitt
keeps a comment to 65,536 characters, as on GitHub: even all 4-byte characters, JSON-escaped,
stay under 1 MiB.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

import httpx
import msgspec

from adapters.forge.http import ForgeComment, ForgeHttp, RetryPolicy
from kitt.domain.errors import UsageError

MAX_BODY_CHARS = 65536


def _advice(status: int, reason: str) -> str | None:
    if status == 401:
        return ("the token was rejected (invalid, expired or revoked): check GITEA_TOKEN; it "
                "needs the write:issue and read:user scopes")
    if status == 403:
        return ("the token may not comment on this pull request: it needs the write:issue "
                "scope and write access to the repository (a workflow from a fork gets a "
                "read-only token)")
    if status == 404:
        return ("the repository or pull request was not found, or the token cannot see it: "
                "check --repo, --pr and --api-url (https://HOST/api/v1)")
    if status == 423:
        return "the repository is archived: comments cannot be added or changed"
    return None


class _User(msgspec.Struct):
    id: int
    login: str = ""


class _Comment(msgspec.Struct):
    id: int
    body: str | None = None
    user: _User | None = None
    html_url: str | None = None


class GiteaHost:
    """One pull request's comments on Gitea or Forgejo (VcsHost). `repo` is OWNER/NAME;
    `api_url` is https://HOST/api/v1."""

    def __init__(
        self,
        *,
        token: str,
        repo: str,
        number: int,
        api_url: str,
        client: httpx.Client | None = None,
        sleep: Callable[[float], object] = time.sleep,
        max_body_chars: int = MAX_BODY_CHARS,
        policy: RetryPolicy | None = None,
    ) -> None:
        owner, _, name = repo.partition("/")
        if not owner or not name or "/" in name:
            raise UsageError(f"--repo must be OWNER/NAME for Gitea, got {repo!r}")
        self.repo, self.number = repo, number
        self._max_body_chars = max_body_chars
        self._repo_path = f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"
        self._http = ForgeHttp(
            forge="Gitea", api_url=api_url, auth={"Authorization": f"token {token}"},
            secrets=[token], advice=_advice, client=client, sleep=sleep, policy=policy,
            headers={"Accept": "application/json"},
        )
        self._me: int | None = None

    def __repr__(self) -> str:
        return (f"GiteaHost(repo={self.repo!r}, number={self.number}, "
                f"api_url={self._http.api_url!r})")

    @property
    def max_body_chars(self) -> int:
        return self._max_body_chars

    def close(self) -> None:
        self._http.close()

    def find_comment(self, marker: str) -> ForgeComment | None:
        """The newest comment by the token's own user containing `marker`."""
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
        if response.status_code == 404:
            return None
        # Gitea answers 204, without a body, for a comment that is not a plain comment.
        return self._parse(response) if response.content else ForgeComment(comment_id)

    def _parse(self, response: httpx.Response) -> ForgeComment:
        comment = self._http.decode(response, _Comment)
        return ForgeComment(str(comment.id), comment.html_url)

    def _identity(self) -> int:
        if self._me is None:
            self._me = self._http.decode(self._http.request("GET", "/user"), _User).id
        return self._me

    def _newest_own(self, wanted: Callable[[str], bool]) -> ForgeComment | None:
        me = self._identity()
        best: _Comment | None = None
        for response in self._http.pages(f"{self._repo_path}/issues/{self.number}/comments", None):
            for comment in self._http.decode(response, list[_Comment]):
                if (comment.user is not None and comment.user.id == me
                        and comment.body is not None and wanted(comment.body)
                        and (best is None or comment.id > best.id)):
                    best = comment
        return None if best is None else ForgeComment(str(best.id), best.html_url)
