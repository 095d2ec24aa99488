"""The simulated and external engine adapters against real processes and sockets."""

from __future__ import annotations

import os
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import kitt
from adapters.engine.external import ExternalEngine
from adapters.engine.process import free_port
from adapters.engine.simulated import SimulatedEngine, SimulatedRunningEngine
from kitt.domain.engine import EngineLaunch, redact_url
from kitt.domain.errors import EngineError
from kitt.ports import Engine

pytestmark = pytest.mark.e2e

# Both adapters satisfy the port (checked by mypy).
_ENGINES: tuple[Engine, ...] = (SimulatedEngine(), ExternalEngine())


def launch(tmp_path: Path, **overrides: Any) -> EngineLaunch:
    values: dict[str, Any] = {"engine": "simulated", "model": "sim-model", "mode": "simulated",
                              "run_id": "test-run", "log_dir": tmp_path,
                              "startup_timeout_s": 60.0}
    return EngineLaunch(**(values | overrides))


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def wait_for_failure(engine: SimulatedRunningEngine) -> str:
    deadline = time.monotonic() + 30
    while (failure := engine.failure()) is None:
        assert time.monotonic() < deadline, "the engine never reported its failure"
        time.sleep(0.05)
    return failure


# ---------------------------------------------------------------- simulated


def test_simulated_engine_serves_and_stops_without_leftovers(tmp_path: Path) -> None:
    running = SimulatedEngine().start(launch(tmp_path, engine_args=("--output-tokens", "3")))
    try:
        assert running.endpoint.startswith("http://127.0.0.1:")
        info = running.info
        assert (info.name, info.mode, info.endpoint) == ("simulated", "simulated",
                                                         running.endpoint)
        assert info.version == kitt.__version__
        assert info.binary and Path(info.binary).exists()
        assert info.args[-2:] == ["--output-tokens", "3"]
        with httpx.Client(timeout=10) as client:
            models = client.get(f"{running.endpoint}/v1/models").json()
            assert [m["id"] for m in models["data"]] == ["sim-model"]
            body = client.post(f"{running.endpoint}/v1/completions", json={
                "model": "sim-model", "prompt": "hi", "max_tokens": 10}).json()
            assert body["usage"]["completion_tokens"] == 3  # the engine args reached it
        assert running.failure() is None
        assert (tmp_path / "engine.log").exists()
    finally:
        running.stop()
    assert process_gone(running.pid)
    running.stop()  # idempotent
    assert running.failure() is None  # stopped by kitt: not a failure


def test_bad_engine_args_fail_at_once_with_the_log(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(EngineError) as caught:
        SimulatedEngine().start(launch(tmp_path, engine_args=("--no-such-flag",),
                                       startup_timeout_s=120))
    # Well before the start-up timeout: the exit was noticed, not waited out.
    assert time.monotonic() - started < 60
    message = str(caught.value)
    assert "exited with code 2" in message
    assert "unrecognized arguments: --no-such-flag" in message
    assert str(tmp_path / "engine.log") in message


def test_failure_reports_a_killed_engine(tmp_path: Path) -> None:
    running = SimulatedEngine().start(launch(tmp_path))
    try:
        os.killpg(running.pid, signal.SIGKILL)
        failure = wait_for_failure(running)
        assert "killed by signal SIGKILL" in failure
        assert "serving sim-model" in failure  # its last log lines
    finally:
        running.stop()


def test_failure_reports_an_engine_that_exited(tmp_path: Path) -> None:
    running = SimulatedEngine().start(launch(tmp_path, engine_args=("--exit-after", "0")))
    try:
        with httpx.Client(timeout=10) as client, pytest.raises(httpx.TransportError):
            client.post(f"{running.endpoint}/v1/completions",
                        json={"model": "sim-model", "prompt": "hi"})
        failure = wait_for_failure(running)
        assert "exited with code 3" in failure
        assert "exiting now" in failure
    finally:
        running.stop()


def test_startup_timeout_stops_the_silent_process(tmp_path: Path) -> None:
    # A "python" that never says where it listens.
    silent = tmp_path / "silent-python"
    pid_file = tmp_path / "pid"
    silent.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    silent.chmod(silent.stat().st_mode | stat.S_IEXEC)
    engine = SimulatedEngine(python=str(silent), stop_grace_s=1)
    with pytest.raises(EngineError, match=r"did not report its address within 1 s"):
        engine.start(launch(tmp_path, startup_timeout_s=1))
    assert process_gone(int(pid_file.read_text()))


# ---------------------------------------------------------------- external


@pytest.fixture(scope="module")
def simulated_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    engine = SimulatedEngine().start(launch(
        tmp_path_factory.mktemp("external"), model="sim-a",
        engine_args=("--served-model-name", "sim-b"),
    ))
    yield engine.endpoint
    engine.stop()


def external(tmp_path: Path, endpoint: str | None, model: str = "sim-a",
             timeout_s: float = 30.0) -> EngineLaunch:
    return launch(tmp_path, engine="external", mode="external", model=model,
                  endpoint=endpoint, startup_timeout_s=timeout_s)


def test_external_engine_reaches_a_running_server(simulated_server: str, tmp_path: Path) -> None:
    running = ExternalEngine().start(external(tmp_path, f" {simulated_server}/v1/ "))
    assert running.endpoint == simulated_server
    assert running.info.name == "external" and running.info.mode == "external"
    assert running.info.endpoint == simulated_server
    assert running.info.version == kitt.__version__  # GET /version, as vLLM answers it
    assert running.failure() is None
    running.stop()
    with httpx.Client() as client:  # stop() left the server alone
        assert client.get(f"{simulated_server}/health").status_code == 200


def test_external_engine_names_the_models_on_offer(simulated_server: str,
                                                   tmp_path: Path) -> None:
    with pytest.raises(EngineError) as caught:
        ExternalEngine().start(external(tmp_path, simulated_server, model="gpt-9"))
    message = str(caught.value)
    assert f"model 'gpt-9' is not served at {simulated_server}; it offers: sim-a, sim-b" \
        in message
    assert "-m" in message


def test_external_engine_needs_an_endpoint(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="--endpoint"):
        ExternalEngine().start(external(tmp_path, None))
    with pytest.raises(EngineError, match="not an http"):
        ExternalEngine().start(external(tmp_path, "ftp://example.com"))


def test_external_engine_gives_up_on_an_unreachable_url(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://user:hunter2@127.0.0.1:{port}"
    started = time.monotonic()
    with pytest.raises(EngineError) as caught:
        ExternalEngine().start(external(tmp_path, url, timeout_s=1.0))
    assert time.monotonic() - started >= 1.0  # it kept trying until the timeout
    message = str(caught.value)
    assert f"GET http://***@127.0.0.1:{port}/v1/models" in message
    assert "within 1 s" in message and "tried" in message
    assert "hunter2" not in message


def test_credentials_are_redacted_from_the_engine_info(simulated_server: str,
                                                       tmp_path: Path) -> None:
    with_password = simulated_server.replace("http://", "http://me:s3cret@")
    running = ExternalEngine().start(external(tmp_path, with_password))
    assert running.endpoint == with_password  # the client needs them
    assert running.info.endpoint == simulated_server.replace("http://", "http://***@")
    assert redact_url("https://h:1/v1") == "https://h:1/v1"
