"""`kitt run --mode docker` end to end: the real CLI in a subprocess, the real Docker daemon, a
real llama-server image (imported locally, tests/docker_images.py) serving SmolLM2.

Whatever happens (a normal run, a health timeout, an engine that dies on start-up or mid-run,
SIGINT or SIGTERM to kitt), no container labelled with the run's id may be left afterwards.
Skips without a daemon, except in CI (KITT_REQUIRE_DOCKER), where it fails.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kitt.domain.results import RunMetrics
from tests.docker_images import (
    docker_client,
    kitt_containers,
    llama_server_image_or_skip,
    remove_containers,
    smollm2_gguf_or_skip,
)
from tests.e2e.conftest import kitt, write_suite

SMALL_SUITE = """
name = "docker-small"
[[scenarios]]
name = "c2"
load = { concurrency = 2, requests = 6, warmup_requests = 2 }
workload = { input_tokens = 32, output_tokens = 8 }
"""

# Long enough to be interrupted or killed in the middle.
LONG_SUITE = """
name = "docker-long"
[[scenarios]]
name = "c2"
load = { concurrency = 2, requests = 2000, warmup_requests = 1 }
workload = { input_tokens = 16, output_tokens = 8 }
"""


@pytest.fixture(scope="module")
def client() -> Any:
    return docker_client()


@pytest.fixture(scope="module")
def image(client: Any) -> str:
    return llama_server_image_or_skip(client)


@pytest.fixture
def model(tmp_path: Path, client: Any) -> Iterator[str]:
    """The GGUF under a path unique to the test: kitt serves it under that name (the
    llama-server --alias), which lets the test find its container before it knows the run id.
    Whatever a failing test leaves is removed afterwards."""
    link = tmp_path / "model" / "smollm2.gguf"
    link.parent.mkdir()
    link.symlink_to(smollm2_gguf_or_skip())
    yield str(link)
    remove_containers(client, [c for c in kitt_containers(client) if str(link) in c["Command"]])


def docker_run(model: str, image: str, suite: str, out: Path, *extra: str) -> list[str]:
    return ["run", "-m", model, "-e", "llama-cpp", "--mode", "docker", "--image", image,
            "-s", suite, "-o", str(out), *extra]


def metrics_of(out: Path) -> RunMetrics:
    import msgspec

    return msgspec.json.decode((out / "metrics.json").read_bytes(), type=RunMetrics)


def assert_no_container_left(client: Any, out: Path) -> RunMetrics:
    metrics = metrics_of(out)
    leftovers = kitt_containers(client, metrics.run_id)
    remove_containers(client, leftovers)  # so that one failure does not leak into the next
    assert leftovers == [], f"containers of run {metrics.run_id} were left behind"
    return metrics


def container_serving(client: Any, model: str, timeout_s: float = 120) -> str:
    """The id of kitt's container that serves `model` (found by its --alias), once it runs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for entry in kitt_containers(client):
            if model in entry["Command"] and entry["State"] == "running":
                return str(entry["Id"])
        time.sleep(0.1)
    raise AssertionError(f"no kitt container serving {model} appeared")


