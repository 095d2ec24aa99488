"""Every request the forge adapters send, checked against canned JSON answers (respx).

Each test says what goes over the wire (method, path, query, headers, JSON body) and what the
adapter makes of the forge's answer; retries run through an injected sleep, so nothing sleeps.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from adapters.forge import GiteaHost, GitHubHost, GitLabHost
from adapters.forge.http import ForgeComment, RetryPolicy
from kitt.domain.errors import ForgeError, UsageError
from kitt.ports import VcsHost

TOKEN = "ghp_s3cr3t-T0KEN"
GH = "https://api.github.com"
GL = "https://gitlab.example/api/v4"
GT = "https://gitea.example/api/v1"
MARK = "<!-- kitt-report:bench -->"
COMMENTS = f"{GH}/repos/acme/widgets/issues/7/comments"


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


@pytest.fixture
def sleeps() -> list[float]:
    return []


def github(sleeps: list[float], **kw: Any) -> GitHubHost:
    return GitHubHost(token=TOKEN, repo="acme/widgets", number=7, sleep=sleeps.append, **kw)


def gitlab(sleeps: list[float], **kw: Any) -> GitLabHost:
    kw.setdefault("project", "group/sub/proj")
    return GitLabHost(token=TOKEN, mr_iid=7, api_url=GL, sleep=sleeps.append, **kw)


def gitea(sleeps: list[float]) -> GiteaHost:
    return GiteaHost(token=TOKEN, repo="acme/widgets", number=7, api_url=GT, sleep=sleeps.append)


def gh_comment(cid: int, body: str, login: str = "kitt", uid: int = 42,
               kind: str = "User") -> dict[str, Any]:
    return {"id": cid, "body": body, "user": {"login": login, "id": uid, "type": kind},
            "html_url": f"https://github.com/acme/widgets/pull/7#issuecomment-{cid}",
            "created_at": "2024-05-01T10:00:00Z", "author_association": "MEMBER"}


def sent(router: respx.MockRouter) -> list[tuple[str, str]]:
    """(method, raw path + query) of every request, in order."""
    return [(c.request.method, c.request.url.raw_path.decode()) for c in router.calls]


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


# --- GitHub ---------------------------------------------------------------------------------


def test_github_finds_the_newest_own_comment_across_pages_then_patches_it(mock, sleeps):
    mock.get(f"{GH}/user").respond(200, json={"login": "kitt", "id": 42, "type": "User"})
    # GitHub's next links point at /repositories/{id}/...: the adapter follows them verbatim.
    page2 = "https://api.github.com/repositories/99/issues/7/comments?per_page=100&page=2"
    mock.get(COMMENTS, params={"per_page": "100"}).respond(
        200, headers={"Link": f'<{page2}>; rel="next", <{page2}>; rel="last"'},
        json=[gh_comment(10, f"old\n{MARK}"),
              gh_comment(11, f"quoting\n{MARK}", login="alice", uid=7),
              gh_comment(12, "unrelated")])
    mock.get(page2).respond(200, json=[
        gh_comment(250, f"newer\n{MARK}"),
        gh_comment(251, "<!-- kitt-report:other-job -->"),
        gh_comment(252, f"newest, someone else\n{MARK}", login="mallory", uid=8)])
    patch = mock.patch(f"{GH}/repos/acme/widgets/issues/comments/250").respond(
        200, json=gh_comment(250, "new body"))

    host = github(sleeps)
    found = host.find_comment(MARK)
    assert found == ForgeComment("250", "https://github.com/acme/widgets/pull/7#issuecomment-250")
    assert host.update_comment(found.id, "new body") == ForgeComment(
        "250", "https://github.com/acme/widgets/pull/7#issuecomment-250")

    assert sent(mock) == [
        ("GET", "/user"),
        ("GET", "/repos/acme/widgets/issues/7/comments?per_page=100"),
        ("GET", "/repositories/99/issues/7/comments?per_page=100&page=2"),
        ("PATCH", "/repos/acme/widgets/issues/comments/250"),
    ]
    assert body_of(patch.calls.last.request) == {"body": "new body"}
    for call in mock.calls:
        headers = call.request.headers
        assert headers["Authorization"] == f"Bearer {TOKEN}"
        assert headers["Accept"] == "application/vnd.github+json"
        assert headers["X-GitHub-Api-Version"] == "2022-11-28"
        assert headers["User-Agent"].startswith("kitt-bench/")
    assert sleeps == []


def test_github_identity_is_asked_once_per_host(mock, sleeps):
    user = mock.get(f"{GH}/user").respond(200, json={"login": "kitt", "id": 42})
    mock.get(COMMENTS).respond(200, json=[])
    host = github(sleeps)
    assert host.find_comment(MARK) is None
    assert host.find_comment(MARK) is None
    assert user.call_count == 1


def test_github_create_posts_the_body_to_the_pull_requests_issue_comments(mock, sleeps):
    post = mock.post(COMMENTS).respond(201, json=gh_comment(300, "report"))
    assert github(sleeps).create_comment("report") == ForgeComment(
        "300", "https://github.com/acme/widgets/pull/7#issuecomment-300")
    assert sent(mock) == [("POST", "/repos/acme/widgets/issues/7/comments")]
    assert body_of(post.calls.last.request) == {"body": "report"}
    assert post.calls.last.request.headers["Content-Type"] == "application/json"


def test_github_update_of_a_deleted_comment_returns_none(mock, sleeps):
    mock.patch(f"{GH}/repos/acme/widgets/issues/comments/5").respond(
        404, json={"message": "Not Found", "status": "404"})
    assert github(sleeps).update_comment("5", "body") is None
    assert sleeps == []


def test_github_installation_token_matches_only_the_actions_bot(mock, sleeps):
    # GITHUB_TOKEN is an installation token: /user is 403, the comments' author is the bot.
    mock.get(f"{GH}/user").respond(
        403, json={"message": "Resource not accessible by integration", "status": "403"})
    mock.get(COMMENTS).respond(200, json=[
        gh_comment(1, MARK, login="github-actions[bot]", uid=41898282, kind="Bot"),
        gh_comment(2, MARK, login="github-actions[bot]", uid=5, kind="User"),  # not a bot
        gh_comment(3, MARK, login="renovate[bot]", uid=29139614, kind="Bot"),
    ])
    assert github(sleeps).find_comment(MARK) == ForgeComment(
        "1", "https://github.com/acme/widgets/pull/7#issuecomment-1")
    assert sleeps == []  # a plain 403 on /user is an answer, not a rate limit


def test_github_app_token_uses_the_apps_bot_login(mock, sleeps):
    mock.get(f"{GH}/user").respond(403, json={"message": "Resource not accessible by integration"})
    mock.get(COMMENTS).respond(200, json=[
        gh_comment(1, MARK, login="github-actions[bot]", uid=41898282, kind="Bot"),
        gh_comment(2, MARK, login="kitt-reporter[bot]", uid=77, kind="Bot"),
    ])
    host = github(sleeps, bot_login="kitt-reporter[bot]")
    assert host.find_comment(MARK) == ForgeComment(
        "2", "https://github.com/acme/widgets/pull/7#issuecomment-2")


def test_github_enterprise_api_url_keeps_its_path_prefix(mock, sleeps):
    ghe = "https://ghe.example/api/v3"
    mock.get(f"{ghe}/user").respond(200, json={"login": "kitt", "id": 42})
    mock.get(f"{ghe}/repos/acme/widgets/issues/7/comments").respond(200, json=[])
    assert github(sleeps, api_url=ghe + "/").find_comment(MARK) is None
    assert sent(mock) == [("GET", "/api/v3/user"),
                          ("GET", "/api/v3/repos/acme/widgets/issues/7/comments?per_page=100")]


def test_github_refuses_a_next_link_to_another_host(mock, sleeps):
    mock.get(f"{GH}/user").respond(200, json={"login": "kitt", "id": 42})
    mock.get(COMMENTS).respond(
        200, json=[], headers={"Link": '<https://evil.example/steal?page=2>; rel="next"'})
    with pytest.raises(ForgeError, match="another host"):
        github(sleeps).find_comment(MARK)
    assert all(c.request.url.host == "api.github.com" for c in mock.calls)


def test_github_stops_on_a_circular_next_link(mock, sleeps):
    mock.get(f"{GH}/user").respond(200, json={"login": "kitt", "id": 42})
    loop = f"{COMMENTS}?per_page=100&page=2"
    mock.get(COMMENTS).respond(200, json=[gh_comment(9, MARK)],
                               headers={"Link": f'<{loop}>; rel="next"'})
    assert github(sleeps).find_comment(MARK) == ForgeComment(
        "9", "https://github.com/acme/widgets/pull/7#issuecomment-9")
    assert len(mock.calls) == 3  # /user, page 1, page 2 (which links to itself)


# --- retries --------------------------------------------------------------------------------


def test_two_502s_then_success_are_retried_with_growing_jittered_backoff(mock, sleeps):
    mock.get(f"{GH}/user").respond(200, json={"login": "kitt", "id": 42})
    mock.get(COMMENTS).mock(side_effect=[
        httpx.Response(502, text="<html>Bad Gateway</html>"), httpx.Response(502),
        httpx.Response(200, json=[gh_comment(1, MARK)])])
    assert github(sleeps).find_comment(MARK) is not None
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_429_retry_after_seconds_is_honoured(mock, sleeps):
    mock.post(COMMENTS).mock(side_effect=[
        httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(201, json=gh_comment(
            5, "b"))])
    assert github(sleeps).create_comment("b").id == "5"
    assert sleeps == [7.0]
    # A rate-limited POST was refused, not performed: no look for a duplicate before retrying.
    assert [m for m, _ in sent(mock)] == ["POST", "POST"]


def test_retry_after_as_an_http_date_is_honoured(mock, sleeps):
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    mock.get(f"{GH}/user").mock(side_effect=[
        httpx.Response(503, headers={"Retry-After": when}),
        httpx.Response(200, json={"login": "kitt", "id": 42})])
    mock.get(COMMENTS).respond(200, json=[])
    github(sleeps).find_comment(MARK)
    assert len(sleeps) == 1 and 27 <= sleeps[0] <= 30


@pytest.mark.parametrize(("headers", "expected"), [
    ({}, 60.0),  # GitHub: "wait for at least one minute" when it names no time
    ({"Retry-After": "3"}, 3.0),
])
def test_github_secondary_rate_limit_is_retried(mock, sleeps, headers, expected):
    mock.patch(f"{GH}/repos/acme/widgets/issues/comments/9").mock(side_effect=[
        httpx.Response(403, headers=headers, json={
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes "
                       "before you try again.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits"}),
        httpx.Response(200, json=gh_comment(9, "b"))])
    assert github(sleeps).update_comment("9", "b") is not None
    assert sleeps == [expected]


def test_primary_rate_limit_waits_for_the_reset_when_it_is_near(mock, sleeps):
    reset = str(int(time.time()) + 20)
    mock.get(f"{GH}/user").mock(side_effect=[
        httpx.Response(403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset},
                       json={"message": "API rate limit exceeded for installation ID 1."}),
        httpx.Response(200, json={"login": "kitt", "id": 42})])
    mock.get(COMMENTS).respond(200, json=[])
    github(sleeps).find_comment(MARK)
    assert len(sleeps) == 1 and 17 <= sleeps[0] <= 20


def test_a_wait_longer_than_kitt_accepts_fails_at_once_and_says_so(mock, sleeps):
    reset = str(int(time.time()) + 3000)
    mock.get(f"{GH}/user").respond(
        403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset},
        json={"message": "API rate limit exceeded for user ID 42."})
    with pytest.raises(ForgeError) as caught:
        github(sleeps).find_comment(MARK)
    assert sleeps == []
    message = str(caught.value)
    assert "GET /user" in message and "403" in message and "asks to wait" in message
    assert "API rate limit exceeded" in message and "re-run the job later" in message


def test_attempts_are_bounded(mock, sleeps):
    route = mock.get(f"{GH}/user").respond(503, json={"message": "Service Unavailable"})
    with pytest.raises(ForgeError) as caught:
        github(sleeps).find_comment(MARK)
    assert route.call_count == 5 and len(sleeps) == 4
    assert caught.value.status == 503
    assert "after 5 attempts" in str(caught.value) and "Service Unavailable" in str(caught.value)


def test_total_waiting_time_is_bounded(mock, sleeps):
    route = mock.get(f"{GH}/user").respond(429, headers={"Retry-After": "6"})
    host = github(sleeps, policy=RetryPolicy(attempts=10, max_wait_s=60, total_s=10))
    with pytest.raises(ForgeError, match="10 s in all"):
        host.find_comment(MARK)
    assert sleeps == [6.0] and route.call_count == 2


def test_a_failed_connection_is_retried(mock, sleeps):
    mock.get(f"{GH}/user").mock(side_effect=[
        httpx.ConnectError("connection refused"),
        httpx.Response(200, json={"login": "kitt", "id": 42})])
    mock.get(COMMENTS).respond(200, json=[])
    assert github(sleeps).find_comment(MARK) is None
    assert len(sleeps) == 1


def test_no_answer_at_all_names_the_path_and_the_network(mock, sleeps):
    mock.get(f"{GH}/user").mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(ForgeError) as caught:
        github(sleeps).find_comment(MARK)
    assert caught.value.status is None
    assert "GET /user got no answer" in str(caught.value) and "network" in str(caught.value)


def test_a_post_that_took_effect_before_a_502_is_not_repeated(mock, sleeps):
    post = mock.post(COMMENTS).respond(502)
    mock.get(f"{GH}/user").respond(200, json={"login": "kitt", "id": 42})
    mock.get(COMMENTS).respond(200, json=[gh_comment(77, "report")])
    assert github(sleeps).create_comment("report") == ForgeComment(
        "77", "https://github.com/acme/widgets/pull/7#issuecomment-77")
    assert post.call_count == 1


def test_a_post_that_failed_with_502_is_repeated_after_looking_for_it(mock, sleeps):
    post = mock.post(COMMENTS).mock(side_effect=[
        httpx.Response(502), httpx.Response(201, json=gh_comment(78, "report"))])
    mock.get(f"{GH}/user").respond(200, json={"login": "kitt", "id": 42})
    mock.get(COMMENTS).respond(200, json=[gh_comment(5, "an older report")])
    assert github(sleeps).create_comment("report").id == "78"
    assert [m for m, _ in sent(mock)] == ["POST", "GET", "GET", "POST"]
    assert post.call_count == 2


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "status", "answer", "says"), [
    ("GET", 401, {"message": "Bad credentials"}, ["Bad credentials", "invalid, expired"]),
    ("POST", 403, {"message": "Resource not accessible by integration"},
     ["Resource not accessible by integration", "fork", "workflow_run",
      "pull-requests: write", "artifact"]),
    ("GET", 404, {"message": "Not Found"}, ["not found", "--repo", "--pr"]),
    ("POST", 422, {"message": "Validation Failed", "errors": [{
        "resource": "IssueComment", "code": "custom", "field": "body",
        "message": "body is too long (maximum is 65536 characters)"}]},
     ["Validation Failed", "body is too long (maximum is 65536 characters)"]),
])
def test_github_errors_say_what_failed_and_what_to_do(mock, sleeps, method, status, answer,
                                                      says):
    mock.get(f"{GH}/user").respond(200, json={"login": "kitt", "id": 42})
    mock.route(method=method, url__startswith=COMMENTS).respond(status, json=answer)
    host = github(sleeps)
    with pytest.raises(ForgeError) as caught:
        host.create_comment("x") if method == "POST" else host.find_comment(MARK)
    message = str(caught.value)
    assert message.startswith("GitHub API: ")
    assert f"{method} /repos/acme/widgets/issues/7/comments answered {status}" in message
    assert "per_page" not in message  # the path, never the query
    for words in says:
        assert words in message
    assert TOKEN not in message and TOKEN not in repr(caught.value)
    assert caught.value.status == status and sleeps == []


def test_a_token_echoed_by_the_forge_is_scrubbed(mock, sleeps):
    mock.get(f"{GH}/user").respond(401, json={"message": f"token {TOKEN} is revoked"})
    with pytest.raises(ForgeError) as caught:
        github(sleeps).find_comment(MARK)
    assert TOKEN not in str(caught.value) and "token *** is revoked" in str(caught.value)


def test_an_answer_that_is_not_the_forges_json_is_a_clear_error(mock, sleeps):
    mock.get(f"{GH}/user").respond(200, text="<html>sign in</html>")
    with pytest.raises(ForgeError, match="GET /user answered 200 with a body kitt does not"):
        github(sleeps).find_comment(MARK)


def test_tokens_stay_out_of_reprs_and_logs(mock, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    mock.get(f"{GH}/user").mock(side_effect=[httpx.Response(502),
                                             httpx.Response(200, json={"login": "k", "id": 1})])
    mock.get(COMMENTS).respond(200, json=[])
    hosts: list[VcsHost] = [github(sleeps), gitlab(sleeps), gitlab(sleeps, job_token=True),
                            gitea(sleeps)]
    hosts[0].find_comment(MARK)
    assert "retrying" in caplog.text
    for host in hosts:
        assert TOKEN not in repr(host) and TOKEN not in repr(vars(host))
    assert TOKEN not in caplog.text


def test_bad_arguments_are_refused_before_any_request():
    with pytest.raises(UsageError, match="OWNER/NAME"):
        GitHubHost(token=TOKEN, repo="widgets", number=1)
    with pytest.raises(UsageError, match="OWNER/NAME"):
        GiteaHost(token=TOKEN, repo="a/b/c", number=1, api_url=GT)
    with pytest.raises(ForgeError, match="not an http"):
        GiteaHost(token=TOKEN, repo="a/b", number=1, api_url="gitea.example")


def test_defaults_and_limits():
    host = GitHubHost(token=TOKEN, repo="a/b", number=1)
    assert repr(host) == "GitHubHost(repo='a/b', number=1, api_url='https://api.github.com')"
    assert host.max_body_chars == 65536
    lab = GitLabHost(token=TOKEN, project="g/p", mr_iid=3)
    assert "https://gitlab.com/api/v4" in repr(lab) and lab.max_body_chars == 1_000_000


# --- GitLab ---------------------------------------------------------------------------------

NOTES = f"{GL}/projects/group%2Fsub%2Fproj/merge_requests/7/notes"


def gl_note(nid: int, body: str, author: int = 42, system: bool = False) -> dict[str, Any]:
    return {"id": nid, "body": body, "author": {"id": author, "username": f"u{author}"},
            "system": system, "noteable_type": "MergeRequest", "noteable_iid": 7,
            "created_at": "2024-05-01T10:00:00.000Z"}


def test_gitlab_finds_the_newest_own_note_following_x_next_page_then_puts(mock, sleeps):
    mock.get(f"{GL}/user").respond(200, json={"id": 42, "username": "kitt-bot"})
    notes = mock.get(url__startswith=NOTES).mock(side_effect=[
        httpx.Response(200, headers={"X-Next-Page": "2", "X-Total-Pages": "2"}, json=[
            gl_note(1, f"old\n{MARK}"), gl_note(2, f"quote\n{MARK}", author=7)]),
        httpx.Response(200, headers={"X-Next-Page": "", "X-Total-Pages": "2"}, json=[
            gl_note(3, f"newer\n{MARK}"), gl_note(4, f"changed\n{MARK}", system=True)]),
    ])
    put = mock.put(f"{NOTES}/3").respond(200, json=gl_note(3, "new"))

    host = gitlab(sleeps)
    found = host.find_comment(MARK)
    web = "https://gitlab.example/group/sub/proj/-/merge_requests/7"
    assert found == ForgeComment("3", f"{web}#note_3")
    assert host.update_comment("3", "new") == ForgeComment("3", f"{web}#note_3")

    assert sent(mock) == [
        ("GET", "/api/v4/user"),
        ("GET", "/api/v4/projects/group%2Fsub%2Fproj/merge_requests/7/notes"
                "?per_page=100&sort=asc&order_by=created_at&page=1"),
        ("GET", "/api/v4/projects/group%2Fsub%2Fproj/merge_requests/7/notes"
                "?per_page=100&sort=asc&order_by=created_at&page=2"),
        ("PUT", "/api/v4/projects/group%2Fsub%2Fproj/merge_requests/7/notes/3"),
    ]
    assert notes.call_count == 2
    assert body_of(put.calls.last.request) == {"body": "new"}
    for call in mock.calls:
        headers = call.request.headers
        assert headers["PRIVATE-TOKEN"] == TOKEN and "Authorization" not in headers
        assert "JOB-TOKEN" not in headers
        assert headers["User-Agent"].startswith("kitt-bench/")


def test_gitlab_create_and_update_of_a_deleted_note(mock, sleeps):
    by_id = f"{GL}/projects/1234/merge_requests/7/notes"
    post = mock.post(by_id).respond(201, json=gl_note(9, "report"))
    mock.put(f"{by_id}/8").respond(404, json={"message": "404 Not found"})
    host = gitlab(sleeps, project="1234")
    assert host.create_comment("report") == ForgeComment("9", None)  # numeric id: no web URL
    assert host.update_comment("8", "report") is None
    assert body_of(post.calls.last.request) == {"body": "report"}
    assert [p for _, p in sent(mock)] == ["/api/v4/projects/1234/merge_requests/7/notes",
                                          "/api/v4/projects/1234/merge_requests/7/notes/8"]


def test_gitlab_job_token_goes_in_its_header_and_its_refusal_is_explained(mock, sleeps):
    route = mock.get(f"{GL}/user").respond(401, json={"message": "401 Unauthorized"})
    with pytest.raises(ForgeError) as caught:
        gitlab(sleeps, job_token=True).find_comment(MARK)
    headers = route.calls.last.request.headers
    assert headers["JOB-TOKEN"] == TOKEN and "PRIVATE-TOKEN" not in headers
    message = str(caught.value)
    assert "GitLab API: GET /api/v4/user answered 401" in message
    assert "CI_JOB_TOKEN cannot" in message and "`api` scope" in message
    assert "GITLAB_TOKEN" in message and TOKEN not in message


def test_gitlab_too_long_note_is_reported_with_gitlabs_reason(mock, sleeps):
    mock.post(NOTES).respond(
        400, json={"message": "Note {:note=>[\"is too long (maximum is 1000000 characters)\"]}"})
    with pytest.raises(ForgeError) as caught:
        gitlab(sleeps).create_comment("x" * 1_000_001)
    assert "is too long (maximum is 1000000 characters)" in str(caught.value)
    assert "POST /api/v4/projects/group%2Fsub%2Fproj/merge_requests/7/notes" in str(caught.value)


# --- Gitea ----------------------------------------------------------------------------------

GT_COMMENTS = f"{GT}/repos/acme/widgets/issues/7/comments"


def gt_comment(cid: int, body: str, uid: int = 42) -> dict[str, Any]:
    return {"id": cid, "body": body, "user": {"id": uid, "login": f"u{uid}"},
            "html_url": f"https://gitea.example/acme/widgets/pulls/7#issuecomment-{cid}"}


def test_gitea_lists_once_picks_the_newest_own_comment_and_patches(mock, sleeps):
    mock.get(f"{GT}/user").respond(200, json={"id": 42, "login": "kitt"})
    mock.get(GT_COMMENTS).respond(200, json=[
        gt_comment(1, MARK), gt_comment(3, MARK), gt_comment(2, MARK), gt_comment(4, MARK, 7)])
    patch = mock.patch(f"{GT}/repos/acme/widgets/issues/comments/3").respond(
        200, json=gt_comment(3, "new"))
    host = gitea(sleeps)
    found = host.find_comment(MARK)
    assert found == ForgeComment("3", "https://gitea.example/acme/widgets/pulls/7#issuecomment-3")
    assert host.update_comment("3", "new") == found
    assert sent(mock) == [("GET", "/api/v1/user"),
                          ("GET", "/api/v1/repos/acme/widgets/issues/7/comments"),
                          ("PATCH", "/api/v1/repos/acme/widgets/issues/comments/3")]
    assert body_of(patch.calls.last.request) == {"body": "new"}
    for call in mock.calls:
        assert call.request.headers["Authorization"] == f"token {TOKEN}"
        assert call.request.headers["Accept"] == "application/json"


def test_gitea_create_update_deleted_and_no_content(mock, sleeps):
    post = mock.post(GT_COMMENTS).respond(201, json=gt_comment(5, "r"))
    mock.patch(f"{GT}/repos/acme/widgets/issues/comments/6").respond(
        404, json={"errors": [], "message": "The target couldn't be found."})
    mock.patch(f"{GT}/repos/acme/widgets/issues/comments/7").respond(204)
    host = gitea(sleeps)
    assert host.create_comment("r").id == "5"
    assert body_of(post.calls.last.request) == {"body": "r"}
    assert host.update_comment("6", "r") is None
    assert host.update_comment("7", "r") == ForgeComment("7")
    assert host.max_body_chars == 65536


def test_gitea_forbidden_names_the_scope(mock, sleeps):
    mock.post(GT_COMMENTS).respond(403, json={"message": "token does not have scope write:issue"})
    with pytest.raises(ForgeError) as caught:
        gitea(sleeps).create_comment("r")
    message = str(caught.value)
    assert message.startswith("Gitea API: POST /api/v1/repos/acme/widgets/issues/7/comments "
                              "answered 403 (token does not have scope write:issue)")
    assert "write:issue" in message and TOKEN not in message
