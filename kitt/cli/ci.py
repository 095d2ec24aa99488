"""`kitt ci report`: compare with a baseline, report on the pull/merge request, gate the merge."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import click

from kitt.cli.app import container

FORGE_CHOICES = ("github", "gitlab", "gitea")
# Environment variables that may hold a token: their values never appear in a message.
TOKEN_ENV_VARS = ("GITHUB_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN", "GITEA_TOKEN", "FORGEJO_TOKEN")
_TOKEN_OPTIONS = ("--token", "--github-token")


class _TokenSafeCommand(click.Command):
    """Keeps tokens out of click's own usage errors: click echoes unexpected arguments and bad
    values, and a token pasted in the wrong place would land in the CI log."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            secrets = _token_values(args, os.environ)
            message = exc.format_message()
            if message.startswith("Got unexpected extra argument"):
                message = (
                    "got unexpected extra arguments (not shown: they may hold a token); "
                    "every value needs its option, e.g. --token TOKEN"
                )
            for secret in secrets:
                message = message.replace(secret, "***")
            raise click.UsageError(message, ctx) from None


def _token_values(args: Sequence[str], env: Mapping[str, str]) -> list[str]:
    values = [env[name] for name in TOKEN_ENV_VARS if env.get(name)]
    for i, arg in enumerate(args):
        for option in _TOKEN_OPTIONS:
            if arg == option and i + 1 < len(args):
                values.append(args[i + 1])
            elif arg.startswith(option + "="):
                values.append(arg.partition("=")[2])
    # Longest first, so that a token containing another is hidden whole. Real tokens are long;
    # hiding a value like "x" would garble the message and protect nothing.
    return sorted((v for v in values if len(v) >= 6), key=len, reverse=True)


def _parse_thresholds(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, float]:
    from kitt.domain.errors import UsageError
    from kitt.services.comparison import parse_thresholds

    try:
        return parse_thresholds(values)
    except UsageError as exc:  # as click's own error, so that _TokenSafeCommand screens it
        raise click.UsageError(exc.message, ctx) from None


@click.group()
def ci() -> None:
    """Report results on a pull/merge request, for CI jobs."""


@ci.command(cls=_TokenSafeCommand)
@click.option("--results-dir", required=True, type=click.Path(path_type=Path), metavar="DIR",
              help="Current results: a `kitt run -o` directory, or one holding many runs "
              "(metrics.json at any depth, e.g. a CI matrix).")
@click.option("--baseline-dir", type=click.Path(path_type=Path), metavar="DIR",
              help="Baseline results. Missing or empty is fine: the report then says that no "
              "baseline was found and shows the current results alone.")
@click.option("--forge", type=click.Choice(FORGE_CHOICES),
              help="Forge to post on (default: the CI's own, detected; else github).")
@click.option("--repo", metavar="OWNER/NAME",
              help="Repository (GitLab: project path or ID). Detected inside GitHub Actions, "
              "GitLab CI and Gitea Actions.")
@click.option("--pr", "number", type=click.IntRange(min=1), metavar="N",
              help="Pull request number (GitLab: merge request IID). Detected in pull request "
              "and merge request pipelines.")
@click.option("--api-url", metavar="URL",
              help="API base URL (default: GITHUB_API_URL or https://api.github.com; "
              "CI_API_V4_URL or https://gitlab.com/api/v4; Gitea: detected in Gitea Actions).")
@click.option("--token", metavar="TOKEN",
              help="Forge token (default from the environment: GITHUB_TOKEN; GITLAB_TOKEN, "
              "then CI_JOB_TOKEN; GITEA_TOKEN, then FORGEJO_TOKEN). Never printed.")
@click.option("--github-token", metavar="TOKEN",
              help="GitHub token; implies --forge github (default: GITHUB_TOKEN). Never printed.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write the full report (Markdown) to FILE.")
