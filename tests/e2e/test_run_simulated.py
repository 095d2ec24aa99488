"""`kitt run` end to end against the simulated engine and an external server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from kitt.domain.results import RunMetrics
from tests.e2e.conftest import kitt, write_suite

ACCURACY_SUITE = """
name = "accuracy"
[[scenarios]]
name = "c4"
load = { concurrency = 4, requests = 48, warmup_requests = 4 }
workload = { input_tokens = 64, output_tokens = 32 }
"""

LONG_SUITE = """
name = "long"
[[scenarios]]
name = "c4"
load = { concurrency = 4, requests = 400 }
workload = { input_tokens = 16, output_tokens = 16 }
"""


def engine_processes(marker: str) -> list[int]:
    """PIDs of processes whose command line mentions `marker` (a unique model name)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline and "simulated_server" in cmdline:
            pids.append(int(entry.name))
    return pids


def test_quick_suite_writes_the_five_files_that_decode_with_kitts_schema(tmp_path, store):
    out = tmp_path / "out"
    result = kitt("run", "-m", "demo", "-e", "simulated", "-s", "quick", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "engine.log", "hardware.json", "metrics.json", "requests.jsonl",
        "summary.md"]
    metrics = store.load_metrics(out)
    assert isinstance(metrics, RunMetrics) and metrics.passed
    assert metrics.engine.name == "simulated" and metrics.engine.mode == "simulated"
    assert [s.name for s in metrics.scenarios] == ["chat-c1", "chat-c4"]
    records = list(store.load_requests(out))
    assert sum(not r.warmup for r in records) == 8 + 32
    assert all(r.ok and r.output_tokens == 32 and r.token_source == "usage" for r in records)
    assert store.load_hardware(out).fingerprint == metrics.hardware_fingerprint
    assert "chat-c4" in (out / "summary.md").read_text()


def test_measured_ttft_and_tpot_match_the_engines_known_timing(tmp_path, store):
    out = tmp_path / "out"
    result = kitt("run", "-m", "demo", "-e", "simulated", "-s",
                  write_suite(tmp_path, ACCURACY_SUITE), "-o", str(out),
                  "--engine-arg=--ttft-ms=50", "--engine-arg=--itl-ms=10")
    assert result.returncode == 0, result.stderr
    rep = store.load_metrics(out).scenarios[0].repetitions[0]
    assert rep.completed == 48 and rep.output_length_mismatch == 0
    assert rep.ttft_ms is not None and rep.tpot_ms is not None and rep.itl_ms is not None
    # An accuracy check with a tolerance, not a speed check.
    assert abs(rep.ttft_ms.p50 - 50) < 3, rep.ttft_ms
    assert abs(rep.tpot_ms.p50 - 10) < 1, rep.tpot_ms
    assert abs(rep.itl_ms.p50 - 10) < 1, rep.itl_ms


def test_external_engine_against_a_server_started_separately(tmp_path, store,
                                                             simulated_server):
    url = simulated_server("--served-model-name", "served-a", "--served-model-name", "served-b")
    out = tmp_path / "out"
    ok = kitt("run", "-m", "served-b", "-e", "external", "--endpoint", url, "-s", "quick",
              "-o", str(out))
    assert ok.returncode == 0, ok.stderr
    metrics = store.load_metrics(out)
    assert metrics.engine.mode == "external" and metrics.engine.endpoint == url
    assert metrics.passed

    wrong = kitt("run", "-m", "nope", "-e", "external", "--endpoint", url, "-s", "quick",
                 "-o", str(tmp_path / "wrong"))
    assert wrong.returncode == 1
    assert "'nope' is not served" in wrong.stderr
    assert "served-a, served-b" in wrong.stderr


def test_a_server_that_dies_mid_run_keeps_the_measured_requests(tmp_path, store):
    out = tmp_path / "out"
    marker = f"dies-{uuid.uuid4().hex[:8]}"
    result = kitt("run", "-m", marker, "-e", "simulated", "-s",
                  write_suite(tmp_path, LONG_SUITE), "-o", str(out),
                  "--engine-arg=--exit-after=40")
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "run failed: the engine died during the run" in message
    records = [r for r in store.load_requests(out) if not r.warmup]
    ok = [r for r in records if r.ok]
    assert len(ok) >= 30  # the 40 the server served, minus those in flight when it died
    assert all(r.output_tokens == 16 for r in ok)
    metrics = store.load_metrics(out)
    assert metrics.status == "failed"
    rep = metrics.scenarios[0].repetitions[0]
    assert not rep.complete and rep.completed == len(ok)
    assert rep.failed == sum(rep.errors.values()) == len(records) - len(ok)
    assert set(rep.errors) <= {"truncated", "connection"}
    assert engine_processes(marker) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_kitt_keeps_records_writes_files_and_stops_the_engine(tmp_path, store,
                                                                           signum):
    out = tmp_path / "out"
    marker = f"interrupted-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kitt", "run", "-m", marker, "-e", "simulated", "-s",
         write_suite(tmp_path, LONG_SUITE), "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    requests_file = out / "requests.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if requests_file.exists() and requests_file.read_text().count("\n") >= 20:
            break
        time.sleep(0.05)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    metrics = store.load_metrics(out)
    assert metrics.status == "interrupted"
    assert "requests measured so far are kept" in (metrics.status_reason or "")
    rep = metrics.scenarios[0].repetitions[0]
    assert not rep.complete and rep.completed >= 20
    lines = requests_file.read_text().splitlines()
    assert len(lines) == rep.requests
    assert all(json.loads(line)["ok"] for line in lines)
    assert "interrupted" in stderr
    assert engine_processes(marker) == []


def test_secrets_never_reach_output_or_result_files(tmp_path, simulated_server):
    url = simulated_server("--served-model-name", "m")
    with_credentials = url.replace("http://", "http://alice:hunter2-password@")
    out = tmp_path / "out"
    env = {**os.environ, "KITT_API_KEY": "sk-very-secret-key"}
    result = kitt("run", "-m", "m", "-e", "external", "--endpoint", with_credentials,
                  "-s", "quick", "-o", str(out), env=env)
    assert result.returncode == 0, result.stderr
    for secret in ("hunter2-password", "sk-very-secret-key"):
        assert secret not in result.stdout + result.stderr
        for path in out.iterdir():
            assert secret not in path.read_text(), path.name
    assert "***@" in (out / "metrics.json").read_text()
