"""A stateful fake forge on a real socket, speaking GitHub's, GitLab's or Gitea's REST dialect.

For end-to-end tests of the forge adapters and `kitt ci report --api-url`. It keeps users,
tokens and the comments of pull/merge requests, checks authentication, paginates exactly like
the forge it imitates, enforces the comment length limit, and answers scripted faults.

    with FakeForge("github") as forge:             # or "gitlab", "gitea"
        me = forge.add_user("kitt-bot", token="t0ken")
        other = forge.add_user("alice")
        forge.seed_comments(250, other)            # 3 pages of 100 on GitHub
        forge.add_comment(me, "old report\\n<!-- kitt-report:x -->")
        forge.fail_next("GET", r"/comments$", Canned(429, headers={"Retry-After": "1"}))
        ...  # point the adapter (or kitt ci report --api-url) at forge.api_url
        assert [c.body for c in forge.thread() if c.author is me] == ["new report..."]
        forge.requests                              # every request, in order

API URLs: GitHub `http://127.0.0.1:PORT` (like https://api.github.com), GitLab
`http://127.0.0.1:PORT/api/v4`, Gitea `http://127.0.0.1:PORT/api/v1`. The default pull request
is `acme/widgets` #7 (GitLab: project path `acme/widgets`, numeric id 1001, MR IID 7).

Endpoints:
  GitHub  GET /user; GET, POST /repos/O/R/issues/N/comments; PATCH /repos/O/R/issues/comments/ID
  GitLab  GET /user; GET, POST /projects/ID/merge_requests/IID/notes; PUT .../notes/ID
          (ID: the numeric id or the URL-encoded path; an unencoded path is a 404, as on GitLab)
  Gitea   GET /user; GET, POST /repos/O/R/issues/N/comments; PATCH /repos/O/R/issues/comments/ID
Authentication: GitHub `Authorization: Bearer|token T`; GitLab `PRIVATE-TOKEN: T` or
`Authorization: Bearer T` (any `JOB-TOKEN` is refused with 401, as gitlab.com does for these
endpoints); Gitea `Authorization: token|Bearer T`. A GitHub user added with `app=True` is an
installation token's bot: GET /user answers 403 "Resource not accessible by integration".
Only a comment's author may edit it (403 otherwise), so an adapter that picks another user's
comment fails loudly.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlencode

Dialect = Literal["github", "gitlab", "gitea"]
PREFIX: dict[str, str] = {"github": "", "gitlab": "/api/v4", "gitea": "/api/v1"}
# The forges' comment limits: GitHub refuses longer bodies with a 422, GitLab with a 400;
# Gitea has none.
BODY_LIMIT: dict[str, int | None] = {"github": 65536, "gitlab": 1_000_000, "gitea": None}
GITHUB_API_VERSIONS = {"2022-11-28"}
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(eq=False)
class User:
    id: int
    login: str
    token: str | None
    # GitHub: the bot account of a GitHub App (GITHUB_TOKEN's is github-actions[bot]).
    app: bool = False


@dataclass(eq=False)
class Comment:
    id: int
    author: User
    body: str
    repo: str
    number: int
    created_at: str
    updated_at: str
    system: bool = False  # GitLab system notes ("added 1 commit")


@dataclass
class Canned:
    """A scripted answer. With `apply=True` the request is carried out first and its answer
    replaced by this one (GitHub sometimes creates a comment and still answers 502)."""

    status: int
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None
    apply: bool = False


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str  # raw (still URL-encoded), without the query
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any  # decoded JSON, or None
    status: int


class _Reply(Exception):
    """Ends request handling with this status and JSON body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


