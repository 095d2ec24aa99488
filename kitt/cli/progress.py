"""Live progress of a run: rich on a terminal, one line per repetition otherwise (CI logs)."""

from __future__ import annotations

import threading
import time
from typing import TextIO

from rich.console import Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from kitt.cli.console import make_console
from kitt.domain.records import RequestRecord
from kitt.domain.stats import median


class _Repetition:
    """Running figures of the repetition in progress. Appended to on the event loop, read by
    the display thread; plain list appends and float reads are safe under the GIL."""

    def __init__(self, scenario: str, repetition: int, repetitions: int, total: int | None):
        self.scenario = scenario
        self.repetition = repetition
        self.repetitions = repetitions
        self.total = total
        self.done = 0
        self.failed = 0
        self.ttft_ms: list[float] = []
        self.output_tokens = 0
        self.first_start_ms: float | None = None
        self.last_end_ms = 0.0
        self.started = time.monotonic()

    def add(self, record: RequestRecord) -> None:
        if record.warmup:
            return
        self.done += 1
        if not record.ok:
            self.failed += 1
            return
        if record.ttft_ms is not None:
            self.ttft_ms.append(record.ttft_ms)
        self.output_tokens += record.output_tokens or 0
        if self.first_start_ms is None or record.start_ms < self.first_start_ms:
            self.first_start_ms = record.start_ms
        self.last_end_ms = max(self.last_end_ms, record.end_ms)

    def ttft_p50(self) -> float | None:
        return median(list(self.ttft_ms)) if self.ttft_ms else None

    def output_tok_s(self) -> float | None:
        if self.first_start_ms is None or self.last_end_ms <= self.first_start_ms:
            return None
        return self.output_tokens / ((self.last_end_ms - self.first_start_ms) / 1000)

    def line(self) -> str:
        ttft, tps = self.ttft_p50(), self.output_tok_s()
        return (
            f"{self.scenario} rep {self.repetition}/{self.repetitions}: "
            f"{self.done}{'' if self.total is None else f'/{self.total}'} requests"
            f"{f', {self.failed} failed' if self.failed else ''}, "
            f"TTFT p50 {'-' if ttft is None else f'{ttft:.1f} ms'}, "
            f"{'-' if tps is None else f'{tps:.0f}'} output tok/s"
        )


class ConsoleProgress:
    """ProgressListener for the terminal."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.console = make_console(stderr=True, file=stream)
        self._live_enabled = self.console.is_terminal if live is None else live
        self._current: _Repetition | None = None
        self._live: Live | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> ConsoleProgress:
        if self._live_enabled:
            self._live = Live(
                _Renderable(self), console=self.console, refresh_per_second=4, transient=True
            )
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def scenario_started(
        self, scenario: str, repetition: int, repetitions: int, total: int | None
    ) -> None:
        self._current = _Repetition(scenario, repetition, repetitions, total)

    def request_finished(self, record: RequestRecord) -> None:
        if self._current is not None:
            self._current.add(record)

    def scenario_finished(self, scenario: str, repetition: int) -> None:
        if self._current is not None:
            self.console.print(self._current.line())
        self._current = None

    def note(self, message: str) -> None:
        self.console.print(message)

    def render(self) -> RenderableType:
        current = self._current
        if current is None:
            return Text("")
        table = Table.grid(padding=(0, 2))
        table.add_row(
            Text(f"{current.scenario} rep {current.repetition}/{current.repetitions}", "bold"),
            ProgressBar(total=current.total, completed=current.done, width=30)
            if current.total
            else Text(f"{time.monotonic() - current.started:.0f} s"),
            Text(current.line().split(": ", 1)[1]),
        )
        return Group(table)


class _Renderable:
    def __init__(self, progress: ConsoleProgress) -> None:
        self._progress = progress

    def __rich__(self) -> RenderableType:
        return self._progress.render()
