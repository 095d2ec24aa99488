"""kitt's simulated engine: an OpenAI-compatible streaming server whose timing is exactly known.

Run it as its own process (kitt's SimulatedEngine does):

    python -m adapters.engine.simulated_server --ttft-ms 20 --itl-ms 5

Timing. A completion request arrives when its last byte has been read. Its first content event is
due at arrival + ttft and content event i at arrival + ttft + i * itl. Each event is scheduled on
that absolute time, so errors never accumulate, and is never written early; events that are due
together (a late wake-up, or burst mode) go out in one write. With --tokens-per-chunk K each
content event carries K tokens, so --itl-ms is the gap between events. The chat role-only chunk
and, with --keepalive-comments, a `: ping` comment are written at arrival together with the
response headers, so a client that takes either for the first token is caught.

GET /stats is the ground truth: how late the server itself wrote (actual minus scheduled write
time, time.perf_counter_ns(), which on Linux reads CLOCK_MONOTONIC like a client in another
process does), events and bytes written; `?requests=1` adds the recent requests' own timestamps,
keyed by the `id` the client sees in every chunk: chatcmpl-/cmpl- + the request's X-Request-Id
header when it has one (as vLLM does), else a server counter. POST /stats/reset clears it (after
a warm-up).

Burst mode (--ttft-ms 0 --itl-ms 0): every event is due at arrival, so a whole response, headers
to terminating chunk, is one write of bytes rendered once per request.

Request numbers, for --fault and --exit-after, count completion requests (chat and completions)
only, 1-based over the server's life; /health, /v1/models, /tokenize and /stats don't count.

Stdlib + msgspec only: the HTTP/1.1 server is written on asyncio.Protocol so that every byte and
every write time is under control. stdout carries exactly one line, LISTENING_PREFIX + URL;
the log goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import select
import selectors
import signal
import sys
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, cast

import msgspec

import kitt

LISTENING_PREFIX = "kitt-simulated listening on "
FAULT_KINDS = ("http-500", "mid-stream-error", "truncate", "no-finish")
EXIT_AFTER_CODE = 3

_MAX_HEAD_BYTES = 64 * 1024
_MAX_BODY_BYTES = 64 * 1024 * 1024
_RECENT_REQUESTS = 4096
_TOKEN = " tok"

log = logging.getLogger("kitt-simulated")
_perf_ns = time.perf_counter_ns
_json = msgspec.json.encode


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    every: int


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything the command line sets."""

    host: str = "127.0.0.1"
    port: int = 0
    models: tuple[str, ...] = ("simulated",)
    ttft_ms: float = 20.0
    itl_ms: float = 5.0
    output_tokens: int | None = None
    tokens_per_chunk: int = 1
    usage: bool = True
    role_chunk: bool = True
    space: bool = True
    crlf: bool = False
    keepalive_comments: bool = False
    done: bool = True
    faults: tuple[Fault, ...] = ()
    exit_after: int | None = None
    max_model_len: int = 32768
    loop: str = "auto"

    @property
    def burst(self) -> bool:
        return self.ttft_ms == 0 and self.itl_ms == 0


