"""The inference client: streams completions from an OpenAI-compatible endpoint (DESIGN §4).

httpx's API on the `httpx-aiohttp` transport, reading raw byte chunks (`aiter_raw`) and splitting
SSE events out of them ourselves: measured about 5x faster than httpx's default transport with
`aiter_lines`. Each chunk is timestamped the moment it arrives, before any parsing; every event
in it carries that time.

Timing is only as good as the CPU time spent between t0 and the request's bytes, and between a
chunk's arrival and its timestamp, while other streams are being served: when hundreds of streams
end and restart together (a closed loop, an engine's decode steps), every request's bookkeeping
runs in one burst. So the streaming path is kept lean (requests go straight to the transport,
see HttpxInferenceClient.__init__) and request bodies are written at once (_EagerBodyRequest).
`python benchmarks/client_accuracy.py` measures the result against the simulated engine.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import secrets
import time
import types
from collections.abc import AsyncIterator, Coroutine, Generator, Sequence
from types import TracebackType
from typing import Any, NoReturn

import aiohttp
import httpx
import msgspec
from httpx_aiohttp import AiohttpTransport

from adapters.inference.sse import SseEvent, SseParser
from kitt.domain.errors import EngineError
from kitt.domain.records import StreamResult
from kitt.domain.workload import PromptRequest

# Servers close idle connections on their own schedule; ours should never be the first to.
_KEEPALIVE_S = 300.0
# After `[DONE]` the stream's end (the last HTTP chunk) normally follows at once. Reading it lets
# the connection go back to the pool; a server that keeps the stream open costs us this, no more.
_DRAIN_S = 1.0
_EXCERPT_CHARS = 200
# Attempts at a request whose pooled connection turns out to be closed (see
# _is_stale_connection); each failed attempt drops one dead connection from the pool.
_STALE_RETRIES = 4
# Failures that mean "the network or the server let us down", as opposed to bugs in kitt. The
# httpx-aiohttp transport maps some aiohttp errors oddly (a refused connection arrives as
# httpx.ConnectTimeout) and lets others through unmapped, hence aiohttp's and OSError too.
_NETWORK_ERRORS = (httpx.HTTPError, aiohttp.ClientError, OSError)


class _Delta(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[msgspec.Raw] | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None  # chat
    text: str | None = None  # completions
    finish_reason: str | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _Chunk(msgspec.Struct):
    """One streamed event. Unknown fields are ignored; only what kitt measures is decoded."""

    choices: list[_Choice] | None = None
    usage: _Usage | None = None
    # Any shape: an error event must be reported as one even when its body is unusual.
    error: Any = None
    # Older vLLM sent errors as a top-level {"object": "error", "message": ...}.
    object: str | None = None


class _Model(msgspec.Struct):
    id: str


class _ModelList(msgspec.Struct):
    data: list[_Model]


_CHUNK_DECODER = msgspec.json.Decoder(_Chunk)
_MODELS_DECODER = msgspec.json.Decoder(_ModelList)


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 1] + "…"


def _error_message(body: bytes | str) -> str:
    """The human part of an error body: vLLM/OpenAI {"error": {"message"}}, TGI {"error": "..."},
    FastAPI {"detail": ...}, {"message": ...}; otherwise the body itself."""
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        doc = None
    if isinstance(doc, dict):
        for key in ("error", "message", "detail"):
            value = doc.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("msg") or value
            if value:
                text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
                return _excerpt(text)
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return _excerpt(raw) or "(empty body)"


def _exception_text(exc: BaseException) -> str:
    return _excerpt(str(exc)) or type(exc).__name__


class _StreamObserver:
    """Accumulates what one response stream said; `event` returns True once the stream is over
    (`[DONE]`, an error event or an undecodable one)."""

    __slots__ = (
        "completion_tokens",
        "content_ns",
        "done",
        "end_ns",
        "error",
        "error_kind",
        "finish_reason",
        "prompt_tokens",
    )

    def __init__(self) -> None:
        self.content_ns: list[int] = []
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.finish_reason: str | None = None
        self.done = False
        self.end_ns: int | None = None
        self.error_kind: str | None = None
        self.error: str | None = None

    def fail(self, kind: str, message: str) -> bool:
        self.error_kind, self.error = kind, message
        if self.end_ns is None:
            self.end_ns = time.perf_counter_ns()
        return True

    def closed(self, end_ns: int) -> None:
        """The server closed the stream cleanly without `[DONE]`: fine after a finish_reason."""
        self.end_ns = end_ns
        if self.finish_reason is None:
            self.fail("truncated", "stream ended without [DONE] or finish_reason")

    def event(self, ev: SseEvent, arrived_ns: int) -> bool:
        data = ev.data
        if data == "[DONE]":
            self.done = True
            self.end_ns = arrived_ns
            return True
        if ev.event == "error":
            return self.fail("stream_error", _error_message(data))
        if not data:  # an empty event is a keep-alive too
            return False
        try:
            chunk = _CHUNK_DECODER.decode(data)
        except msgspec.DecodeError as exc:
            return self.fail("bad_event", f"undecodable event ({exc}): {_excerpt(data)}")
        if chunk.error is not None or chunk.object == "error":
            return self.fail("stream_error", _error_message(data))
        if chunk.choices:
            content = False
            for choice in chunk.choices:
                if choice.finish_reason:
                    self.finish_reason = choice.finish_reason
                d = choice.delta
                if choice.text or (
                    d is not None
                    and (d.content or d.reasoning_content or d.reasoning or d.tool_calls)
                ):
                    content = True
            if content:
                self.content_ns.append(arrived_ns)
        if chunk.usage is not None:
            self.prompt_tokens = chunk.usage.prompt_tokens
            self.completion_tokens = chunk.usage.completion_tokens
        return False

    def result(self, t0_ns: int, http_status: int | None) -> StreamResult:
        return StreamResult(
            t0_ns=t0_ns,
            end_ns=self.end_ns if self.end_ns is not None else time.perf_counter_ns(),
            content_ns=tuple(self.content_ns),
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            finish_reason=self.finish_reason,
            http_status=http_status,
            error_kind=self.error_kind,
            error=self.error,
        )


class _EagerBodyRequest(aiohttp.ClientRequest):
    """Writes the request body at once, not an event-loop turn later.

    aiohttp writes a request's body from a task of its own (`write_bytes`). On Python >= 3.12 it
    starts that task eagerly, so the body leaves inside send(); on 3.11 the task only joins the
    end of the ready queue. When many streams end together (a closed loop, or an engine that
    emits one token per stream per decode step) every worker takes its t0 and queues its body,
    and each body leaves only after all the others were prepared: measured at 256 streams
    (closed loop, Python 3.11), t0 -> body at the socket p50 10-19 ms, p99 22-76 ms, all of it
    added to TTFT; with this class p50 0.04 ms, p99 0.2-0.6 ms. Running the coroutine's first
    step here, as eager_start does, writes an ordinary body completely (it suspends only when
    the socket buffer is full); the task gets the rest. Relies on aiohttp handing write_bytes'
    coroutine to a task (3.10 to 3.14 do); if a version stops calling it, nothing breaks.
    """

    def write_bytes(self, *args: Any, **kwargs: Any) -> Any:
        return _start_eagerly(super().write_bytes(*args, **kwargs))


def _start_eagerly(coro: Any) -> Any:
    """Run `coro` up to its first suspension now; return a coroutine that finishes it the way
    a task would have (same result, exception, suspensions and cancellation)."""
    if not isinstance(coro, Coroutine):  # a future aiohttp may not hand us a coroutine
        return coro
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        return _return(stop.value)
    except Exception as exc:  # noqa: BLE001 (a task started eagerly keeps it too)
        return _raise(exc)
    return _finish(coro, yielded)


async def _return(value: Any) -> Any:
    return value


async def _raise(exc: Exception) -> NoReturn:
    raise exc


async def _finish(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    return await _delegate(coro, yielded)


@types.coroutine
def _delegate(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """`yield from coro`, entered after its first step: the task sees exactly what the
    coroutine yields (futures it waits on) and sends or throws exactly what it would."""
    while True:
        try:
            try:
                sent = yield yielded
            except BaseException as exc:  # noqa: BLE001 (cancellation, a failed future: pass it on)
                yielded = coro.throw(exc)
            else:
                yielded = coro.send(sent)
        except StopIteration as stop:
            return stop.value


def _root_url(base_url: str) -> str:
    """http://h:8000, http://h:8000/ and http://h:8000/v1 all name the same server."""
    return base_url.rstrip("/").removesuffix("/v1").rstrip("/")


