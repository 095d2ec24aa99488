"""Access to the composition root from commands (tests pass their own as `obj`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from kitt.container import Container


def container(ctx: click.Context) -> Container:
    root = ctx.find_root()
    if root.obj is None:
        from kitt.container import Container

        root.obj = Container()
    obj: Container = root.obj
    return obj