class FakeForge:
    """One forge's API on 127.0.0.1 (see the module docstring). Thread-safe; start() or use
    as a context manager."""

    def __init__(
        self, dialect: Dialect, *, repo: str = "acme/widgets", number: int = 7,
        project_id: int = 1001,
    ) -> None:
        self.dialect = dialect
        self.repo, self.number, self.project_id = repo, number, project_id
        self.body_limit = BODY_LIMIT[dialect]
        self.threads: set[tuple[str, int]] = {(repo, number)}
        self.requests: list[LoggedRequest] = []
        self._users: list[User] = []
        self._comments: list[Comment] = []
        self._faults: list[tuple[str, re.Pattern[str], deque[Canned]]] = []
        self._ids = 1000
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeForge:
        forge = self

        class Handler(_Handler):
            owner = forge

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeForge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.base_url + PREFIX[self.dialect]

    # --- seeding ---------------------------------------------------------------------------

    def add_user(self, login: str, *, token: str | None = None, app: bool = False) -> User:
        """A user (token None: one that only authors seeded comments)."""
        with self._lock:
            user = User(id=len(self._users) + 1, login=login, token=token, app=app)
            self._users.append(user)
            return user

    def add_thread(self, repo: str, number: int) -> None:
        """Another pull/merge request that exists."""
        with self._lock:
            self.threads.add((repo, number))

    def add_comment(
        self, author: User, body: str, *, repo: str | None = None, number: int | None = None,
        system: bool = False,
    ) -> Comment:
        with self._lock:
            self._ids += 1
            stamp = (_EPOCH + timedelta(seconds=self._ids)).strftime("%Y-%m-%dT%H:%M:%SZ")
            comment = Comment(
                id=self._ids, author=author, body=body, repo=repo or self.repo,
                number=number if number is not None else self.number, created_at=stamp,
                updated_at=stamp, system=system,
            )
            self._comments.append(comment)
            return comment

    def seed_comments(self, count: int, author: User, body: str = "comment {i}") -> list[Comment]:
        """`count` comments by `author`, bodies `body.format(i=...)`."""
        return [self.add_comment(author, body.format(i=i)) for i in range(count)]

    def delete_comment(self, comment_id: int) -> None:
        with self._lock:
            self._comments = [c for c in self._comments if c.id != comment_id]

    # --- faults ----------------------------------------------------------------------------

    def fail_next(self, method: str, path_pattern: str, *responses: Canned) -> None:
        """Answer the next len(responses) requests whose method matches and whose raw path
        (API prefix included) matches the regular expression `path_pattern` (re.search) with
        these responses, in order."""
        with self._lock:
            self._faults.append((method.upper(), re.compile(path_pattern), deque(responses)))

    def pending_faults(self) -> int:
        with self._lock:
            return sum(len(queue) for _, _, queue in self._faults)

    # --- inspection ------------------------------------------------------------------------

    def thread(self, repo: str | None = None, number: int | None = None) -> list[Comment]:
        """The comments of one pull/merge request, oldest first (copies: edit via the API)."""
        repo, number = repo or self.repo, number if number is not None else self.number
        with self._lock:
            return [Comment(**vars(c)) for c in self._comments
                    if (c.repo, c.number) == (repo, number)]

    def requests_to(self, method: str, path_pattern: str = "") -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.requests
                    if r.method == method.upper() and re.search(path_pattern, r.path)]

    # --- the dialects ----------------------------------------------------------------------

    def _fault(self, method: str, path: str) -> Canned | None:
        with self._lock:
            for fault_method, pattern, queue in self._faults:
                if queue and fault_method == method and pattern.search(path):
                    return queue.popleft()
        return None

    def _handle(self, method: str, raw_path: str, query: dict[str, str],
                headers: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        prefix = PREFIX[self.dialect]
        if not raw_path.startswith(prefix):
            raise _Reply(404, self._not_found())
        path = raw_path[len(prefix):]
        with self._lock:
            if self.dialect == "github":
                version = headers.get("x-github-api-version")
                if version is not None and version not in GITHUB_API_VERSIONS:
                    raise _Reply(400, {"message": f"API version '{version}' is not supported.",
                                       "status": "400"})
            user = self._authenticate(headers)
            if self.dialect == "gitlab":
                return self._gitlab(method, path, query, user, body)
            return self._github_like(method, path, query, user, body)

    def _authenticate(self, headers: dict[str, str]) -> User:
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        accepted = {"github": ("bearer", "token"), "gitea": ("token", "bearer"),
                    "gitlab": ("bearer",)}[self.dialect]
        if scheme.lower() not in accepted:
            token = ""
        if self.dialect == "gitlab":
            if "job-token" in headers:
                raise _Reply(401, {"message": "401 Unauthorized"})
            token = headers.get("private-token", token)
        user = next((u for u in self._users if token and u.token == token), None)
        if user is None:
            raise _Reply(401, {
                "github": {"message": "Bad credentials",
                           "documentation_url": "https://docs.github.com/rest", "status": "401"},
                "gitlab": {"message": "401 Unauthorized"},
                "gitea": {"message": "user does not exist [uid: 0, name: ]",
                          "url": f"{self.api_url}/swagger"},
            }[self.dialect])
        return user

    def _not_found(self) -> dict[str, Any]:
        answers: dict[str, dict[str, Any]] = {
            "github": {"message": "Not Found",
                       "documentation_url": "https://docs.github.com/rest", "status": "404"},
            "gitlab": {"message": "404 Not found"},
            "gitea": {"errors": [], "message": "The target couldn't be found.",
                      "url": f"{self.api_url}/swagger"},
        }
        return answers[self.dialect]

    def _body_of(self, body: Any) -> str:
        text = body.get("body") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text:
            if self.dialect == "github":
                raise _Reply(422, {"message": "Invalid request.\n\nNo subschema in \"oneOf\" "
                                              "matched.", "status": "422"})
            raise _Reply(400, {"message": "400 Bad request - body is missing"}
                         if self.dialect == "gitlab" else {"message": "[Body]: Required"})
        if self.body_limit is not None and len(text) > self.body_limit:
            if self.dialect == "github":
                raise _Reply(422, {
                    "message": "Validation Failed",
                    "errors": [{"resource": "IssueComment", "code": "custom", "field": "body",
                                "message": f"body is too long (maximum is {self.body_limit} "
                                           "characters)"}],
                    "documentation_url": "https://docs.github.com/rest/issues/comments"
                                         "#create-an-issue-comment",
                    "status": "422",
                })
            if self.dialect == "gitlab":
                raise _Reply(400, {"message": "Note {:note=>[\"is too long (maximum is "
                                              f"{self.body_limit} characters)\"]}}"})
            raise _Reply(422, {"message": "body is too long", "url": self.api_url})
        return text

    def _edit(self, comment: Comment | None, user: User, body: Any) -> Comment:
        if comment is None:
            raise _Reply(404, self._not_found())
        if comment.author is not user:
            raise _Reply(403, {"message": "Resource not accessible by integration"
                               if self.dialect == "github" else "403 Forbidden"})
        comment.body = self._body_of(body)
        comment.updated_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return comment

    def _github_like(self, method: str, path: str, query: dict[str, str], user: User,
                     body: Any) -> tuple[int, Any, dict[str, str]]:
        if path == "/user" and method == "GET":
            if user.app and self.dialect == "github":
                raise _Reply(403, {
                    "message": "Resource not accessible by integration",
                    "documentation_url": "https://docs.github.com/rest/users/users"
                                         "#get-the-authenticated-user", "status": "403"})
            if self.dialect == "github":
                return 200, {"login": user.login, "id": user.id, "type": "User"}, {}
            return 200, {"id": user.id, "login": user.login, "username": user.login}, {}
        match = re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues/(\d+)/comments", path)
        if match and method in ("GET", "POST"):
            repo, number = f"{unquote(match[1])}/{unquote(match[2])}", int(match[3])
            if (repo, number) not in self.threads:
                raise _Reply(404, self._not_found())
            if method == "POST":
                comment = self.add_comment(user, self._body_of(body), repo=repo, number=number)
                return 201, self._github_json(comment), {}
            comments = [self._github_json(c) for c in self._comments
                        if (c.repo, c.number) == (repo, number)]
            if self.dialect == "gitea":
                return 200, comments, {}  # Gitea: the whole list, not paged
            return self._github_page(path, query, comments)
        match = re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues/comments/(\d+)", path)
        if match and method == "PATCH":
            repo = f"{unquote(match[1])}/{unquote(match[2])}"
            edited = next((c for c in self._comments
                           if c.id == int(match[3]) and c.repo == repo), None)
            return 200, self._github_json(self._edit(edited, user, body)), {}
        raise _Reply(404, self._not_found())

    def _github_page(self, path: str, query: dict[str, str],
                     items: list[Any]) -> tuple[int, Any, dict[str, str]]:
        per_page = min(max(int(query.get("per_page", 30)), 1), 100)
        page = max(int(query.get("page", 1)), 1)
        last = max(1, -(-len(items) // per_page))

        def link(to: int) -> str:
            return f"{self.base_url}{path}?{urlencode({'per_page': per_page, 'page': to})}"

        rels = []
        if page < last:
            rels += [f'<{link(page + 1)}>; rel="next"', f'<{link(last)}>; rel="last"']
        if page > 1:
            rels += [f'<{link(page - 1)}>; rel="prev"', f'<{link(1)}>; rel="first"']
        headers = {"Link": ", ".join(rels)} if rels else {}
        return 200, items[(page - 1) * per_page: page * per_page], headers

    def _github_json(self, c: Comment) -> dict[str, Any]:
        if self.dialect == "gitea":
            return {"id": c.id, "html_url": f"{self.base_url}/{c.repo}/pulls/{c.number}"
                                            f"#issuecomment-{c.id}",
                    "pull_request_url": f"{self.base_url}/{c.repo}/pulls/{c.number}",
                    "issue_url": "", "user": {"id": c.author.id, "login": c.author.login},
                    "original_author": "", "original_author_id": 0, "body": c.body,
                    "assets": [], "created_at": c.created_at, "updated_at": c.updated_at}
        return {"id": c.id, "node_id": f"IC_{c.id}",
                "url": f"{self.base_url}/repos/{c.repo}/issues/comments/{c.id}",
                "html_url": f"https://github.example/{c.repo}/pull/{c.number}"
                            f"#issuecomment-{c.id}",
                "body": c.body,
                "user": {"login": c.author.login, "id": c.author.id,
                         "type": "Bot" if c.author.app else "User"},
                "created_at": c.created_at, "updated_at": c.updated_at,
                "issue_url": f"{self.base_url}/repos/{c.repo}/issues/{c.number}",
                "author_association": "NONE"}

    def _gitlab(self, method: str, path: str, query: dict[str, str], user: User,
                body: Any) -> tuple[int, Any, dict[str, str]]:
        if path == "/user" and method == "GET":
            return 200, {"id": user.id, "username": user.login, "name": user.login,
                         "state": "active"}, {}
        # [^/]+: a project path must arrive URL-encoded (group%2Fproject), as GitLab wants.
        match = re.fullmatch(r"/projects/([^/]+)/merge_requests/(\d+)/notes(?:/(\d+))?", path)
        if not match:
            raise _Reply(404, self._not_found())
        project = unquote(match[1])
        repo = self.repo if project == str(self.project_id) else project
        number = int(match[2])
        if (repo, number) not in self.threads:
            raise _Reply(404, {"message": "404 Project Not Found"})
        if match[3] is None and method == "POST":
            note = self.add_comment(user, self._body_of(body), repo=repo, number=number)
            return 201, self._gitlab_json(note), {}
        if match[3] is None and method == "GET":
            return self._gitlab_page(path, query, [c for c in self._comments
                                                   if (c.repo, c.number) == (repo, number)])
        if match[3] is not None and method == "PUT":
            edited = next((c for c in self._comments if c.id == int(match[3])
                           and (c.repo, c.number) == (repo, number)), None)
            return 200, self._gitlab_json(self._edit(edited, user, body)), {}
        raise _Reply(404, self._not_found())

    def _gitlab_page(self, path: str, query: dict[str, str],
                     notes: list[Comment]) -> tuple[int, Any, dict[str, str]]:
        # GitLab's defaults: 20 a page (at most 100), newest first.
        per_page = min(max(int(query.get("per_page", 20)), 1), 100)
        page = max(int(query.get("page", 1)), 1)
        key = "updated_at" if query.get("order_by") == "updated_at" else "created_at"
        ordered = sorted(notes, key=lambda c: (getattr(c, key), c.id),
                         reverse=query.get("sort", "desc") != "asc")
        pages = max(1, -(-len(ordered) // per_page))
        headers = {"X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(len(notes)),
                   "X-Total-Pages": str(pages),
                   "X-Next-Page": str(page + 1) if page < pages else "",
                   "X-Prev-Page": str(page - 1) if page > 1 else ""}
        if page < pages:
            nxt = urlencode({**query, "page": str(page + 1)})
            headers["Link"] = f'<{self.base_url}{PREFIX["gitlab"]}{path}?{nxt}>; rel="next"'
        return 200, [self._gitlab_json(c) for c in
                     ordered[(page - 1) * per_page: page * per_page]], headers

    def _gitlab_json(self, c: Comment) -> dict[str, Any]:
        return {"id": c.id, "type": None, "body": c.body, "attachment": None,
                "author": {"id": c.author.id, "username": c.author.login, "name": c.author.login,
                           "state": "active"},
                "created_at": c.created_at, "updated_at": c.updated_at, "system": c.system,
                "noteable_id": 50000 + c.number, "noteable_type": "MergeRequest",
                "noteable_iid": c.number, "resolvable": False, "confidential": False,
                "internal": False}


class _Handler(BaseHTTPRequestHandler):
    owner: FakeForge
    protocol_version = "HTTP/1.1"  # keep-alive, like the real forges

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `FakeForge.requests` instead."""

    def _serve(self) -> None:
        forge = self.owner
        raw_path, _, raw_query = self.path.partition("?")
        query = dict(parse_qsl(raw_query))
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        method = self.command
        canned = forge._fault(method, raw_path)
        extra: dict[str, str] = {}
        if canned is not None and not canned.apply:
            status, payload, text, extra = canned.status, canned.json, canned.text, canned.headers
        else:
            try:
                status, payload, extra = forge._handle(method, raw_path, query, headers, body)
            except _Reply as reply:
                status, payload, extra = reply.status, reply.body, reply.headers
            text = None
            if canned is not None:  # carried out; now answer as scripted
                status, payload, text, extra = (canned.status, canned.json, canned.text,
                                                canned.headers)
        with forge._lock:
            forge.requests.append(LoggedRequest(method, raw_path, query, headers, body, status))
        data = (text.encode() if text is not None
                else json.dumps(payload).encode() if payload is not None else b"")
        self.send_response(status)
        content_type = "text/plain" if text is not None else "application/json; charset=utf-8"
        if data:
            self.send_header("Content-Type", content_type)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve


def kitt_comments(forge: FakeForge, marker: str) -> Iterator[Comment]:
    """The comments of the default thread that contain `marker`, oldest first."""
    return (c for c in forge.thread() if marker in c.body)