class HttpxInferenceClient:
    """`InferenceClient` over httpx + the aiohttp transport. Use as an async context manager."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        pool_size: int,
        request_timeout_s: float,
        api_key: str | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        """`trace_configs`: aiohttp request tracing, for diagnostics (benchmarks/client_accuracy.py
        uses on_request_chunk_sent to time when each request's body reached the socket)."""
        root = httpx.URL(_root_url(base_url))
        # Credentials in the URL (http://user:pass@host) never go into a URL we send or name in
        # a message: aiohttp refuses them next to an Authorization header, and messages end up
        # in logs. They become Basic auth, unless an API key (Bearer) is given.
        username, password = root.username, root.password
        self.base_url = str(root.copy_with(userinfo=b"")) if root.userinfo else str(root)
        self.model = model
        self.request_timeout_s = request_timeout_s
        self._trace_configs = list(trace_configs)
        limits = httpx.Limits(
            max_connections=pool_size,
            max_keepalive_connections=pool_size,
            keepalive_expiry=_KEEPALIVE_S,
        )
        headers = {
            # aiter_raw does not decompress, and compressing a token stream only adds latency.
            "Accept-Encoding": "identity",
            "Content-Type": "application/json",
        }
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        elif username or password:
            basic = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {basic}"
        self._transport = AiohttpTransport(limits=limits, client=self._new_session)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            transport=self._transport,
            headers=headers,
            # One deadline per request, enforced with asyncio.timeout (see send).
            timeout=None,
            # Proxies from the environment would route the benchmark through a third party and
            # through httpx's default transport; measure the engine directly.
            trust_env=False,
        )
        # Streaming requests skip the AsyncClient's per-request work (URL merging, cookie jar,
        # auth and redirect machinery, which kitt does not use): their URLs and headers are
        # built once and send() hands each request straight to the transport, still as an
        # httpx.Request. Measured: the client's CPU per request fell from 235 to 140 us, time
        # that other streams' requests and chunks spend waiting when many streams end at once.
        self._stream_headers = {"Host": httpx.URL(self.base_url).netloc.decode("ascii"), **headers}
        self._urls: dict[str, httpx.URL] = {
            "chat": httpx.URL(self.base_url + "/v1/chat/completions"),
            "completions": httpx.URL(self.base_url + "/v1/completions"),
        }
        # X-Request-Id: vLLM makes it the request's id (chatcmpl-<id>) in its responses and logs,
        # as kitt's simulated engine does; other servers ignore it. Unique across clients.
        self._request_ids = map(f"kitt-{secrets.token_hex(4)}-{{}}".format, itertools.count(1))

    def _new_session(self) -> aiohttp.ClientSession:
        """The transport's aiohttp session (created in the event loop, on first use): what the
        transport would build itself, plus `_EagerBodyRequest`."""
        transport, limits = self._transport, self._transport.limits
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=limits.max_connections or 0,
                keepalive_timeout=limits.keepalive_expiry,
                ssl=transport.ssl_context,
            ),
            request_class=_EagerBodyRequest,
            trace_configs=self._trace_configs or None,
        )

    async def __aenter__(self) -> HttpxInferenceClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    async def _get_json(self, path: str) -> bytes:
        url = self.base_url + path
        try:
            async with asyncio.timeout(self.request_timeout_s):
                response = await self._http.get(path)
        except TimeoutError:
            raise EngineError(f"{url} did not answer within {self.request_timeout_s:g} s") from None
        except _NETWORK_ERRORS as exc:
            raise EngineError(f"cannot reach {url}: {_exception_text(exc)}") from exc
        if response.status_code != 200:
            raise EngineError(
                f"{url} answered HTTP {response.status_code}: {_error_message(response.content)}"
            )
        return response.content

    async def served_models(self) -> list[str]:
        """Model ids from GET /v1/models; EngineError naming the URL when that fails."""
        body = await self._get_json("/v1/models")
        try:
            return [m.id for m in _MODELS_DECODER.decode(body).data]
        except msgspec.DecodeError as exc:
            raise EngineError(
                f"{self.base_url}/v1/models is not an OpenAI-compatible model list ({exc}): "
                f"{_excerpt(body.decode('utf-8', 'replace'))}"
            ) from None

    async def count_tokens(self, text: str) -> int | None:
        """Tokens in `text` by the engine's tokenizer: vLLM/SGLang's POST /tokenize
        {model, prompt}, else llama.cpp's {content}; None when neither answers."""
        for body in ({"model": self.model, "prompt": text}, {"content": text}):
            try:
                async with asyncio.timeout(self.request_timeout_s):
                    response = await self._http.post("/tokenize", content=msgspec.json.encode(body))
            except (TimeoutError, *_NETWORK_ERRORS):
                return None
            if response.status_code != 200:
                continue
            try:
                doc = msgspec.json.decode(response.content)
            except msgspec.DecodeError:
                continue
            if not isinstance(doc, dict):
                continue
            count, tokens = doc.get("count"), doc.get("tokens")
            if isinstance(count, int):
                return count
            # llama.cpp answers the vLLM-style body (no `content`) with an empty list.
            if isinstance(tokens, list) and (tokens or not text):
                return len(tokens)
        return None

    async def open_connections(self, count: int) -> None:
        """Open `count` keep-alive connections at once (concurrent GET /v1/models): each request
        finds the pool empty when it starts, so each opens its own, and all stay pooled."""
        results = await asyncio.gather(
            *(self._get_json("/v1/models") for _ in range(count)), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def _request(self, request: PromptRequest, request_id: str) -> httpx.Request:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.api == "chat":
            body["messages"] = [{"role": "user", "content": request.prompt}]
        else:
            body["prompt"] = request.prompt
        if request.ignore_eos:
            body["ignore_eos"] = True
        return httpx.Request(
            "POST",
            self._urls[request.api],
            headers={**self._stream_headers, "X-Request-Id": request_id},
            content=msgspec.json.encode(body),
        )

    async def send(self, request: PromptRequest, *, request_id: str | None = None) -> StreamResult:
        """Stream one request to its end. Failures come back as error_kind (`http_<status>`,
        `stream_error`, `bad_event`, `truncated`, `timeout`, `connection`), never as exceptions;
        cancellation propagates. `request_id` (default: a fresh unique one) goes out as the
        X-Request-Id header."""
        http_request = self._request(request, request_id or next(self._request_ids))
        # One deadline for every attempt.
        when = asyncio.get_running_loop().time() + self.request_timeout_s
        for _ in range(_STALE_RETRIES):
            result, stale = await self._attempt(http_request, when)
            if not stale:
                break
        return result

    async def _attempt(
        self, http_request: httpx.Request, when: float
    ) -> tuple[StreamResult, bool]:
        """One try at a request; also says whether it failed on a stale pooled connection (the
        server had closed it, nothing was answered: safe to send again, on another one). The
        result's t0 is this attempt's."""
        deadline = asyncio.timeout_at(when)
        observer = _StreamObserver()
        response: httpx.Response | None = None
        chunks: AsyncIterator[bytes] | None = None
        stale = False
        t0 = time.perf_counter_ns()
        try:
            async with deadline:
                t0 = time.perf_counter_ns()
                response = await self._transport.handle_async_request(http_request)
                status = response.status_code
                if status != 200:
                    body = await response.aread()
                    observer.fail(f"http_{status}", f"HTTP {status}: {_error_message(body)}")
                else:
                    chunks = response.aiter_raw()
                    await _observe(chunks, observer, t0)
        except (TimeoutError, *_NETWORK_ERRORS) as exc:
            if isinstance(exc, TimeoutError) and deadline.expired():
                observer.fail(
                    "timeout", f"no complete response within {self.request_timeout_s:g} s"
                )
            elif response is None:
                stale = _is_stale_connection(exc)
                observer.fail("connection", _exception_text(exc))
            else:
                observer.fail("truncated", f"connection lost mid-stream: {_exception_text(exc)}")
        finally:
            if response is not None:
                if observer.done and chunks is not None:
                    await _drain(chunks)
                await response.aclose()
        http_status = response.status_code if response is not None else None
        return observer.result(t0, http_status), stale


def _is_stale_connection(exc: BaseException) -> bool:
    """The server closed a pooled connection just before we reused it: aiohttp's
    ServerDisconnectedError before any response. llama-server, for one, closes the connection
    after every streamed response while announcing keep-alive, and a request sent right after
    the previous one ends can win the race against the FIN."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, aiohttp.ServerDisconnectedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def _observe(chunks: AsyncIterator[bytes], observer: _StreamObserver, t0: int) -> None:
    """Feed the stream to `observer` until it is over or the server closes it."""
    parser = SseParser()
    arrived = t0
    async for chunk in chunks:
        arrived = time.perf_counter_ns()  # before any parsing
        for ev in parser.feed(chunk):
            if observer.event(ev, arrived):
                return
    closed = time.perf_counter_ns()
    for ev in parser.close():  # a last event may lack its blank line
        if observer.event(ev, arrived):
            return
    observer.closed(closed)


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read the rest of a finished stream so that its connection can go back to the pool."""
    try:
        async with asyncio.timeout(_DRAIN_S):
            async for _ in chunks:
                pass
    except (TimeoutError, *_NETWORK_ERRORS):
        # The result is already complete; the connection is simply not reused.
        return
