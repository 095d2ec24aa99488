"""`kitt show RESULTS_DIR`: the results table of a finished run, read back from its files."""

from __future__ import annotations

from pathlib import Path

import click

from kitt.cli.app import container


@click.command()
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.pass_context
def show(ctx: click.Context, results_dir: Path) -> None:
    """Print the results of the run(s) in RESULTS_DIR (metrics.json at any depth)."""
    from kitt.cli.console import make_console
    from kitt.cli.render import print_results
    from kitt.domain.errors import ResultFileError

    store = container(ctx).result_store()
    runs = store.find_runs(results_dir)
    if not runs:
        raise ResultFileError(
            f"no metrics.json in {results_dir} or below: `kitt run -o {results_dir}` writes one"
        )
    console = make_console()
    for directory in runs:
        metrics = store.load_metrics(directory)
        console.print(f"[bold]{directory}[/]: run {metrics.run_id}, {metrics.status}"
                      + (f" ({metrics.status_reason})" if metrics.status_reason else ""))
        print_results(console, metrics)
