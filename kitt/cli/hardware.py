"""`kitt hardware [--json]`."""

from __future__ import annotations

import click

from kitt.cli.app import container


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print hardware.json.")
@click.pass_context
def hardware(ctx: click.Context, as_json: bool) -> None:
    """Describe this machine: what results measured here are comparable with."""
    import msgspec

    info = container(ctx).hardware_probe().probe()
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(info), indent=2).decode())
        return
    host = info.host
    click.echo(f"fingerprint:  {info.fingerprint}")
    click.echo(f"cpu:          {host.cpu_model} ({host.physical_cores or '?'} cores, "
               f"{host.logical_cores} threads)")
    click.echo(f"memory:       {host.memory_bytes / 2**30:.1f} GiB")
    click.echo(f"os:           {host.os}, kernel {host.kernel}, {host.architecture}")
    isolation = ", ".join(filter(None, [host.container, host.virtualization]))
    if isolation:
        click.echo(f"isolation:    {isolation}")
    for gpu in info.gpus:
        click.echo(f"gpu {gpu.index}:        {gpu.name}, {gpu.memory_bytes / 2**30:.0f} GiB")
    if not info.gpus:
        click.echo(f"gpus:         none ({info.gpu_note or 'no GPU visible'})")