@click.option("--json", "json_output", type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE", help="Write the comparison (every verdict, as data) to FILE.")
@click.option("--fail-on-regression", is_flag=True,
              help="Exit 1 when a metric regressed (or when the sides are not like for like).")
@click.option("--allow-mismatch", is_flag=True,
              help="Gate even when hardware, model or engine version differ between the sides.")
@click.option("--threshold", "thresholds", multiple=True, metavar="METRIC=PCT",
              callback=_parse_thresholds,
              help="Change a metric must exceed to count, in % (error_rate: percentage "
              "points), e.g. ttft_ms.p99=10, or ttft_ms=8 for all TTFT statistics; repeatable; "
              "overrides the suite's thresholds and the defaults.")
@click.option("--report-id", metavar="ID",
              help="Identifies this report's comment: one comment per ID, updated by later runs. "
              "Give each matrix job its own (default: derived from the CI job).")
@click.option("--title", metavar="TEXT", help="Shown on the report's first line.")
@click.pass_context
def report(
    ctx: click.Context,
    results_dir: Path,
    baseline_dir: Path | None,
    forge: str | None,
    repo: str | None,
    number: int | None,
    api_url: str | None,
    token: str | None,
    github_token: str | None,
    output: Path | None,
    json_output: Path | None,
    fail_on_regression: bool,
    allow_mismatch: bool,
    thresholds: dict[str, float],
    report_id: str | None,
    title: str | None,
) -> None:
    """Compare the current results with a baseline, report, and gate.

    \b
    Targets (combinable):
      --output FILE            write the report
      forge options            post ONE comment on the pull/merge request, updated in place
                               by later runs (any of --forge, --repo, --pr, --api-url,
                               --token, --github-token asks for posting; what is not given
                               is taken from the CI environment)
      neither                  print the report to stdout
    Inside GitHub Actions the report is also added to the job's step summary.

    Exit codes: 0 success (also with regressions, without --fail-on-regression, and without
    a baseline); 1 missing or invalid results, forge API error, or with --fail-on-regression
    a regression or a hardware/model/engine mismatch (unless --allow-mismatch); 2 usage error.
    """
    from kitt.cli.exit import gate_report
    from kitt.domain.ci import default_report_id
    from kitt.domain.errors import UsageError
    from kitt.domain.report import report_id_problem
    from kitt.services.ci_report import (
        CiReportRequest,
        ForgeOptions,
        detect_ci_target,
        resolve_forge,
    )

    env = dict(os.environ)
    if report_id is not None and (problem := report_id_problem(report_id)) is not None:
        raise UsageError(f"--report-id {report_id!r} cannot be used: {problem}")
    options = ForgeOptions(forge=forge, api_url=api_url, repo=repo, number=number, token=token,
                           github_token=github_token)
    settings = resolve_forge(options, env, detect_ci_target(env) if options.requested else None)
    request = CiReportRequest(
        results_dir=results_dir,
        baseline_dir=baseline_dir,
        thresholds=thresholds,
        report_id=report_id or default_report_id(env),
        title=title,
        output=output,
        json_output=json_output,
        forge=settings,
        step_summary=Path(env["GITHUB_STEP_SUMMARY"]) if env.get("GITHUB_STEP_SUMMARY") else None,
    )
    outcome = container(ctx).ci_report_service().report(request)

    if outcome.printed:
        click.echo(outcome.body)
    _note(f"{outcome.regressions} regression{'' if outcome.regressions == 1 else 's'}"
          if outcome.comparison.baseline_found
          else f"no baseline found{f' in {baseline_dir}' if baseline_dir else ''}: "
          "reported the current results alone")
    if output is not None:
        _note(f"report written to {output}")
    if json_output is not None:
        _note(f"comparison written to {json_output}")
    if request.step_summary is not None:
        _note("report added to the job's step summary")
    if outcome.comment_action is not None:
        verb = {"created": "posted", "updated": "updated",
                "recreated": "posted again (the earlier one was deleted)"}
        _note(f"comment {verb[outcome.comment_action]}: {outcome.comment_url or '(no URL)'}")
    if outcome.mismatches and not (fail_on_regression and not allow_mismatch):
        _note("warning: the baseline is not like for like: " + "; ".join(outcome.mismatches))

    gate = gate_report(outcome.comparison, fail_on_regression=fail_on_regression,
                       allow_mismatch=allow_mismatch)
    if gate.reason:
        _note(gate.reason)
    ctx.exit(gate.code)


def _note(message: str) -> None:
    """Status goes to stderr: stdout holds the report alone, for pipes."""
    click.echo(f"kitt: {message}", err=True)
