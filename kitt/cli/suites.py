"""`kitt suites list | show NAME`."""

from __future__ import annotations

import click

from kitt.cli.app import container


@click.group()
def suites() -> None:
    """List and show benchmark suites."""


@suites.command("list")
@click.pass_context
def list_suites(ctx: click.Context) -> None:
    """List the built-in suites."""
    catalog = container(ctx).suite_catalog()
    for name in catalog.names():
        suite = catalog.load(name)
        scenarios = len(suite.scenarios)
        click.echo(
            f"{name:<12} {scenarios} scenario{'s' if scenarios != 1 else ''}, "
            f"{suite.repetitions} repetition{'s' if suite.repetitions != 1 else ''}: "
            f"{suite.description}"
        )


@suites.command("show")
@click.argument("name")
@click.option("--toml", "as_toml", is_flag=True, help="Print the suite file itself.")
@click.pass_context
def show(ctx: click.Context, name: str, as_toml: bool) -> None:
    """Show the scenarios of a suite (a built-in name or a suite file)."""
    from rich.table import Table

    from kitt.cli.console import make_console

    catalog = container(ctx).suite_catalog()
    if as_toml:
        click.echo(catalog.text(name), nl=False)
        return
    suite = catalog.load(name)
    table = Table(title=f"suite {suite.name}: {suite.description}", title_justify="left")
    for header in ("scenario", "api", "load", "requests", "input tok", "output tok", "SLO"):
        table.add_column(header)
    for s in suite.scenarios:
        load = s.load
        shape = (
            f"closed, concurrency {load.max_in_flight}"
            if load.pattern == "closed"
            else f"{load.pattern} {load.rate_rps:g} req/s"
            + (f", max {load.max_in_flight} in flight" if load.max_in_flight else "")
        )
        bound = " / ".join(
            b for b in (
                None if load.requests is None else str(load.requests),
                None if load.duration_s is None else f"{load.duration_s:g} s",
            ) if b
        )
        slo = ", ".join(
            f"{k} <= {v:g}" for k, v in
            (("TTFT", s.slo.ttft_ms), ("TPOT", s.slo.tpot_ms), ("E2E", s.slo.e2e_ms))
            if v is not None
        ) if s.slo else "-"
        table.add_row(
            s.name, s.workload.api, shape,
            f"{bound} (+{load.warmup_requests} warm-up)",
            str(s.workload.input_tokens), str(s.workload.output_tokens), slo,
        )
    make_console().print(table)
    click.echo(f"repetitions: {suite.repetitions}; max error rate: {suite.max_error_rate:.1%}")
