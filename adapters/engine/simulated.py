"""The simulated engine as an Engine port: kitt's own server (simulated_server) in a child process.

Results say `engine: simulated`; the launch's engine_args go to the server's command line
(`--ttft-ms 50 --itl-ms 10 --fault truncate:7 ...`, see
`python -m adapters.engine.simulated_server --help`).
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time

import kitt
from adapters.engine.process import EngineProcess, log_tail, wait_healthy
from adapters.engine.simulated_server import LISTENING_PREFIX
from kitt.domain.engine import EngineLaunch
from kitt.domain.errors import EngineError
from kitt.domain.results import EngineInfo

SERVER_MODULE = "adapters.engine.simulated_server"
LOG_NAME = "engine.log"
_NAME = "the simulated engine"


class SimulatedRunningEngine:
    """A simulated server that answered its health check."""

    def __init__(self, process: EngineProcess, info: EngineInfo) -> None:
        self._process = process
        self._info = info

    @property
    def endpoint(self) -> str:
        assert self._info.endpoint is not None
        return self._info.endpoint

    @property
    def info(self) -> EngineInfo:
        return self._info

    @property
    def pid(self) -> int:
        """The server's process id, which is also its process group id."""
        return self._process.pid

    def failure(self) -> str | None:
        return self._process.failure()

    def stop(self) -> None:
        self._process.stop()

    def detach(self) -> str:
        return (f"the simulated engine keeps running at {self.endpoint} (pid {self.pid}); "
                f"stop it with: kill -TERM -{self.pid}")


class SimulatedEngine:
    """Starts kitt's simulated OpenAI-compatible server as a child process in its own process
    group, its stderr going to launch.log_dir/engine.log."""

    def __init__(self, *, python: str = sys.executable, stop_grace_s: float = 5.0) -> None:
        self._python = python
        self._stop_grace_s = stop_grace_s

    def start(self, launch: EngineLaunch) -> SimulatedRunningEngine:
        # -P: never import a foreign `adapters` package from the current directory.
        args = ["-P", "-m", SERVER_MODULE, "--port", "0",
                "--served-model-name", launch.model, *launch.engine_args]
        deadline = time.monotonic() + launch.startup_timeout_s
        process = EngineProcess([self._python, *args], launch.log_dir / LOG_NAME, name=_NAME,
                                capture_stdout=True, stop_grace_s=self._stop_grace_s)
        try:
            url = _read_listening_url(process, deadline, launch.startup_timeout_s)
            wait_healthy(f"{url}/health", deadline=deadline, failure=process.failure, name=_NAME)
        except BaseException:  # also Ctrl-C: never leave the server behind
            process.stop()
            raise
        info = EngineInfo(name="simulated", mode="simulated", endpoint=url, binary=self._python,
                          version=kitt.__version__, args=args)
        return SimulatedRunningEngine(process, info)


def _read_listening_url(process: EngineProcess, deadline: float, timeout_s: float) -> str:
    """The URL from the server's one stdout line; EngineError at once if the process exits.
    Closes the pipe afterwards: the server writes nothing else there."""
    stdout = process.process.stdout
    assert stdout is not None
    pending = b""
    with stdout, selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EngineError(
                    f"{_NAME} did not report its address within {timeout_s:g} s; "
                    f"last lines of {process.log_path}:\n{log_tail(process.log_path)}"
                )
            # Wake now and then without output, to notice an exit that left stdout open.
            if not selector.select(min(remaining, 0.5)):
                if (gone := process.failure()) is not None:
                    raise EngineError(gone)
                continue
            chunk = os.read(stdout.fileno(), 4096)
            if not chunk:  # EOF: the process is exiting
                try:
                    process.process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    raise EngineError(f"{_NAME} closed its stdout without reporting its "
                                      "address") from None
                raise EngineError(process.failure() or f"{_NAME} exited")
            pending += chunk
            while b"\n" in pending:
                line, _, pending = pending.partition(b"\n")
                text = line.decode("utf-8", errors="replace").strip()
                if text.startswith(LISTENING_PREFIX):
                    return text.removeprefix(LISTENING_PREFIX)
