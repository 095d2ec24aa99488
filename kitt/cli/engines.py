"""`kitt engines list | setup ENGINE | status [ENGINE] | cleanup`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kitt.cli.app import container
from kitt.cli.exit import ExitCode

if TYPE_CHECKING:
    from kitt.domain.catalogue import Mode
    from kitt.services.engines import EngineRow


@click.group()
def engines() -> None:
    """Set up inference engines and find what kitt left running."""


@engines.command("list")
@click.pass_context
def list_engines(ctx: click.Context) -> None:
    """Every engine kitt can run: modes, pinned image, and what is set up on this machine."""
    from rich.table import Table

    from kitt.cli.console import make_console

    rows = container(ctx).engine_service().rows()
    table = Table(title="engines (plus: simulated, and external for any OpenAI-compatible URL)",
                  title_justify="left")
    for header in ("engine", "modes", "image", "docker", "native", "fixed length"):
        table.add_column(header)
    for row in rows:
        spec = row.spec
        modes = ", ".join(f"{m}*" if m == spec.default_mode else m for m in spec.modes)
        table.add_row(spec.name, modes, spec.docker.image if spec.docker else "-",
                      _status(row, "docker"), _status(row, "native"),
                      "ignore_eos" if spec.fixed_length == "ignore_eos" else "[yellow]no[/]")
    table.caption = "* default mode; `kitt engines setup ENGINE [--mode docker|native]`"
    make_console().print(table)


def _status(row: EngineRow, mode: Mode) -> str:
    from rich.markup import escape

    if mode not in row.spec.modes:
        return "-"
    found = row.availability.get(mode)
    if found:
        return f"[green]{escape(found)}[/]"
    problem = row.problems.get(mode)
    return f"[yellow]{escape(problem)}[/]" if problem else "not set up"


@engines.command()
@click.argument("engine")
@click.option("--mode", type=click.Choice(["docker", "native"]),
              help="Default: the engine's own (vllm: docker; llama-cpp: native).")
@click.option("--image", metavar="REF", help="docker mode: pull this image instead of the "
              "catalogue's pinned one.")
@click.pass_context
def setup(ctx: click.Context, engine: str, mode: str | None, image: str | None) -> None:
    """Make ENGINE usable: pull its image (docker), or install its server (native)."""
    service = container(ctx).engine_service()
    done = service.setup(engine, mode=mode, image=image,  # type: ignore[arg-type]
                         progress=lambda line: click.echo(line, err=True))
    click.echo(done)


@engines.command()
@click.argument("engine", required=False)
@click.pass_context
def status(ctx: click.Context, engine: str | None) -> None:
    """Engines kitt started that are still running (containers and processes)."""
    found, problems = container(ctx).engine_service().instances(engine)
    for mode, instance in found:
        click.echo(f"{instance.engine:<10} {mode:<7} run {instance.run_id}: {instance.description}")
    if not found:
        click.echo("no engine started by kitt is running"
                   + (" (as far as could be checked)" if problems else ""))
    _report(problems)


@engines.command()
@click.pass_context
def cleanup(ctx: click.Context) -> None:
    """Stop and remove every engine kitt left behind (by label / by record)."""
    removed, problems = container(ctx).engine_service().cleanup()
    for line in removed:
        click.echo(line)
    click.echo(f"removed {len(removed)} leftover{'s' if len(removed) != 1 else ''}")
    _report(problems)


def _report(problems: dict[Mode, str]) -> None:
    """A mode that could not be checked is said, and fails the command (exit 1), after the
    other modes were handled."""
    for mode, problem in problems.items():
        click.echo(f"kitt: error: {mode} mode could not be checked: {problem}", err=True)
    if problems:
        click.get_current_context().exit(ExitCode.FAILED)
