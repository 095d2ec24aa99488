"""GitLab merge request notes, through the REST API v4.

Notes are listed with GET /projects/:id/merge_requests/:iid/notes (100 a page, oldest first,
following X-Next-Page), created with POST on the same path and updated with PUT .../notes/:id.
The project is its numeric ID or its full path URL-encoded (group/sub/proj ->
group%2Fsub%2Fproj). kitt's own notes are those whose author id is GET /user's id; system notes
("added 1 commit") are never kitt's.

Authentication: a personal, project or group access token with the `api` scope, sent as
PRIVATE-TOKEN. The CI job token (CI_JOB_TOKEN, sent as JOB-TOKEN) reaches only a few endpoints,
and neither /user nor merge request notes are among them on gitlab.com: kitt explains that
when the job token is refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

import httpx
import msgspec

from adapters.forge.http import ForgeComment, ForgeHttp, Page, RetryPolicy

DEFAULT_API_URL = "https://gitlab.com/api/v4"
MAX_BODY_CHARS = 1_000_000  # "Note {:note=>["is too long (maximum is 1000000 characters)"]}"

_JOB_TOKEN_ADVICE = (
    "CI_JOB_TOKEN cannot read the current user or post merge request notes on gitlab.com. "
    "Create a project access token (or a personal access token) with the `api` scope and the "
    "Reporter role or higher, store it as a masked CI/CD variable named GITLAB_TOKEN, and run "
    "kitt with it"
)


def _advice_for(job_token: bool) -> Callable[[int, str], str | None]:
    def advice(status: int, reason: str) -> str | None:
        if job_token and status in (401, 403):
            return _JOB_TOKEN_ADVICE
        if status == 401:
            return ("the token was rejected (invalid, expired or revoked): check GITLAB_TOKEN; "
                    "it needs the `api` scope")
        if status == 403:
            return ("the token may not write notes on this merge request: it needs the `api` "
                    "scope and at least the Reporter role in the project")
        if status == 404:
            return ("the project or merge request was not found, or the token cannot see it: "
                    "check --repo (the project path, e.g. group/sub/project), --pr (the merge "
                    "request IID) and --api-url (https://HOST/api/v4)")
        if status in (400, 413, 422):
            return (f"GitLab rejected the note (at most {MAX_BODY_CHARS} characters; report "
                    "this as a kitt bug if the body was shorter)")
        return None

    return advice


class _Author(msgspec.Struct):
    id: int
    username: str = ""


class _Note(msgspec.Struct):
    id: int
    body: str | None = None
    author: _Author | None = None
    system: bool = False


class GitLabHost:
    """One merge request's notes on GitLab (VcsHost). `project` is the project's full path
    (group/sub/project) or numeric ID; `api_url` is https://HOST/api/v4. With `job_token`,
    `token` is CI_JOB_TOKEN and goes in the JOB-TOKEN header."""

    def __init__(
        self,
        *,
        token: str,
        project: str,
        mr_iid: int,
        api_url: str = DEFAULT_API_URL,
        job_token: bool = False,
        client: httpx.Client | None = None,
        sleep: Callable[[float], object] = time.sleep,
        max_body_chars: int = MAX_BODY_CHARS,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.project, self.mr_iid = project, mr_iid
        self._max_body_chars = max_body_chars
        self._notes = f"/projects/{quote(project, safe='')}/merge_requests/{mr_iid}/notes"
        self._http = ForgeHttp(
            forge="GitLab", api_url=api_url,
            auth={"JOB-TOKEN" if job_token else "PRIVATE-TOKEN": token}, secrets=[token],
            advice=_advice_for(job_token), client=client, sleep=sleep, policy=policy,
            headers={"Accept": "application/json"},
        )
        web = self._http.api_url.removesuffix("/api/v4")
        # Notes carry no web URL; a project path (not a numeric ID) lets kitt build one.
        self._web_mr = (
            None if project.isdigit() or web == self._http.api_url
            else f"{web}/{project}/-/merge_requests/{mr_iid}"
        )
        self._me: int | None = None

    def __repr__(self) -> str:
        return (f"GitLabHost(project={self.project!r}, mr_iid={self.mr_iid}, "
                f"api_url={self._http.api_url!r})")

    @property
    def max_body_chars(self) -> int:
        return self._max_body_chars

    def close(self) -> None:
        self._http.close()

    def find_comment(self, marker: str) -> ForgeComment | None:
        """The newest note by the token's own user containing `marker`, over all pages."""
        return self._newest_own(lambda body: marker in body)

    def create_comment(self, body: str) -> ForgeComment:
        return self._http.create(
            self._notes, {"body": body}, parse=self._parse,
            already_done=lambda: self._newest_own(lambda b: b == body),
        )

    def update_comment(self, comment_id: str, body: str) -> ForgeComment | None:
        response = self._http.request(
            "PUT", f"{self._notes}/{quote(comment_id, safe='')}", json={"body": body},
            tolerate=(404,),
        )
        return None if response.status_code == 404 else self._parse(response)

    def _comment(self, note_id: int) -> ForgeComment:
        url = None if self._web_mr is None else f"{self._web_mr}#note_{note_id}"
        return ForgeComment(str(note_id), url)

    def _parse(self, response: httpx.Response) -> ForgeComment:
        return self._comment(self._http.decode(response, _Note).id)

    def _identity(self) -> int:
        if self._me is None:
            self._me = self._http.decode(self._http.request("GET", "/user"), _Author).id
        return self._me

    def _newest_own(self, wanted: Callable[[str], bool]) -> ForgeComment | None:
        me = self._identity()
        params: dict[str, str | int] = {"per_page": 100, "sort": "asc", "order_by": "created_at"}

        def follow(response: httpx.Response) -> Page | None:
            # X-Next-Page is empty on the last page. (X-Total-Pages is left out above 10,000
            # notes, so it cannot be the guide.)
            following = response.headers.get("x-next-page", "").strip()
            return (self._notes, {**params, "page": following}) if following else None

        best: _Note | None = None
        for response in self._http.pages(self._notes, {**params, "page": 1}, follow):
            for note in self._http.decode(response, list[_Note]):
                if (note.author is not None and note.author.id == me and not note.system
                        and note.body is not None and wanted(note.body)
                        and (best is None or note.id > best.id)):
                    best = note
        return None if best is None else self._comment(best.id)
