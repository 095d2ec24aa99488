"""The `kitt ci report` use case: compare -> render -> deliver (DESIGN §6).

Delivery targets, all optional and combinable:
- `--output FILE`: the full report, written atomically;
- `--json FILE`: the Comparison as JSON (the same verdicts as the report);
- a forge (GitHub, GitLab, Gitea): ONE sticky comment per report ID on the pull/merge request,
  found by its marker and updated in place, or created (again, if it was deleted meanwhile);
- `$GITHUB_STEP_SUMMARY` (inside GitHub Actions): the report is appended to the job's summary;
- with no file and no forge, the CLI prints the report (`CiReportOutcome.body`) to stdout.

Local files are written before anything is posted, so an API failure still leaves them. Whether
the outcome fails the job is decided by the CLI (kitt/cli/exit.py), after delivery: a report is
posted also when it will fail the gate.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import msgspec

from kitt.domain.ci import Forge, ForgeTarget, detect_forge, pr_number_from_event
from kitt.domain.comparison import Comparison
from kitt.domain.errors import ForgeError, KittError, UsageError
from kitt.domain.report import DEFAULT_REPORT_ID, report_marker
from kitt.ports import PostedComment, ReportRenderer, VcsHost, VcsHostFactory

FORGES: tuple[Forge, ...] = ("github", "gitlab", "gitea")
CommentAction = Literal["created", "updated", "recreated"]

# GitHub caps a step summary at 1 MiB; characters may take up to 3 bytes in UTF-8 (the report's
# own dashes and signs do), so stay well below.
STEP_SUMMARY_MAX_CHARS = 300_000

_FORGE_NAMES = {"github": "GitHub", "gitlab": "GitLab", "gitea": "Gitea"}


class Comparer(Protocol):
    """What this use case needs of the comparison service (kitt/services/comparison.py)."""

    def compare(
        self,
        current_dir: Path,
        baseline_dir: Path | None,
        *,
        thresholds: Mapping[str, float],
    ) -> Comparison:
        """Load and compare. A missing or empty baseline gives Comparison(baseline_found=False);
        missing or invalid current results raise ResultFileError."""
        ...


# --- where to post: the command line, then the CI environment --------------------------------


@dataclass(frozen=True)
class ForgeOptions:
    """The forge options given on the command line (None: not given). Any of them asks for
    the report to be posted; environment variables alone never do."""

    forge: str | None = None
    api_url: str | None = None
    repo: str | None = None
    number: int | None = None
    token: str | None = field(default=None, repr=False)
    github_token: str | None = field(default=None, repr=False)

    @property
    def requested(self) -> bool:
        return any(
            value is not None
            for value in (self.forge, self.api_url, self.repo, self.number, self.token,
                          self.github_token)
        )


@dataclass(frozen=True)
class ForgeSettings:
    """Everything needed to post: resolved from the options, the CI environment and defaults."""

    forge: Forge
    repo: str
    number: int
    token: str = field(repr=False)
    # None: the forge's public default (api.github.com, gitlab.com).
    api_url: str | None = None
    # GitLab's CI_JOB_TOKEN authenticates differently from a personal/project access token.
    job_token: bool = False


def detect_ci_target(env: Mapping[str, str]) -> ForgeTarget | None:
    """The CI job's forge and pull/merge request (kitt.domain.ci.detect_forge); in GitHub or
    Gitea Actions events whose ref names no pull request (pull_request_target, issue_comment,
    workflow_run), the number is read from the event payload at GITHUB_EVENT_PATH."""
    target = detect_forge(env)
    event_path = env.get("GITHUB_EVENT_PATH")
    if target is None or target.number is not None or target.forge == "gitlab" or not event_path:
        return target
    try:
        payload = msgspec.json.decode(Path(event_path).read_bytes())
    except (OSError, msgspec.DecodeError):
        return target  # no payload to read: --pr fills the gap, or the error says so
    if not isinstance(payload, dict):
        return target
    number = pr_number_from_event(payload)
    return target if number is None else msgspec.structs.replace(target, number=number)


def resolve_forge(
    options: ForgeOptions,
    env: Mapping[str, str],
    detected: ForgeTarget | None,
) -> ForgeSettings | None:
    """Where to post, or None when no forge option was given (then nothing is posted).

    Each setting comes from its command-line option when given; otherwise from the CI job's
    environment (`detected`, used only when it is the same forge); otherwise from the forge's
    environment variables and defaults. Raises UsageError naming every missing piece and how
    to pass it.
    """
    if not options.requested:
        return None
    if options.token is not None and options.github_token is not None:
        raise UsageError("pass the token once: --token or --github-token, not both")
    if options.forge is not None and options.forge not in FORGES:
        raise UsageError(f"unknown forge {options.forge!r}: choose github, gitlab or gitea")
    forge: Forge
    if options.forge is not None:
        forge = options.forge  # type: ignore[assignment]
    elif options.github_token is not None:
        forge = "github"
    elif detected is not None:
        forge = detected.forge
    else:
        forge = "github"
    if options.github_token is not None and forge != "github":
        raise UsageError(
            f"--github-token is for GitHub: with --forge {forge}, pass --token "
            f"or set {' or '.join(_TOKEN_ENV[forge])}"
        )
    same = detected if detected is not None and detected.forge == forge else None

    repo = options.repo or (same.repo if same else None)
    number = options.number if options.number is not None else (same.number if same else None)
    api_url = options.api_url or (same.api_url if same else None) or _api_url_from_env(forge, env)
    token, job_token = options.token or options.github_token, False
    if token is None and same is not None and env.get(same.token_env):
        token, job_token = env[same.token_env], same.job_token
    if token is None:
        token, job_token = _token_from_env(forge, env)

    missing = []
    if not repo:
        missing.append(
            "the project (pass --repo GROUP/PROJECT or the numeric project ID)"
            if forge == "gitlab" else "the repository (pass --repo OWNER/NAME)"
        )
    if number is None:
        missing.append(
            "the merge request IID (pass --pr IID; found automatically in merge request "
            "pipelines)" if forge == "gitlab" else
            "the pull request number (pass --pr N; found automatically in pull_request "
            "workflows)"
        )
    if not token:
        flag = "--github-token TOKEN or --token TOKEN" if forge == "github" else "--token TOKEN"
        missing.append(f"a token (pass {flag}, or set {' or '.join(_TOKEN_ENV[forge])})")
    if forge == "gitea" and not api_url:
        missing.append("the API URL (pass --api-url https://HOST/api/v1)")
    if missing:
        raise UsageError(
            f"posting the report to {_FORGE_NAMES[forge]} needs {_join(missing)}; without "
            "forge options the report is printed, or written with --output FILE"
        )
    assert repo is not None and number is not None and token is not None  # for mypy
    if forge != "gitlab" and (repo.count("/") != 1 or not all(repo.split("/"))):
        raise UsageError(f"--repo must be OWNER/NAME, got {repo!r}")
    return ForgeSettings(forge=forge, repo=repo, number=number, token=token, api_url=api_url,
                         job_token=job_token)


# Outside CI (or when posting to another forge than the CI's own), in this order.
_TOKEN_ENV: dict[Forge, tuple[str, ...]] = {
    "github": ("GITHUB_TOKEN",),
    "gitlab": ("GITLAB_TOKEN", "CI_JOB_TOKEN"),
    "gitea": ("GITEA_TOKEN", "FORGEJO_TOKEN"),
}


def _token_from_env(forge: Forge, env: Mapping[str, str]) -> tuple[str | None, bool]:
    for name in _TOKEN_ENV[forge]:
        if env.get(name):
            return env[name], name == "CI_JOB_TOKEN"
    return None, False


def _api_url_from_env(forge: Forge, env: Mapping[str, str]) -> str | None:
    # GitHub Enterprise users set GITHUB_API_URL (Actions sets it on every runner).
    name = {"github": "GITHUB_API_URL", "gitlab": "CI_API_V4_URL"}.get(forge)
    return (env.get(name) or None) if name else None


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# --- the use case -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CiReportRequest:
    results_dir: Path
    baseline_dir: Path | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)
    report_id: str = DEFAULT_REPORT_ID
    title: str | None = None
    output: Path | None = None
    json_output: Path | None = None
    forge: ForgeSettings | None = None
    # $GITHUB_STEP_SUMMARY, when the job has one.
    step_summary: Path | None = None


@dataclass(frozen=True)
class CiReportOutcome:
    comparison: Comparison
    # The full report: what --output holds and what the CLI prints without a target.
    body: str
    comment_url: str | None = None
    comment_action: CommentAction | None = None
    written: tuple[Path, ...] = ()
    # Neither --output nor a forge was asked for: the CLI prints the body.
    printed: bool = False

    @property
    def regressions(self) -> int:
        return self.comparison.count("regression")

    @property
    def mismatches(self) -> list[str]:
        """Every mismatch, prefixed with its group: `model on engine, suite S: what differs`."""
        return [
            f"{g.key.model} on {g.key.engine}, suite {g.key.suite}: {text}"
            for g in self.comparison.groups
            for text in g.mismatches
        ]



class CiReportService:
    def __init__(
        self,
        *,
        comparer: Comparer,
        renderer: ReportRenderer,
        vcs_host_factory: VcsHostFactory,
    ) -> None:
        self._comparer = comparer
        self._renderer = renderer
        self._vcs_host_factory = vcs_host_factory

    def report(self, request: CiReportRequest) -> CiReportOutcome:
        comparison = self._comparer.compare(
            request.results_dir, request.baseline_dir, thresholds=request.thresholds
        )
        body = self._render(comparison, request, max_chars=None)
        written: list[Path] = []
        if request.output is not None:
            _write_atomically(request.output, body.encode())
            written.append(request.output)
        if request.json_output is not None:
            data = msgspec.json.format(msgspec.json.encode(comparison), indent=2) + b"\n"
            _write_atomically(request.json_output, data)
            written.append(request.json_output)
        if request.step_summary is not None:
            summary = self._render(comparison, request, max_chars=STEP_SUMMARY_MAX_CHARS)
            # The marker only matters in a comment; the step summary is the job's own page.
            summary = summary.removesuffix(report_marker(request.report_id)).rstrip()
            _append(request.step_summary, summary)

        comment: PostedComment | None = None
        action: CommentAction | None = None
        if request.forge is not None:
            settings = request.forge
            host = self._vcs_host_factory(
                forge=settings.forge, api_url=settings.api_url, token=settings.token,
                repo=settings.repo, number=settings.number, job_token=settings.job_token,
            )
            marker = report_marker(request.report_id)
            try:
                comment_body = self._render(comparison, request, max_chars=host.max_body_chars)
                try:
                    comment, action = _post_sticky(host, marker, comment_body)
                except ForgeError as exc:
                    limit = _body_limit_from(exc, len(comment_body))
                    if limit is None or limit >= len(comment_body):
                        raise
                    # The server's limit is below what kitt knew for this forge (an Enterprise
                    # or self-hosted instance): post the report cut to the limit it named.
                    shorter = self._render(comparison, request, max_chars=max(limit, 2000))
                    comment, action = _post_sticky(host, marker, shorter)
            finally:
                close = getattr(host, "close", None)
                if callable(close):
                    close()
        return CiReportOutcome(
            comparison=comparison,
            body=body,
            comment_url=comment.url if comment is not None else None,
            comment_action=action,
            written=tuple(written),
            printed=request.output is None and request.forge is None,
        )

    def _render(
        self, comparison: Comparison, request: CiReportRequest, *, max_chars: int | None
    ) -> str:
        return self._renderer.render(
            comparison, report_id=request.report_id, max_chars=max_chars, title=request.title
        )


_TOO_LONG = re.compile(r"too long \(maximum is (\d+)", re.IGNORECASE)


def _body_limit_from(error: ForgeError, length: int) -> int | None:
    """The body limit a forge named when it refused a comment of `length` characters as too
    long (GitHub answers 422, GitLab 400: "... is too long (maximum is N characters)"); a quarter
    of `length` when it said "too long" without a number; None for any other refusal."""
    if error.status not in (400, 422) or "too long" not in error.message.lower():
        return None
    match = _TOO_LONG.search(error.message)
    return int(match[1]) if match else length // 4


def _post_sticky(host: VcsHost, marker: str, body: str) -> tuple[PostedComment, CommentAction]:
    """One comment per marker: update the one there, or create it (again, when it was deleted
    between finding and updating it)."""
    existing = host.find_comment(marker)
    if existing is None:
        return host.create_comment(body), "created"
    updated = host.update_comment(existing.id, body)
    if updated is not None:
        return updated, "updated"
    return host.create_comment(body), "recreated"


def _write_atomically(path: Path, data: bytes) -> None:
    """Readers (an artifact upload, a later step) see the old file or the new one, never half."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        temp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # e.g. the "directory" is a file: no temp to remove
            temp.unlink(missing_ok=True)
        raise KittError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _append(path: Path, text: str) -> None:
    try:
        with path.open("a", encoding="utf-8") as file:
            file.write(text + "\n\n")
    except OSError as exc:
        raise KittError(
            f"cannot append the report to the step summary {path} (GITHUB_STEP_SUMMARY): "
            f"{exc.strerror or exc}"
        ) from exc
