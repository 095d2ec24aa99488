"""kitt's command line. Thin: parse -> one service call -> render -> exit code.

This module imports click only; each command's module (and through it the composition root,
httpx, docker...) is imported when that command runs, so `kitt --help` stays fast.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from kitt import __version__
from kitt.cli.exit import ExitCode, exit_code_for_error
from kitt.domain.errors import KittError

# command name -> "module:attribute", imported on first use.
_COMMANDS = {
    "run": ("kitt.cli.run:run", "Run a benchmark suite against an engine."),
    "suites": ("kitt.cli.suites:suites", "List and show benchmark suites."),
    "engines": ("kitt.cli.engines:engines", "Set up engines; find and remove leftovers."),
    "hardware": ("kitt.cli.hardware:hardware", "Describe this machine (hardware.json)."),
    "show": ("kitt.cli.show:show", "Print the results of a finished run."),
    "compare": ("kitt.cli.compare:compare", "Compare results with a baseline (terminal table)."),
    "ci": ("kitt.cli.ci:ci", "Report results on a pull/merge request."),
}


class KittGroup(click.Group):
    """Loads subcommands lazily and turns KittErrors into one line on stderr + an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        module_name, attribute = _COMMANDS[cmd_name][0].split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table above, so that --help imports no command module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, _COMMANDS[name][1]) for name in self.list_commands(ctx)])

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except KittError as exc:
            if os.environ.get("KITT_DEBUG") == "1":
                raise
            click.echo(f"kitt: error: {exc}", err=True)
            ctx.exit(exit_code_for_error(exc))
        except KeyboardInterrupt:
            click.echo("kitt: interrupted", err=True)
            ctx.exit(ExitCode.INTERRUPTED)


@click.group(cls=KittGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, "-V", "--version", prog_name="kitt", message="%(prog)s %(version)s"
)
def cli() -> None:
    """kitt benchmarks LLM inference engines, compares results with a baseline and reports
    regressions on pull requests.

    \b
    Quick start:
      kitt run -m demo -e simulated -s quick -o results/
      kitt run -m MODEL -e external --endpoint http://127.0.0.1:8000 -o results/
    """


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli.main(prog_name="kitt"))
