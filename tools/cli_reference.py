"""Writes docs/cli.md from the commands' own --help, so the reference cannot drift from the code.

    python tools/cli_reference.py          # rewrite docs/cli.md
    python tools/cli_reference.py --check  # exit 1 if docs/cli.md is out of date
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

from kitt.cli import cli

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def _commands(
    group: click.Group, ctx: click.Context
) -> Iterator[tuple[click.Context, click.Command]]:
    """Every subcommand with its context (which carries the root's help settings)."""
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        sub_ctx = click.Context(command, info_name=name, parent=ctx)
        yield sub_ctx, command
        if isinstance(command, click.Group):
            yield from _commands(command, sub_ctx)


def render() -> str:
    root = click.Context(cli, info_name="kitt", terminal_width=100, max_content_width=100,
                         **cli.context_settings)
    parts = [
        "# CLI reference\n",
        "Generated from `kitt ... --help` by `tools/cli_reference.py`; do not edit by hand.\n",
        "Exit codes: 0 success; 1 benchmark failure, missing or invalid results, API error; "
        "2 usage error; 130 interrupted.\n",
        "## kitt\n", "```text", cli.get_help(root), "```\n",
    ]
    for ctx, command in _commands(cli, root):
        parts += [f"## {ctx.command_path}\n", "```text", command.get_help(ctx), "```\n"]
    return "\n".join(parts)


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT} is out of date: run python tools/cli_reference.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