@contextlib.contextmanager
def kitt_in_background(args: list[str]) -> Iterator[subprocess.Popen[str]]:
    """`kitt ARGS` running; on the way out a kitt still running gets SIGTERM (never SIGKILL: it
    must be able to remove its container)."""
    proc = subprocess.Popen([sys.executable, "-m", "kitt", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.communicate(timeout=60)


def stderr_at_exit(proc: subprocess.Popen[str], timeout_s: float = 120) -> str:
    return proc.communicate(timeout=timeout_s)[1]


def wait_for_measured(out: Path, count: int, proc: subprocess.Popen[str],
                      timeout_s: float = 180) -> None:
    """Wait until `count` measured (not warm-up) requests succeeded."""
    requests_file = out / "requests.jsonl"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if requests_file.exists():
            lines = [json.loads(line) for line in requests_file.read_text().splitlines()
                     if line.endswith("}")]
            if sum(r["ok"] and not r.get("warmup") for r in lines) >= count:
                return
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} requests succeeded in {timeout_s} s")


def test_a_docker_run_completes_and_leaves_no_container(tmp_path, client, image, model, store):
    out = tmp_path / "out"
    result = kitt(*docker_run(model, image, write_suite(tmp_path, SMALL_SUITE), out),
                  timeout=600)
    assert result.returncode == 0, result.stderr
    metrics = assert_no_container_left(client, out)
    assert metrics.status == "complete"
    engine = metrics.engine
    assert (engine.name, engine.mode, engine.image) == ("llama-cpp", "docker", image)
    assert engine.image_digest == client.images.get(image).id
    assert engine.version and engine.args[:2] == ["-m", "/models/SmolLM2-135M-Instruct.Q4_1.gguf"]
    records = [r for r in store.load_requests(out) if not r.warmup]
    assert len(records) == 6 and all(r.ok and r.output_tokens == 8 for r in records)
    assert store.load_config(out).engine.image == image
    assert "listening on" in (out / "engine.log").read_text()


def test_a_health_timeout_fails_the_run_and_removes_the_container(tmp_path, client, image,
                                                                   model):
    out = tmp_path / "out"
    # A later --port wins: the server listens where the mapped port does not lead.
    result = kitt(*docker_run(model, image, write_suite(tmp_path, SMALL_SUITE), out,
                              "--timeout", "5", "--engine-arg=--port", "--engine-arg=9999"))
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "did not become healthy in time" in message
    assert "Last lines of its log" in message
    metrics = assert_no_container_left(client, out)
    assert metrics.status == "failed"


def test_an_engine_that_exits_on_start_up_is_reported_within_seconds(tmp_path, client, image,
                                                                      model):
    out = tmp_path / "out"
    started = time.monotonic()
    result = kitt(*docker_run(model, image, write_suite(tmp_path, SMALL_SUITE), out,
                              "--timeout", "600", "--engine-arg=--no-such-flag"))
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert elapsed < 60, f"took {elapsed:.0f} s: kitt waited instead of noticing the exit"
    assert "exited with code 1" in result.stderr
    assert "invalid argument: --no-such-flag" in result.stderr  # the engine's own last words
    assert assert_no_container_left(client, out).status == "failed"


def test_an_engine_killed_mid_run_fails_the_run_and_keeps_the_records(tmp_path, client, image,
                                                                       model, store):
    out = tmp_path / "out"
    with kitt_in_background(docker_run(model, image, write_suite(tmp_path, LONG_SUITE),
                                       out)) as proc:
        container = container_serving(client, model)
        wait_for_measured(out, 3, proc)
        client.api.kill(container)
        stderr = stderr_at_exit(proc)
    assert proc.returncode == 1, stderr
    message = " ".join(stderr.split())
    assert "the engine died during the run" in message
    assert "was killed (SIGKILL, exit code 137)" in message
    metrics = assert_no_container_left(client, out)
    assert metrics.status == "failed"
    ok = [r for r in store.load_requests(out) if r.ok and not r.warmup]
    assert len(ok) >= 3 and all(r.output_tokens == 8 for r in ok)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_kitt_writes_the_files_and_removes_the_container(tmp_path, client, image,
                                                                      model, store, signum):
    out = tmp_path / "out"
    with kitt_in_background(docker_run(model, image, write_suite(tmp_path, LONG_SUITE),
                                       out)) as proc:
        container_serving(client, model)
        wait_for_measured(out, 3, proc)
        proc.send_signal(signum)
        stderr = stderr_at_exit(proc)
    assert proc.returncode == 130, stderr
    metrics = assert_no_container_left(client, out)
    assert metrics.status == "interrupted"
    assert metrics.scenarios[0].repetitions[0].completed >= 3
    assert sum(r.ok for r in store.load_requests(out) if not r.warmup) >= 3


def test_interrupting_kitt_while_the_engine_starts_removes_the_container(tmp_path, client,
                                                                         image, model):
    out = tmp_path / "out"
    never_healthy = ("--engine-arg=--port", "--engine-arg=9999")
    with kitt_in_background(docker_run(model, image, write_suite(tmp_path, SMALL_SUITE), out,
                                       *never_healthy)) as proc:
        container_serving(client, model)
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        stderr = stderr_at_exit(proc)
    assert proc.returncode == 130, stderr
    assert assert_no_container_left(client, out).status == "interrupted"


def test_an_image_that_is_missing_and_cannot_be_pulled_says_what_to_do(tmp_path, client,
                                                                       model):
    out = tmp_path / "out"
    result = kitt(*docker_run(model, "registry.invalid/kitt/none:1",
                              write_suite(tmp_path, SMALL_SUITE), out))
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "image registry.invalid/kitt/none:1 is not on this machine and could not be pulled" \
        in message
    assert "kitt engines setup llama-cpp" in message


def test_gpus_asked_for_on_a_cpu_machine_fail_clearly(tmp_path, client, image, model):
    if Path("/dev/nvidia0").exists() or "nvidia" in (client.info().get("Runtimes") or {}):
        pytest.skip("this host has GPUs")
    out = tmp_path / "out"
    result = kitt(*docker_run(model, image, write_suite(tmp_path, SMALL_SUITE), out,
                              "--gpus", "all"))
    assert result.returncode == 1
    assert "GPU requested (--gpus all) but none visible" in " ".join(result.stderr.split())
