"""Helpers shared by the engine adapters that start or reach a server: ports, polling with
backoff, process groups, log tails, and URLs fit to show a user."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import httpx

from kitt.domain.engine import redact_url
from kitt.domain.errors import EngineError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (for engines that cannot be told to pick one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def backoff(
    initial_s: float = 0.05, maximum_s: float = 1.0, factor: float = 2.0
) -> Iterator[float]:
    """Delays between polls: quick at first (a local server is up in milliseconds), then
    spaced out so that a slow engine is not hammered."""
    delay = initial_s
    while True:
        yield delay
        delay = min(maximum_s, delay * factor)


def sleep_until_next(delays: Iterator[float], deadline: float) -> bool:
    """Sleep the next backoff delay, cut short at `deadline` (time.monotonic()); False when the
    deadline has passed and there is no time left for another try."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return False
    time.sleep(min(next(delays), remaining))
    return True


def attempt_timeout(deadline: float, at_most_s: float) -> float:
    """Seconds one attempt may take: at most `at_most_s`, and not far past `deadline`."""
    return max(0.1, min(at_most_s, deadline - time.monotonic()))


def wait_healthy(
    url: str,
    *,
    deadline: float,
    failure: Callable[[], str | None],
    name: str,
) -> None:
    """Poll GET `url` until it answers 200. Raise EngineError at once when `failure()` says the
    engine is gone, or when `deadline` (time.monotonic()) passes."""
    delays = backoff()
    last = "no answer yet"
    with httpx.Client(trust_env=False) as client:
        while True:
            gone = failure()
            if gone is not None:
                raise EngineError(gone)
            try:
                response = client.get(url, timeout=attempt_timeout(deadline, 2.0))
            except httpx.HTTPError as e:
                last = f"{type(e).__name__}: {e}"
            else:
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            if not sleep_until_next(delays, deadline):
                raise EngineError(
                    f"{name} did not become healthy in time: GET {redact_url(url)} "
                    f"last gave {last}. Raise the start-up timeout if the engine is just slow."
                )


def describe_exit(returncode: int) -> str:
    """'exited with code 2' or 'was killed by signal SIGKILL'."""
    if returncode < 0:
        try:
            return f"was killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def log_tail(path: Path, lines: int = 20, *, max_bytes: int = 64 * 1024) -> str:
    """The last `lines` lines of a log file (reading at most its last `max_bytes`), or a note
    saying why there are none."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError as e:
        return f"(no log: {e.strerror or e})"
    text = data.decode("utf-8", errors="replace").rstrip()
    return "\n".join(text.splitlines()[-lines:]) if text else "(the log is empty)"


class EngineProcess:
    """An engine server run as a child process in its own process group (so that stopping it
    also stops anything it started, and a Ctrl-C meant for kitt does not reach it first), with
    its stderr appended to a log file. stdout is a pipe when `capture_stdout`, else the log."""

    def __init__(self, argv: Sequence[str], log_path: Path, *, name: str,
                 capture_stdout: bool = False, stop_grace_s: float = 5.0,
                 env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_path
        self._stop_grace_s = stop_grace_s
        self._stopped = False
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if capture_stdout else log, stderr=log,
                start_new_session=True, env=None if env is None else dict(env),
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def failure(self) -> str | None:
        """Why the process is gone, with its last log lines; None while it runs or once stopped."""
        if self._stopped:
            return None
        code = self.process.poll()
        if code is None:
            return None
        return (f"{self.name} (pid {self.process.pid}) {describe_exit(code)}; "
                f"last lines of {self.log_path}:\n{log_tail(self.log_path)}")

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after the grace period. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.stdout is not None:
            self.process.stdout.close()
        stop_process_group(self.process, self._stop_grace_s)


def stop_process_group(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the process group led by `process` (started with start_new_session=True), then
    SIGKILL whatever is left after `grace_s`. Reaps the leader."""
    pgid = process.pid
    _signal_group(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL follows
        process.wait(timeout=grace_s)
    # Also when the leader obeyed: a child it left behind would keep the group (a port) alive.
    _signal_group(pgid, signal.SIGKILL)
    process.wait()
    # SIGKILL is delivered asynchronously: give the rest of the group a moment to be gone, so
    # that "stopped" means no process of it remains (its port is free, tests see nothing).
    deadline = time.monotonic() + 2.0
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return  # the whole group is already gone


