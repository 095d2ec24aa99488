"""Helpers of the end-to-end tests that run real engines natively (llama-server, vLLM)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from adapters.storage.filesystem import FilesystemStore
from kitt.domain.results import RunMetrics


def required(engine: str) -> bool:
    """Whether a missing `engine` fails the test instead of skipping it: KITT_REQUIRE_ENGINES
    is "1" or "all" (CI, after installing them) or a comma-separated list naming it."""
    wanted = {w.strip() for w in os.environ.get("KITT_REQUIRE_ENGINES", "").split(",")}
    return bool(wanted & {"1", "all", engine})


def require(engine: str, found: str | None, how: str) -> str:
    """`found` (what makes the engine usable), or skip / fail saying how to install it."""
    if found:
        return found
    message = f"{engine} is not installed for native mode: {how}"
    if required(engine):
        pytest.fail(f"{message} (KITT_REQUIRE_ENGINES is set, so this is a failure)")
    pytest.skip(f"{message}; set KITT_REQUIRE_ENGINES=1 to make this a failure")


def kitt_interruptible(*args: str, timeout: float,
                       env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the kitt CLI like conftest.kitt, but on timeout interrupt it as a user would
    (SIGINT, so that it stops its engine) before giving up: a test that times out must not
    leave a real engine running."""
    with subprocess.Popen([sys.executable, "-m", "kitt", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=dict(env)) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            try:
                stdout, stderr = process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, stderr = process.communicate()
            pytest.fail(f"kitt {' '.join(args)} took over {timeout:g} s; it was interrupted. "
                        f"Its stderr ended with:\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def processes_mentioning(marker: str) -> list[str]:
    """Command lines of live (not zombie) processes that mention `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(f"{entry.name}: {cmdline}")
    return found


def assert_clean_run(out: Path, store: FilesystemStore, *, engine: str) -> RunMetrics:
    """The acceptance checks shared by the real-engine tests: zero errors, every request (warm-up
    included) exactly the requested length by the server's own count, TTFT and throughput
    positive, the engine recorded as run natively."""
    metrics = store.load_metrics(out)
    assert metrics.status == "complete" and metrics.passed, metrics.status_reason
    assert (metrics.engine.name, metrics.engine.mode) == (engine, "native")
    assert metrics.engine.binary and metrics.engine.version
    records = list(store.load_requests(out))
    assert sum(not r.warmup for r in records) == 8 + 32  # the quick suite
    bad = [r for r in records if not (r.ok and r.token_source == "usage"
                                      and r.output_tokens == r.requested_output_tokens)]
    assert bad == [], bad[:3]
    for scenario in metrics.scenarios:
        for rep in scenario.repetitions:
            assert rep.failed == 0 and rep.output_length_mismatch == 0
            assert rep.ttft_ms is not None and rep.ttft_ms.min > 0
            assert rep.output_throughput_tok_s > 0 and rep.request_throughput_rps > 0
    assert (out / "engine.log").stat().st_size > 0
    return metrics
