"""The rich console every command prints through."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console

# CI logs and pipes have no width; rich would assume 80 columns and squash the tables.
_PIPE_WIDTH = 160


def make_console(*, stderr: bool = False, file: TextIO | None = None) -> Console:
    console = Console(file=file, stderr=stderr and file is None, highlight=False)
    if not console.is_terminal:
        console.width = _PIPE_WIDTH
    return console
