"""End-to-end tests: the real `kitt` command, real server processes, real sockets."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.storage.filesystem import FilesystemStore


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


def kitt(*args: str, timeout: float = 180, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI the way a user does (a new process, its own stdout and stderr)."""
    return subprocess.run(
        [sys.executable, "-m", "kitt", *args],
        capture_output=True, text=True, timeout=timeout, check=False, **kwargs,  # type: ignore[call-overload]
    )


@pytest.fixture
def store() -> FilesystemStore:
    return FilesystemStore()


@pytest.fixture
def simulated_server() -> Iterator[object]:
    """Starts `python -m adapters.engine.simulated_server` with given args; yields a starter."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> str:
        proc = subprocess.Popen(
            [sys.executable, "-m", "adapters.engine.simulated_server", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        started.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("kitt-simulated listening on "), line
        return line.rsplit(" ", 1)[1].strip()

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=10)


def write_suite(directory: Path, text: str) -> str:
    path = directory / "suite.toml"
    path.write_text(text)
    return str(path)
