"""`kitt ci report` end to end: real `kitt run -e simulated` results, the real command in its own
process, and a stateful fake forge on a real socket, in the GitHub, GitLab and Gitea dialects."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kitt.domain.report import report_marker
from tests.e2e.conftest import kitt
from tests.forge_server import Canned, FakeForge, kitt_comments

TOKEN = "kitt-e2e-T0KEN-s3cret"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A baseline, a run with the same timing, and a run against a 30% slower engine."""
    root = tmp_path_factory.mktemp("results")
    runs = {"baseline": (), "same": (), "slower": ("--ttft-ms=26", "--itl-ms=6.5")}
    for name, engine_args in runs.items():
        out = root / name
        result = kitt("run", "-m", "demo", "-e", "simulated", "-s", "quick", "-o", str(out),
                      *(f"--engine-arg={arg}" for arg in engine_args))
        assert result.returncode == 0, result.stderr
    return {name: root / name for name in runs}


def ci_report(forge: FakeForge, results_dir: Path, baseline: Path, *extra: str):
    env = {**os.environ, "GITHUB_TOKEN": TOKEN, "GITLAB_TOKEN": TOKEN, "GITEA_TOKEN": TOKEN}
    for name in ("GITHUB_ACTIONS", "GITLAB_CI", "GITEA_ACTIONS", "GITHUB_STEP_SUMMARY"):
        env.pop(name, None)
    return kitt("ci", "report", "--results-dir", str(results_dir), "--baseline-dir",
                str(baseline), "--forge", forge.dialect, "--api-url", forge.api_url, "--repo",
                forge.repo, "--pr", str(forge.number), "--report-id", "quick-cpu",
                "--fail-on-regression", *extra, env=env, timeout=120)


@pytest.mark.parametrize("dialect", ["github", "gitlab", "gitea"])
def test_one_sticky_comment_through_faults_deletion_and_a_smaller_limit(results, dialect):
    marker = report_marker("quick-cpu")
    with FakeForge(dialect) as forge:
        me, alice = forge.add_user("kitt-bot", token=TOKEN), forge.add_user("alice")
        forge.seed_comments(250, alice)
        quoted = forge.add_comment(alice, f"the bot said:\n> something\n{marker}")
        comments_path = r"/(comments|notes)$"

        # Run 1: same timing -> exit 0; the list is rate limited once, the create fails twice.
        forge.fail_next("GET", comments_path, Canned(429, headers={"Retry-After": "1"}))
        forge.fail_next("POST", comments_path, Canned(502), Canned(502))
        first = ci_report(forge, results["same"], results["baseline"])
        assert first.returncode == 0, first.stderr
        [created] = [c for c in kitt_comments(forge, marker) if c.author is me]
        assert created.body.startswith("**No regressions**") and created.body.endswith(marker)
        assert forge.pending_faults() == 0  # every scripted fault was met and survived

        # Run 2: a 30% slower engine -> exit 1, the same comment updated in place.
        second = ci_report(forge, results["slower"], results["baseline"])
        assert second.returncode == 1
        assert "ttft_ms" in second.stderr and "regression" in second.stderr
        [updated] = [c for c in kitt_comments(forge, marker) if c.author is me]
        assert updated.id == created.id and "regression" in updated.body

        # Run 3: the comment was deleted meanwhile, and the server's limit is below kitt's
        # default: the report is posted again, cut to the limit the server named.
        forge.delete_comment(created.id)
        forge.body_limit = 4000
        third = ci_report(forge, results["slower"], results["baseline"], "--title", "third")
        assert third.returncode == 1
        [mine] = [c for c in kitt_comments(forge, marker) if c.author is me]
        assert "third" in mine.body and mine.body.endswith(marker) and len(mine.body) <= 4000
        assert "regression" in mine.body

        # Other people's comments, even with the marker, are never touched.
        assert [c.body for c in forge.thread() if c.id == quoted.id] == [quoted.body]
        assert len(forge.thread()) == 250 + 1 + 1
        for run in (first, second, third):
            assert TOKEN not in run.stdout + run.stderr


def test_report_to_a_file_needs_no_network_and_no_token(results, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_TOKEN") and k not in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY")}
    env.update(HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
    out = tmp_path / "report.md"
    result = kitt("ci", "report", "--results-dir", str(results["same"]), "--output", str(out),
                  env=env)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "no baseline" in text.lower() and "chat-c4" in text
