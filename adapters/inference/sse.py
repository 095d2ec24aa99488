"""An incremental Server-Sent-Events parser over raw bytes (the WHATWG `text/event-stream` format).

It sits on the client's hot path (hundreds of thousands of events/s), so it works on bytes, finds
line ends with `bytes.split` (C speed, each byte scanned once; only an unfinished last line is kept
for the next chunk) and decodes nothing but the data payload of complete events.

Line ends are `\\n` or `\\r\\n` (also when the `\\r` and `\\n` arrive in different chunks); a bare
`\\r` is not treated as a line end, since no OpenAI-compatible server sends one.
"""

from __future__ import annotations

from typing import NamedTuple


class SseEvent(NamedTuple):
    """One dispatched event: its `event:` name (None when not given) and its data lines joined
    by "\\n"."""

    event: str | None
    data: str


def _text(value: bytes) -> str:
    # A server that sends invalid UTF-8 should fail the JSON decoding later, not the parser.
    return value.decode("utf-8", "replace")


class SseParser:
    """Feed it byte chunks as they arrive; it returns the events that each chunk completed.

    Comments (`:` lines, used as keep-alives) and the `id:` and `retry:` fields are ignored; an
    event without any `data:` line is not dispatched (as in the WHATWG algorithm).
    """

    __slots__ = ("_data", "_event", "_tail")

    def __init__(self) -> None:
        self._tail = b""  # the unfinished last line of what was fed so far
        self._data: list[bytes] = []  # data lines of the event being built
        self._event: str | None = None

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Consume one chunk; return the events it completed, in order."""
        if self._tail:
            chunk = self._tail + chunk
        lines = chunk.split(b"\n")
        self._tail = lines.pop()
        return self._parse(lines) if lines else []

    def close(self) -> list[SseEvent]:
        """End of stream: dispatch a last event that lacked its blank line (or even its newline)."""
        lines = [self._tail, b""] if self._tail else [b""]
        self._tail = b""
        return self._parse(lines)

    def _parse(self, lines: list[bytes]) -> list[SseEvent]:
        events: list[SseEvent] = []
        data = self._data
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:  # blank line: dispatch
                if data:
                    events.append(SseEvent(self._event, _text(b"\n".join(data))))
                    data.clear()
                self._event = None
                continue
            if line.startswith(b"data:"):  # the common case first
                value = line[5:]
            else:
                name, _, value = line.partition(b":")
                if name != b"data":
                    if name == b"event":
                        self._event = _text(value[1:] if value.startswith(b" ") else value)
                    # Anything else: a comment (empty name), `id`, `retry` or an unknown field.
                    continue
            data.append(value[1:] if value.startswith(b" ") else value)
        return events