def _fault(text: str) -> Fault:
    kind, sep, every = text.partition(":")
    if kind not in FAULT_KINDS or not sep or not every.isdigit() or int(every) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected KIND:EVERY with KIND one of {', '.join(FAULT_KINDS)} "
            "and EVERY a positive integer"
        )
    return Fault(kind, int(every))


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):  # also rejects nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a number >= 0")
    return value


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m adapters.engine.simulated_server",
        description="kitt's simulated OpenAI-compatible engine with exactly known timing.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    p.add_argument("--served-model-name", action="append", dest="models", metavar="NAME",
                   help="a model name to serve; repeatable (default: simulated)")
    p.add_argument("--ttft-ms", type=_non_negative, default=20.0,
                   help="arrival to first content event (default 20)")
    p.add_argument("--itl-ms", type=_non_negative, default=5.0,
                   help="gap between content events (default 5)")
    p.add_argument("--output-tokens", type=_positive_int, metavar="N",
                   help="produce N tokens whatever max_tokens asks (an engine that stops early)")
    p.add_argument("--tokens-per-chunk", type=_positive_int, default=1, metavar="K",
                   help="tokens per content event (default 1)")
    p.add_argument("--no-usage", dest="usage", action="store_false",
                   help="never send usage, even when stream_options.include_usage asks")
    p.add_argument("--role-chunk", action=argparse.BooleanOptionalAction, default=True,
                   help="chat: first chunk is role-only with content null (default on)")
    p.add_argument("--no-space", dest="space", action="store_false",
                   help="write `data:{...}` without the space")
    p.add_argument("--crlf", action="store_true", help="end SSE lines with CRLF")
    p.add_argument("--keepalive-comments", action="store_true",
                   help="write `: ping` comments at arrival and between events")
    p.add_argument("--no-done", dest="done", action="store_false",
                   help="omit `data: [DONE]`")
    p.add_argument("--fault", type=_fault, action="append", dest="faults", default=[],
                   metavar="KIND:EVERY",
                   help=f"completion request n gets fault KIND when n %% EVERY == 0; "
                        f"KIND: {', '.join(FAULT_KINDS)}; repeatable, first match wins")
    p.add_argument("--exit-after", type=int, metavar="N",
                   help=f"die with os._exit({EXIT_AFTER_CODE}) when completion request N+1 "
                        "arrives, dropping every open stream (an engine crash)")
    p.add_argument("--max-model-len", type=_positive_int, default=32768)
    p.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                   help="auto: uvloop in burst mode when installed, else asyncio with "
                        "microsecond timers (uvloop's timers have millisecond resolution)")
    return p


def parse_args(argv: Sequence[str] | None = None) -> ServerConfig:
    ns = build_parser().parse_args(argv)
    return ServerConfig(
        host=ns.host, port=ns.port, models=tuple(dict.fromkeys(ns.models or ["simulated"])),
        ttft_ms=ns.ttft_ms, itl_ms=ns.itl_ms, output_tokens=ns.output_tokens,
        tokens_per_chunk=ns.tokens_per_chunk, usage=ns.usage, role_chunk=ns.role_chunk,
        space=ns.space, crlf=ns.crlf, keepalive_comments=ns.keepalive_comments, done=ns.done,
        faults=tuple(ns.faults), exit_after=ns.exit_after, max_model_len=ns.max_model_len,
        loop=ns.loop,
    )


# --------------------------------------------------------------------------- ground truth


class Lateness:
    """Lateness samples (ns) in 1 µs buckets up to 100 ms, the rest in one overflow bucket;
    bounded memory however long the server runs. Percentiles are bucket midpoints, max exact."""

    __slots__ = ("count", "counts", "max_ns", "sum_ns")
    _LAST = 100_000

    def __init__(self) -> None:
        self.counts = [0] * (self._LAST + 1)
        self.count = self.sum_ns = self.max_ns = 0

    def add(self, late_ns: int, times: int = 1) -> None:
        i = late_ns // 1000
        self.counts[i if i < self._LAST else self._LAST] += times
        self.count += times
        self.sum_ns += late_ns * times
        if late_ns > self.max_ns:
            self.max_ns = late_ns

    def quantile_ms(self, q: float) -> float | None:
        if not self.count:
            return None
        rank, seen = max(1, round(q * self.count)), 0
        for i, n in enumerate(self.counts):
            seen += n
            if seen >= rank:
                return min((i + 0.5) / 1000, self.max_ns / 1e6)
        raise AssertionError("unreachable: counts sum to count")

    def summary(self) -> dict[str, float | int | None]:
        c = self.count
        return {
            "count": c,
            "mean": round(self.sum_ns / c / 1e6, 4) if c else None,
            "p50": self.quantile_ms(0.50),
            "p99": self.quantile_ms(0.99),
            "max": self.max_ns / 1e6 if c else None,
        }


