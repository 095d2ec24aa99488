"""The fake forge server (tests/forge_server.py) driven by the real, respx-checked adapters over
real sockets: a sticky comment survives two runs as exactly one comment, whatever the forge
throws at it. This is the fake `kitt ci report` end-to-end tests use, checked here first."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from adapters.forge import GiteaHost, GitHubHost, GitLabHost
from kitt.domain.errors import ForgeError
from kitt.ports import VcsHost
from tests.forge_server import Canned, FakeForge, User, kitt_comments

TOKEN = "kitt-T0KEN-for-tests"
MARK = "<!-- kitt-report:bench -->"
DIALECTS = ["github", "gitlab", "gitea"]
LIST = {"github": r"/issues/7/comments$", "gitlab": r"/notes$", "gitea": r"/issues/7/comments$"}


def host_for(forge: FakeForge, sleeps: list[float], token: str = TOKEN) -> VcsHost:
    if forge.dialect == "github":
        return GitHubHost(token=token, repo=forge.repo, number=forge.number,
                          api_url=forge.api_url, sleep=sleeps.append)
    if forge.dialect == "gitlab":
        return GitLabHost(token=token, project=forge.repo, mr_iid=forge.number,
                          api_url=forge.api_url, sleep=sleeps.append)
    return GiteaHost(token=token, repo=forge.repo, number=forge.number, api_url=forge.api_url,
                     sleep=sleeps.append)


def upsert(host: VcsHost, body: str) -> str:
    """What `kitt ci report` does: update the sticky comment, or create it."""
    found = host.find_comment(MARK)
    if found is not None:
        updated = host.update_comment(found.id, body)
        if updated is not None:
            return updated.id
    return host.create_comment(body).id


def report(n: int) -> str:
    return f"report {n}\n{MARK}"


@pytest.fixture(params=DIALECTS)
def forge(request: pytest.FixtureRequest) -> Iterator[FakeForge]:
    with FakeForge(request.param) as fake:
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def users(forge: FakeForge) -> tuple[User, User]:
    return forge.add_user("kitt-bot", token=TOKEN), forge.add_user("alice", token="alice-token")


def own(forge: FakeForge, me: User) -> list[str]:
    return [c.body for c in kitt_comments(forge, MARK) if c.author is me]


def test_two_runs_over_250_comments_leave_one_updated_comment(forge, users, sleeps):
    me, alice = users
    forge.seed_comments(250, alice)
    forge.add_comment(me, report(0))  # kitt's comment from an earlier push, on the last page
    quoted = forge.add_comment(alice, f"why does it say\n{MARK}")  # newer, same marker, not ours
    before = len(forge.thread())
    host = host_for(forge, sleeps)

    upsert(host, report(1))
    upsert(host_for(forge, sleeps), report(2))

    assert own(forge, me) == [report(2)]
    assert len(forge.thread()) == before  # nothing created
    untouched = next(c for c in forge.thread() if c.id == quoted.id)
    assert untouched.body == quoted.body and untouched.author is alice
    assert sleeps == []
    if forge.dialect == "gitea":  # one unpaged list per run
        assert len(forge.requests_to("GET", LIST["gitea"])) == 2
    else:  # 252 comments = 3 pages of 100, read in full on each run
        pages = [r.query.get("page", "1") for r in forge.requests_to("GET", LIST[forge.dialect])]
        assert pages == ["1", "2", "3"] * 2
        assert all(r.query["per_page"] == "100" for r in forge.requests_to("GET", "comments|notes"))


def test_first_run_creates_second_updates(forge, users, sleeps):
    me, alice = users
    forge.add_comment(alice, "LGTM")
    first = upsert(host_for(forge, sleeps), report(1))
    second = upsert(host_for(forge, sleeps), report(2))
    assert first == second and own(forge, me) == [report(2)]
    assert len(forge.requests_to("POST")) == 1


def test_a_comment_deleted_between_runs_is_recreated(forge, users, sleeps):
    me, _ = users
    first = upsert(host_for(forge, sleeps), report(1))
    forge.delete_comment(int(first))
    upsert(host_for(forge, sleeps), report(2))
    assert own(forge, me) == [report(2)]


def test_a_comment_deleted_after_it_was_found_is_recreated(forge, users, sleeps):
    me, _ = users
    first = forge.add_comment(me, report(1))
    host = host_for(forge, sleeps)
    found = host.find_comment(MARK)
    assert found is not None and found.id == str(first.id)
    forge.delete_comment(first.id)  # gone between find and update
    assert host.update_comment(found.id, report(2)) is None
    host.create_comment(report(2))
    assert own(forge, me) == [report(2)]


def test_429_with_retry_after_and_two_502s_are_retried(forge, users, sleeps):
    me, _ = users
    forge.add_comment(me, report(1))
    forge.fail_next("GET", LIST[forge.dialect], Canned(429, headers={"Retry-After": "1"},
                                                        json={"message": "slow down"}))
    edit = r"/comments/\d+$" if forge.dialect != "gitlab" else r"/notes/\d+$"
    forge.fail_next("PATCH" if forge.dialect != "gitlab" else "PUT", edit,
                    Canned(502, text="bad gateway"), Canned(502, text="bad gateway"))
    upsert(host_for(forge, sleeps), report(2))
    assert own(forge, me) == [report(2)]
    assert sleeps[0] == 1.0 and len(sleeps) == 3 and forge.pending_faults() == 0


def test_a_create_that_answered_502_after_taking_effect_is_not_duplicated(forge, users, sleeps):
    me, _ = users
    forge.fail_next("POST", LIST[forge.dialect], Canned(502, apply=True, text="bad gateway"))
    upsert(host_for(forge, sleeps), report(1))
    assert own(forge, me) == [report(1)]
    assert len(forge.requests_to("POST")) == 1


def test_a_too_long_body_is_refused_with_the_forges_reason(forge, users, sleeps):
    forge.body_limit = forge.body_limit or 65536
    with pytest.raises(ForgeError) as caught:
        upsert(host_for(forge, sleeps), "x" * (forge.body_limit + 1) + MARK)
    message = str(caught.value)
    assert "too long" in message and TOKEN not in message
    assert caught.value.status == {"github": 422, "gitlab": 400, "gitea": 422}[forge.dialect]
    assert forge.thread() == []


def test_a_wrong_token_is_refused(forge, users, sleeps):
    with pytest.raises(ForgeError) as caught:
        host_for(forge, sleeps, token="wrong").find_comment(MARK)
    assert caught.value.status == 401 and "GET" in str(caught.value)
    assert "wrong" not in str(caught.value)


def test_another_pull_request_is_not_found(forge, users, sleeps):
    host: Callable[..., VcsHost] = {"github": GitHubHost, "gitea": GiteaHost}.get(
        forge.dialect, GitLabHost)
    args = ({"project": forge.repo, "mr_iid": 8} if forge.dialect == "gitlab"
            else {"repo": forge.repo, "number": 8})
    with pytest.raises(ForgeError) as caught:
        host(token=TOKEN, api_url=forge.api_url, **args).create_comment("x")
    assert caught.value.status == 404 and "not found" in str(caught.value)


def test_github_installation_token_updates_the_bots_comment(sleeps):
    with FakeForge("github") as forge:
        bot = forge.add_user("github-actions[bot]", token=TOKEN, app=True)
        human = forge.add_user("alice", token="alice-token")
        forge.add_comment(human, report(0))
        forge.add_comment(bot, report(1))
        upsert(host_for(forge, sleeps), report(2))
        assert [(c.author.login, c.body) for c in kitt_comments(forge, MARK)] == [
            ("alice", report(0)), ("github-actions[bot]", report(2))]


def test_gitlab_sorts_newest_first_unless_asked_and_wants_encoded_paths(sleeps):
    with FakeForge("gitlab", repo="group/sub/proj") as forge:
        me = forge.add_user("kitt-bot", token=TOKEN)
        for n in range(3):
            forge.add_comment(me, f"note {n}")
        base = f"{forge.api_url}/projects"
        headers = {"PRIVATE-TOKEN": TOKEN}
        default = httpx.get(f"{base}/group%2Fsub%2Fproj/merge_requests/7/notes", headers=headers)
        assert [n["body"] for n in default.json()] == ["note 2", "note 1", "note 0"]
        assert default.headers["X-Total-Pages"] == "1" and default.headers["X-Next-Page"] == ""
        by_id = httpx.get(f"{base}/{forge.project_id}/merge_requests/7/notes",
                          params={"sort": "asc"}, headers=headers)
        assert [n["body"] for n in by_id.json()] == ["note 0", "note 1", "note 2"]
        raw = httpx.get(f"{base}/group/sub/proj/merge_requests/7/notes", headers=headers)
        assert raw.status_code == 404
        job = httpx.get(f"{forge.api_url}/user", headers={"JOB-TOKEN": TOKEN})
        assert job.status_code == 401
