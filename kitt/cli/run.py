"""`kitt run`: benchmark one engine with one suite."""

from __future__ import annotations

import os
from pathlib import Path

import click

from kitt.cli.app import container
from kitt.cli.exit import ExitCode, exit_code_for_run


@click.command()
@click.option("-m", "--model", required=True,
              help="Model to serve/benchmark (name served by the engine, a path, or an alias).")
@click.option("-e", "--engine", required=True,
              help="Engine: vllm, sglang, llama-cpp, tgi, ollama (kitt engines list); simulated "
              "(kitt's own, for dry runs); external (any OpenAI-compatible server, --endpoint).")
@click.option("-s", "--suite", default="quick", show_default=True,
              help="Built-in suite name (kitt suites list) or path to a suite .toml file.")
@click.option("-o", "--output", "output_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("results"), show_default=True,
              help="Directory for metrics.json, summary.md, hardware.json, config.json, "
              "requests.jsonl (an earlier run's files there are replaced).")
@click.option("--mode", type=click.Choice(["docker", "native", "external"]),
              help="How to run the engine (default: the engine's own; external with --endpoint).")
@click.option("--endpoint", metavar="URL",
              help="Base URL of a running OpenAI-compatible server (external mode). An API key, "
              "if needed, is read from KITT_API_KEY or OPENAI_API_KEY.")
@click.option("--image", metavar="REF",
              help="docker mode: run this image instead of the catalogue's pinned one.")
@click.option("--gpus", metavar="all|IDS",
              help="docker mode: GPUs to give the engine ('all', or '0,1'); default: all visible "
              "GPUs, none on a CPU-only machine.")
@click.option("--no-teardown", is_flag=True,
              help="Leave the engine running after the run (kitt says how to stop it; "
              "`kitt engines cleanup` removes leftovers).")
@click.option("--engine-arg", "engine_args", multiple=True, metavar="ARG",
              help="Extra argument for the engine's launch (repeatable), e.g. "
              "--engine-arg=--ttft-ms=50 for the simulated engine.")
@click.option("--runs", type=click.IntRange(min=1),
              help="Repetitions of every scenario (default: the suite's).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the synthetic prompts and arrival times.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True),
              default=600.0, show_default=True,
              help="Seconds to wait for the engine to become healthy (an engine that exits is "
              "reported at once).")
@click.pass_context
def run(
    ctx: click.Context,
    model: str,
    engine: str,
    suite: str,
    output_dir: Path,
    mode: str | None,
    endpoint: str | None,
    image: str | None,
    gpus: str | None,
    no_teardown: bool,
    engine_args: tuple[str, ...],
    runs: int | None,
    seed: int,
    timeout_s: float,
) -> None:
    """Run a benchmark suite against an engine and write the result files.

    Exit codes: 0 all scenarios passed; 1 benchmark failure (engine failed, too many request
    errors); 2 usage error; 130 interrupted (the files are still written, marked interrupted).
    """
    from kitt.cli.progress import ConsoleProgress
    from kitt.cli.render import print_results
    from kitt.services.benchmark import RunRequest

    service = container(ctx).benchmark_service()
    request = RunRequest(
        model=model,
        engine=engine,
        suite=suite,
        output_dir=output_dir,
        mode=mode,  # type: ignore[arg-type]
        endpoint=endpoint,
        image=image,
        gpus=gpus,
        teardown=not no_teardown,
        engine_args=engine_args,
        runs=runs,
        seed=seed,
        startup_timeout_s=timeout_s,
        api_key=os.environ.get("KITT_API_KEY") or os.environ.get("OPENAI_API_KEY"),
        env=dict(os.environ),
    )
    with ConsoleProgress() as progress:
        outcome = service.run(request, progress)
    metrics = outcome.metrics
    out = ConsoleProgress(live=False).console  # stderr: stdout stays clean for pipes
    print_results(out, metrics)
    code = exit_code_for_run(metrics)
    if metrics.status != "complete":
        out.print(f"[red]run {metrics.status}[/]: {metrics.status_reason}")
    elif code != ExitCode.OK:
        out.print("[red]benchmark failed[/]: see the reasons above")
    out.print(f"results written to {outcome.directory}/")
    ctx.exit(code)