class Stats:
    """What GET /stats reports."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.completions = self.served = self.open_streams = self.client_disconnects = 0
        self.bad_requests = self.events = self.bytes = 0
        self.faults: dict[str, int] = {}
        self.first = Lateness()
        self.later = Lateness()
        # (id, arrival, first due, first written, last written, content events, outcome)
        self.recent: deque[tuple[str, int, int, int, int, int, str]] = deque(
            maxlen=_RECENT_REQUESTS
        )

    def to_json(self, config: ServerConfig, *, requests: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "server": "kitt-simulated",
            "version": kitt.__version__,
            "elapsed_s": round(time.monotonic() - self.started, 3),  # since start or reset
            "config": {
                "served_model_names": list(config.models), "ttft_ms": config.ttft_ms,
                "itl_ms": config.itl_ms, "tokens_per_chunk": config.tokens_per_chunk,
                "output_tokens": config.output_tokens,
            },
            "requests": {
                "completions": self.completions, "served": self.served,
                "open_streams": self.open_streams, "client_disconnects": self.client_disconnects,
                "bad": self.bad_requests, "faults": dict(self.faults),
            },
            "events_written": self.events,
            "bytes_written": self.bytes,
            "lateness_ms": {"first_token": self.first.summary(),
                            "later_tokens": self.later.summary()},
        }
        if requests:
            keys = ("id", "arrival_ns", "first_token_due_ns", "first_token_written_ns",
                    "last_token_written_ns", "content_events", "outcome")
            out["recent"] = [dict(zip(keys, r, strict=True)) for r in self.recent]
        return out


# --------------------------------------------------------------------------- HTTP/1.1


class HttpError(Exception):
    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.close = status, message, close


_REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 404: "Not Found",
            405: "Method Not Allowed", 413: "Content Too Large",
            431: "Request Header Fields Too Large", 500: "Internal Server Error",
            501: "Not Implemented"}
_ERROR_TYPES = {400: "BadRequestError", 404: "NotFoundError", 500: "InternalServerError"}


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: str
    http11: bool
    keep_alive: bool
    body: bytes
    arrival_ns: int
    request_id: str | None = None  # the client's X-Request-Id header


def _response_head(status: int, content_type: str, *, keep_alive: bool,
                   length: int | None = None, chunked: bool = False) -> bytes:
    """Status line and headers; a body with neither length nor chunking ends at the close."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
             f"content-type: {content_type}", "server: kitt-simulated"]
    if length is not None:
        lines.append(f"content-length: {length}")
    else:
        lines.append("cache-control: no-cache")
        if chunked:
            lines.append("transfer-encoding: chunked")
    if not keep_alive:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def error_body(status: int, message: str, *, param: str | None = None) -> bytes:
    """OpenAI-style error JSON, as vLLM answers."""
    return _json({"error": {"message": message, "type": _ERROR_TYPES.get(status, "Error"),
                            "param": param, "code": status}})


class Connection(asyncio.Protocol):
    """One client connection: parses requests one after another (keep-alive; pipelined requests
    wait in the buffer) and hands each to the server; one response at a time."""

    def __init__(self, server: SimulatedServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.head: tuple[str, str, str, dict[str, str], int] | None = None
        self.busy: Stream | DelayedResponse | None = None
        self.closed = False
        self._dispatching = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not isinstance: uvloop's transports do not subclass asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        if self.busy is not None:
            self.busy.cancel()
            self.busy = None
            self.server.stats.client_disconnects += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.busy is None and not self._dispatching:
            self._dispatch()

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)
        self.server.stats.bytes += len(data)

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()  # flushes what is buffered, then FIN

    def respond(self, status: int, body: bytes, *, keep_alive: bool,
                content_type: str = "application/json") -> None:
        self.write(_response_head(status, content_type, length=len(body),
                                  keep_alive=keep_alive) + body)
        if not keep_alive:
            self.close()

    def finished(self, keep_alive: bool) -> None:
        """The current response is complete; serve the next request if one is buffered."""
        self.busy = None
        if not keep_alive:
            self.close()
        elif self.buffer and not self._dispatching:
            self._dispatch()

    def _dispatch(self) -> None:
        # A flag rather than recursion: a burst response finishes inside handle().
        self._dispatching = True
        try:
            while self.busy is None and not self.closed:
                try:
                    request = self._read_request()
                except HttpError as e:
                    self.server.stats.bad_requests += 1
                    self.respond(e.status, error_body(e.status, e.message), keep_alive=False)
                    return
                if request is None:
                    return
                self.server.handle(self, request)
        finally:
            self._dispatching = False

    def _read_request(self) -> Request | None:
        buf = self.buffer
        if self.head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD_BYTES:
                    raise HttpError(431, "request head too large", close=True)
                return None
            method, target, version, headers = _parse_head(bytes(buf[:end]))
            del buf[: end + 4]
            if "transfer-encoding" in headers:
                raise HttpError(501, "chunked request bodies are not supported; "
                                     "send Content-Length", close=True)
            length_text = headers.get("content-length", "0")
            if not length_text.isdigit():
                raise HttpError(400, f"bad Content-Length {length_text!r}", close=True)
            length = int(length_text)
            if length > _MAX_BODY_BYTES:
                raise HttpError(413, "request body too large", close=True)
            self.head = (method, target, version, headers, length)
            if headers.get("expect", "").lower() == "100-continue" and len(buf) < length:
                self.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits for it
        method, target, version, headers, length = self.head
        if len(buf) < length:
            return None
        body = bytes(buf[:length])
        del buf[:length]
        self.head = None
        http11 = version == "HTTP/1.1"
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection if http11 else "keep-alive" in connection
        path, _, query = target.partition("?")
        return Request(method, path, query, http11, keep_alive, body, _perf_ns(),
                       headers.get("x-request-id") or None)


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0") or not parts[1]:
        raise HttpError(400, "malformed request line", close=True)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError(400, f"malformed header line {line[:80]!r}", close=True)
        headers[name.lower()] = value.strip()
    return parts[0], parts[1], parts[2], headers


# --------------------------------------------------------------------------- responses


class Stream:
    """One streamed response: `head` (headers, role chunk) at once, then `count` timed writes,
    event i due at first_due_ns + i * itl_ns. All events but the last are `regular` content; the
    last is `last` (final content, or a fault's error event or half event) followed by `tail`
    (usage, [DONE]); `final_events` counts the complete data events in last + tail."""

    __slots__ = ("close_after", "conn", "count", "final_events", "first_due_ns",
                 "first_written_ns", "framed", "handle", "head", "id", "itl_ns", "keep_alive",
                 "last", "last_is_content", "loop", "offset_s", "outcome", "regular", "request",
                 "sent", "server", "tail", "terminator")

    def __init__(self, server: SimulatedServer, conn: Connection, request: Request, *,
                 id: str, head: bytes, count: int, regular: bytes, last: bytes, tail: bytes,
                 final_events: int, last_is_content: bool, close_after: bool,
                 outcome: str) -> None:
        config = server.config
        self.server, self.conn, self.request, self.id = server, conn, request, id
        self.outcome = outcome
        self.loop, self.offset_s = server.loop, server.clock_offset_s
        self.head, self.count, self.regular, self.last, self.tail = head, count, regular, last, tail
        self.final_events, self.last_is_content = final_events, last_is_content
        self.close_after = close_after
        self.first_due_ns = request.arrival_ns + round(config.ttft_ms * 1e6)
        self.itl_ns = round(config.itl_ms * 1e6)
        self.framed = request.http11  # HTTP/1.0 has no chunked encoding: the close ends it
        self.keep_alive = request.keep_alive and request.http11 and not close_after
        self.terminator = b"0\r\n\r\n" if self.framed and not close_after else b""
        self.sent = self.first_written_ns = 0
        self.handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self.server.stats.open_streams += 1
        self._tick()

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        self._record("client-disconnect", 0)

    def _tick(self) -> None:
        self.handle = None
        now = _perf_ns()
        sent, count, itl = self.sent, self.count, self.itl_ns
        due = self.first_due_ns + sent * itl
        if now < due:  # never write early; a timer may fire a hair before its time
            if self.head:
                self.conn.write(self.head)
                self.head = b""
            self.handle = self.loop.call_at(due * 1e-9 + self.offset_s, self._tick)
            return
        upto = count if itl == 0 else min(count, (now - self.first_due_ns) // itl + 1)
        n = upto - sent
        stats = self.server.stats
        # Lateness of the content events in this write (a fault's last event is no token).
        tokens_upto = upto if upto < count or self.last_is_content else upto - 1
        if sent == 0:
            self.first_written_ns = now
            if tokens_upto > 0:
                stats.first.add(now - due)
                self._late(now, 1, tokens_upto)
        else:
            self._late(now, sent, tokens_upto)
        if upto == count:
            body = self.regular * (n - 1) + self.last + self.tail
            stats.events += n - 1 + self.final_events
        else:
            body = self.regular * n
            stats.events += n
        out = self.head + (b"%x\r\n%b\r\n" % (len(body), body) if self.framed else body)
        self.head = b""
        self.sent = upto
        if upto < count:
            self.conn.write(out)
            self.handle = self.loop.call_at(
                (self.first_due_ns + upto * itl) * 1e-9 + self.offset_s, self._tick
            )
            return
        self.conn.write(out + self.terminator)
        self._record(self.outcome, now)
        self.conn.finished(self.keep_alive)

    def _late(self, now: int, start: int, stop: int) -> None:
        if start >= stop:
            return
        later, itl, first = self.server.stats.later, self.itl_ns, self.first_due_ns
        if itl == 0:
            later.add(now - first, stop - start)
        else:
            for i in range(start, stop):
                later.add(now - first - i * itl)

    def _record(self, outcome: str, last_written_ns: int) -> None:
        stats = self.server.stats
        stats.open_streams -= 1
        if outcome == "ok":
            stats.served += 1
        content = self.sent - (self.sent == self.count and not self.last_is_content)
        stats.recent.append((self.id, self.request.arrival_ns, self.first_due_ns,
                             self.first_written_ns, last_written_ns, content, outcome))


class DelayedResponse:
    """A non-streaming answer, written when its last token is due."""

    __slots__ = ("conn", "data", "handle", "keep_alive", "ok", "server")

    def __init__(self, server: SimulatedServer, conn: Connection, due_ns: int, data: bytes,
                 *, keep_alive: bool, ok: bool) -> None:
        self.server, self.conn, self.data, self.keep_alive, self.ok = (
            server, conn, data, keep_alive, ok)
        delay = max(0.0, (due_ns - _perf_ns()) * 1e-9)
        self.handle: asyncio.TimerHandle | None = server.loop.call_later(delay, self._fire)

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def _fire(self) -> None:
        self.handle = None
        self.conn.write(self.data)
        self.server.stats.served += self.ok
        self.conn.finished(self.keep_alive)


# --------------------------------------------------------------------------- the API


class _Message(msgspec.Struct):
    role: str = "user"
    content: Any = None


class _StreamOptions(msgspec.Struct):
    include_usage: bool | None = False


class _CompletionRequest(msgspec.Struct):
    model: str | None = None
    messages: list[_Message] | None = None
    prompt: Any = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stream: bool | None = False
    stream_options: _StreamOptions | None = None


class _TokenizeRequest(msgspec.Struct):
    model: str | None = None
    prompt: Any = None
    messages: list[_Message] | None = None


def words(value: object) -> list[str]:
    """The simulated tokenizer: one token per whitespace-separated word. Lists hold token ids
    (ints, one token each), prompts (strings) or content parts ({"type": "text", "text": ...})."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [w for v in value for w in ([str(v)] if isinstance(v, int) else words(v))]
    if isinstance(value, dict):
        return words(value.get("text"))
    return []


class SimulatedServer:
    """The application: routes requests, renders responses, keeps the ground truth."""

    def __init__(self, config: ServerConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.loop = loop
        self.stats = Stats()
        self.connections: set[Connection] = set()
        self.completion_requests = 0
        # Deadlines are perf_counter_ns values; timers run on loop.time(). asyncio's loop.time()
        # is time.monotonic(), on Linux the very clock perf_counter reads; otherwise (uvloop,
        # other platforms) measure the offset between the two.
        same = (time.get_clock_info("perf_counter").implementation
                == time.get_clock_info("monotonic").implementation)
        self.clock_offset_s = (0.0 if same and isinstance(loop, asyncio.BaseEventLoop)
                               else loop.time() - _perf_ns() * 1e-9)
        nl = b"\r\n" if config.crlf else b"\n"
        self._data = b"data: " if config.space else b"data:"
        self._end = nl + nl
        self._ping = b": ping" + nl + nl if config.keepalive_comments else b""
        self._done = self._data + b"[DONE]" + self._end if config.done else b""
        self._routes: dict[str, tuple[str, Callable[[Connection, Request], None]]] = {
            "/health": ("GET", self._health),
            "/version": ("GET", self._version),
            "/v1/models": ("GET", self._models),
            "/tokenize": ("POST", self._tokenize),
            "/v1/chat/completions": ("POST", self._chat),
            "/v1/completions": ("POST", self._completions),
            "/stats": ("GET", self._stats),
            "/stats/reset": ("POST", self._reset_stats),
        }

    def handle(self, conn: Connection, request: Request) -> None:
        route = self._routes.get(request.path)
        if route is None:
            conn.respond(404, b'{"detail":"Not Found"}', keep_alive=request.keep_alive)
        elif route[0] != request.method:
            conn.respond(405, b'{"detail":"Method Not Allowed"}', keep_alive=request.keep_alive)
        else:
            try:
                route[1](conn, request)
            except HttpError as e:
                conn.respond(e.status, error_body(e.status, e.message),
                             keep_alive=request.keep_alive and not e.close)

    # ---- small endpoints

    def _health(self, conn: Connection, request: Request) -> None:
        conn.respond(200, b"", keep_alive=request.keep_alive)

    def _version(self, conn: Connection, request: Request) -> None:
        conn.respond(200, _json({"version": kitt.__version__}), keep_alive=request.keep_alive)

    def _models(self, conn: Connection, request: Request) -> None:
        created = int(time.time())
        data = [{"id": m, "object": "model", "created": created, "owned_by": "kitt", "root": m,
                 "parent": None, "max_model_len": self.config.max_model_len}
                for m in self.config.models]
        conn.respond(200, _json({"object": "list", "data": data}),
                     keep_alive=request.keep_alive)

    def _stats(self, conn: Connection, request: Request) -> None:
        detail = "requests=1" in request.query.split("&")
        conn.respond(200, _json(self.stats.to_json(self.config, requests=detail)),
                     keep_alive=request.keep_alive)

    def _reset_stats(self, conn: Connection, request: Request) -> None:
        open_streams = self.stats.open_streams
        self.stats = Stats()
        self.stats.open_streams = open_streams
        conn.respond(200, b"{}", keep_alive=request.keep_alive)

    def _tokenize(self, conn: Connection, request: Request) -> None:
        body = self._decode(request.body, _TokenizeRequest)
        self._check_model(body.model)
        source = ([m.content for m in body.messages] if body.messages is not None
                  else body.prompt)
        # Ids in a 32k vocabulary, stable across processes: equal words give equal tokens.
        tokens = [zlib.crc32(w.encode()) % 32000 for w in words(source)]
        conn.respond(200, _json({"count": len(tokens), "max_model_len": self.config.max_model_len,
                                 "tokens": tokens}), keep_alive=request.keep_alive)

    def _decode(self, body: bytes, kind: type[Any]) -> Any:
        try:
            return msgspec.json.decode(body, type=kind)
        except msgspec.DecodeError as e:
            raise HttpError(400, f"invalid request body: {e}") from None

    def _check_model(self, model: str | None) -> str:
        if model is None:
            return self.config.models[0]
        if model not in self.config.models:
            raise HttpError(404, f"The model `{model}` does not exist.")
        return model

    # ---- completions

    def _chat(self, conn: Connection, request: Request) -> None:
        self._complete(conn, request, chat=True)

    def _completions(self, conn: Connection, request: Request) -> None:
        self._complete(conn, request, chat=False)

    def _complete(self, conn: Connection, request: Request, *, chat: bool) -> None:
        config, stats = self.config, self.stats
        self.completion_requests += 1
        n = self.completion_requests
        if config.exit_after is not None and n > config.exit_after:
            _die(f"request {n} arrived after --exit-after {config.exit_after}: exiting now")
        stats.completions += 1
        body: _CompletionRequest = self._decode(request.body, _CompletionRequest)
        model = self._check_model(body.model)
        if chat:
            if not body.messages:
                raise HttpError(400, "messages must be a non-empty list")
            prompt_tokens = sum(len(words(m.content)) for m in body.messages)
        else:
            if body.prompt is None:
                raise HttpError(400, "prompt is required")
            prompt_tokens = len(words(body.prompt))
        max_tokens = body.max_completion_tokens if body.max_completion_tokens is not None \
            else body.max_tokens if body.max_tokens is not None else 16
        if max_tokens < 1:
            raise HttpError(400, f"max_tokens must be at least 1, got {max_tokens}")
        if prompt_tokens + max_tokens > config.max_model_len:
            raise HttpError(400, f"This model's maximum context length is "
                                 f"{config.max_model_len} tokens. However, you requested "
                                 f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the "
                                 f"messages, {max_tokens} in the completion).")
        fault = next((f.kind for f in config.faults if n % f.every == 0), None)
        if fault is not None:
            stats.faults[fault] = stats.faults.get(fault, 0) + 1
            log.info("request %d: fault %s", n, fault)
        if fault == "http-500":
            conn.respond(500, error_body(500, "simulated internal server error"),
                         keep_alive=request.keep_alive)
            return
        tokens = config.output_tokens if config.output_tokens is not None else max_tokens
        finish = "length" if tokens >= max_tokens else "stop"
        usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + tokens,
                 "completion_tokens": tokens}
        # Like vLLM: the response id is chatcmpl-/cmpl- + the client's X-Request-Id if it sent
        # one, so the client can find its requests in /stats?requests=1.
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{request.request_id or f'sim{n}'}"
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            self._stream(conn, request, rid=rid, model=model, chat=chat, tokens=tokens,
                         finish=finish, usage=usage if include_usage and config.usage else None,
                         fault=fault)
        else:
            self._answer(conn, request, rid=rid, model=model, chat=chat, tokens=tokens,
                         finish=finish, usage=usage if config.usage else None, fault=fault)

    def _stream(self, conn: Connection, request: Request, *, rid: str, model: str, chat: bool,
                tokens: int, finish: str, usage: dict[str, int] | None,
                fault: str | None) -> None:
        config = self.config
        k = config.tokens_per_chunk
        events = -(-tokens // k)
        created = int(time.time())
        obj = "chat.completion.chunk" if chat else "text_completion"

        def event(choice: dict[str, Any] | None, **extra: Any) -> bytes:
            chunk = {"id": rid, "object": obj, "created": created, "model": model,
                     "choices": [choice] if choice else [], **extra}
            return self._data + _json(chunk) + self._end

        def content(n_tokens: int, finish_reason: str | None) -> bytes:
            text = _TOKEN * n_tokens
            if chat:
                return event({"index": 0, "delta": {"content": text}, "logprobs": None,
                              "finish_reason": finish_reason})
            return event({"index": 0, "text": text, "logprobs": None,
                          "finish_reason": finish_reason})

        ping = self._ping
        head = _response_head(200, "text/event-stream; charset=utf-8", chunked=request.http11,
                              keep_alive=request.keep_alive and request.http11
                              and fault != "truncate")
        first = ping
        if chat and config.role_chunk:
            first = event({"index": 0, "delta": {"role": "assistant", "content": None},
                           "logprobs": None, "finish_reason": None}) + ping
            self.stats.events += 1
        if first:
            head += b"%x\r\n%b\r\n" % (len(first), first) if request.http11 else first
        plain = content(k, None)
        regular = ping + plain
        last_tokens = tokens - (events - 1) * k
        done, done_events = self._done, int(bool(self._done))
        count, last_is_content, close_after = events, True, False
        if fault is None:
            last, tail, final_events = ping + content(last_tokens, finish), done, 1 + done_events
            if usage is not None:
                tail, final_events = event(None, usage=usage) + done, final_events + 1
        elif fault == "no-finish":
            last, tail, final_events = ping + content(last_tokens, None), b"", 1
        elif fault == "mid-stream-error":
            count, last_is_content = events // 2 + 1, False
            last = ping + self._data + _json({"error": {
                "message": "simulated mid-stream failure", "type": "InternalServerError",
                "code": 500}}) + self._end
            tail, final_events = done, 1 + done_events
        else:  # truncate: half an event, then close without the terminating chunk
            count, last_is_content, close_after = events // 2 + 1, False, True
            last, tail, final_events = ping + plain[: len(plain) // 2], b"", 0
        stream = Stream(self, conn, request, id=rid, head=head, count=count, regular=regular,
                        last=last, tail=tail, final_events=final_events,
                        last_is_content=last_is_content, close_after=close_after,
                        outcome=fault or "ok")
        conn.busy = stream
        stream.start()

    def _answer(self, conn: Connection, request: Request, *, rid: str, model: str, chat: bool,
                tokens: int, finish: str, usage: dict[str, int] | None,
                fault: str | None) -> None:
        config = self.config
        events = -(-tokens // config.tokens_per_chunk)
        due = request.arrival_ns + round((config.ttft_ms + (events - 1) * config.itl_ms) * 1e6)
        text = _TOKEN * tokens
        finish_reason = None if fault == "no-finish" else finish
        if fault == "mid-stream-error":
            status, body = 500, error_body(500, "simulated failure during generation")
        else:
            choice: dict[str, Any] = (
                {"index": 0, "message": {"role": "assistant", "content": text}} if chat
                else {"index": 0, "text": text}
            ) | {"logprobs": None, "finish_reason": finish_reason}
            status, body = 200, _json({
                "id": rid, "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()), "model": model, "choices": [choice],
                **({"usage": usage} if usage else {})})
        keep_alive = request.keep_alive and fault != "truncate"
        data = _response_head(status, "application/json", length=len(body),
                              keep_alive=keep_alive) + body
        if fault == "truncate":
            data = data[: len(data) - len(body) // 2]
        conn.busy = DelayedResponse(self, conn, due, data, keep_alive=keep_alive,
                                    ok=fault is None)


# --------------------------------------------------------------------------- process


def _die(message: str) -> NoReturn:
    sys.stderr.write(f"kitt-simulated: {message}\n")
    sys.stderr.flush()
    os._exit(EXIT_AFTER_CODE)  # at once: no cleanup, every open stream drops, like a crash


if hasattr(selectors, "EpollSelector"):

    class PreciseEpollSelector(selectors.EpollSelector):
        """epoll waits in whole milliseconds, rounded up, so asyncio timers fire up to 1 ms late.
        Wait on the epoll fd with select(), which takes microseconds, then collect its events."""

        def select(self, timeout: float | None = None) -> list[Any]:
            if timeout is not None and timeout > 0:
                select.select([self.fileno()], [], [], timeout)
                timeout = 0
            return super().select(timeout)


def new_event_loop(config: ServerConfig) -> asyncio.AbstractEventLoop:
    """uvloop (optional) only where timer precision does not matter, unless asked for."""
    if config.loop == "uvloop" or (config.loop == "auto" and config.burst):
        try:
            import uvloop  # type: ignore[import-not-found]
        except ImportError:
            if config.loop == "uvloop":
                raise SystemExit("--loop uvloop: uvloop is not installed") from None
        else:
            return uvloop.new_event_loop()  # type: ignore[no-any-return]
    if hasattr(selectors, "EpollSelector"):
        return asyncio.SelectorEventLoop(PreciseEpollSelector())
    return asyncio.new_event_loop()


async def serve(config: ServerConfig) -> int:
    loop = asyncio.get_running_loop()
    server = SimulatedServer(config, loop)
    listener = await loop.create_server(lambda: Connection(server), config.host, config.port,
                                        backlog=4096, reuse_address=True)
    port = listener.sockets[0].getsockname()[1]
    host = f"[{config.host}]" if ":" in config.host else config.host
    url = f"http://{host}:{port}"
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("serving %s at %s (ttft %.3f ms, itl %.3f ms, %s loop)", ", ".join(config.models),
             url, config.ttft_ms, config.itl_ms, type(loop).__module__.split(".")[0])
    sys.stdout.write(f"{LISTENING_PREFIX}{url}\n")
    sys.stdout.flush()
    await stop.wait()
    log.info("stopping: %d open connections", len(server.connections))
    listener.close()
    for conn in list(server.connections):
        conn.close()
    await listener.wait_closed()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    loop = new_event_loop(config)
    try:
        return loop.run_until_complete(serve(config))
    finally:
        loop.close()


if __name__ == "__main__":
    sys.exit(main())
