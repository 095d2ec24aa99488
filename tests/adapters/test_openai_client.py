"""HttpxInferenceClient against a real socket server that answers with canned bytes.

The server writes exactly the bytes a test gives it (status line, headers, chunked or
connection-close bodies), with short sleeps between writes so that they reach the client as
separate reads, the way a token stream does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from adapters.inference import openai_client
from adapters.inference.openai_client import HttpxInferenceClient
from kitt.domain.errors import EngineError
from kitt.domain.records import StreamResult
from kitt.domain.workload import Api, PromptRequest

pytestmark = pytest.mark.anyio

MS = 1_000_000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- a canned HTTP/1.1 server -------------------------------------------------------------------

CLOSE = "close"  # script step: close the connection here
Step = bytes | float | str  # bytes to write, seconds to sleep, or CLOSE
Script = list[Step]


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int

    def json(self) -> Any:
        return json.loads(self.body)


Route = Script | Callable[[Received], Script]


class CannedServer:
    """Serves scripted responses per (method, path); keeps connections alive between requests
    and counts them, so that tests can see pooling from the server's side."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[Received] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        connection = self.connections
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                request_line, *header_lines = head.decode("latin-1").split("\r\n")[:-2]
                method, path, _ = request_line.split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in header_lines)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                received = Received(method, path, headers, body, connection)
                self.requests.append(received)
                route = self.routes.get((method, path), json_reply(404, {"detail": "Not Found"}))
                for step in route(received) if callable(route) else route:
                    if step == CLOSE:
                        return
                    if isinstance(step, float):
                        await asyncio.sleep(step)
                    else:
                        assert isinstance(step, bytes)
                        writer.write(step)
                        await writer.drain()
        except asyncio.CancelledError:
            # stop() cancels handlers still scripted to wait; ending normally keeps asyncio's
            # stream callback from logging the cancellation as an error.
            return
        finally:
            writer.close()
            self._handlers.discard(task)


@pytest.fixture
async def server() -> AsyncIterator[CannedServer]:
    srv = CannedServer()
    await srv.start()
    yield srv
    await srv.stop()


# --- response and event builders --------------------------------------------------------------

GAP = 0.005
SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"


def http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def sse(*pieces: bytes | float) -> Script:
    """A chunked event stream: each bytes piece is one HTTP chunk, written on its own; a float
    piece is an extra pause."""
    steps: Script = [SSE_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"]
    for piece in pieces:
        steps += [piece] if isinstance(piece, float) else [GAP, http_chunk(piece)]
    return [*steps, GAP, b"0\r\n\r\n"]


def sse_until_close(*pieces: bytes | float) -> Script:
    """An event stream without length or chunking: its end is the server closing the socket."""
    steps: Script = [SSE_HEAD + b"Connection: close\r\n\r\n"]
    for piece in pieces:
        steps += [piece] if isinstance(piece, float) else [GAP, piece]
    return [*steps, GAP, CLOSE]


def json_reply(status: int, body: object, content_type: str = "application/json") -> Script:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(raw)}\r\n"
    return [head.encode() + b"\r\n" + raw]


def event(payload: object) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def chat(content: str | None = None, *, finish: str | None = None, **delta: object) -> bytes:
    delta = {"content": content, **delta}
    return event({"object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": delta, "finish_reason": finish}
    ]})  # fmt: skip


ROLE = chat(None, role="assistant")
USAGE = event({"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 3}})
DONE = b"data: [DONE]\n\n"
CHAT = ("POST", "/v1/chat/completions")


def prompt(api: Api = "chat", ignore_eos: bool = True) -> PromptRequest:
    return PromptRequest(
        index=0, api=api, prompt="hello there", max_tokens=3, ignore_eos=ignore_eos
    )


def client(url: str, **overrides: Any) -> HttpxInferenceClient:
    options: dict[str, Any] = {"model": "m", "pool_size": 8, "request_timeout_s": 10.0}
    return HttpxInferenceClient(base_url=url, **(options | overrides))


async def send(server: CannedServer, route: Route, **overrides: Any) -> StreamResult:
    server.routes[CHAT] = route
    async with client(server.url, **overrides) as c:
        return await c.send(prompt())


def assert_ordered(result: StreamResult) -> None:
    times = [result.t0_ns, *result.content_ns, result.end_ns]
    assert times == sorted(times)


# --- streaming ---------------------------------------------------------------------------------


async def test_chat_stream_measures_content_events_not_the_role_chunk(server: CannedServer) -> None:
    result = await send(
        server,
        sse(ROLE, 0.06, chat("Hel"), chat("lo"), 0.05, chat("!", finish="length"), USAGE, DONE),
    )
    assert result.ok, result.error
    assert len(result.content_ns) == 3
    # The role chunk came at once; the first content 60 ms later is the TTFT.
    assert result.content_ns[0] - result.t0_ns >= 40 * MS
    # A chunk delayed by 50 ms shows up as a gap of about that much.
    assert result.content_ns[2] - result.content_ns[1] >= 40 * MS
    assert_ordered(result)
    assert (result.prompt_tokens, result.completion_tokens) == (11, 3)
    assert result.finish_reason == "length"
    assert result.http_status == 200


async def test_request_body_and_headers(server: CannedServer) -> None:
    server.routes[CHAT] = sse(chat("a", finish="stop"), DONE)
    async with client(server.url + "/v1/", api_key="sk-secret", model="my-model") as c:
        assert (await c.send(prompt())).ok
        assert (await c.send(prompt(ignore_eos=False))).ok
    first, second = server.requests
    assert first.path == "/v1/chat/completions"
    assert first.json() == {
        "model": "my-model",
        "max_tokens": 3,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hello there"}],
        "ignore_eos": True,
    }
    assert "ignore_eos" not in second.json()
    assert first.headers["authorization"] == "Bearer sk-secret"
    assert first.headers["content-type"] == "application/json"
    # Raw chunks are parsed as they come, so they must not be compressed.
    assert first.headers["accept-encoding"] == "identity"


async def test_credentials_in_the_url_become_basic_auth_and_stay_out_of_messages(
    server: CannedServer,
) -> None:
    server.routes[CHAT] = sse(chat("a", finish="stop"), DONE)
    server.routes[("GET", "/v1/models")] = MODELS
    with_credentials = server.url.replace("http://", "http://alice:s%40cret@")
    async with client(with_credentials + "/v1") as c:
        assert (await c.send(prompt())).ok
        assert await c.served_models() == ["a", "b"]
        assert "s@cret" not in c.base_url and "alice" not in c.base_url
    async with client(with_credentials, api_key="sk-key") as c:
        assert (await c.send(prompt())).ok
    basic = "Basic " + base64.b64encode(b"alice:s@cret").decode()
    assert [r.headers["authorization"] for r in server.requests] == [basic, basic, "Bearer sk-key"]
    url = _closed_port_url().replace("http://", "http://alice:s%40cret@")
    async with client(url) as c:
        with pytest.raises(EngineError) as failure:
            await c.served_models()
        result = await c.send(prompt())
    assert "cret" not in str(failure.value)
    assert result.error_kind == "connection" and "cret" not in (result.error or "")


async def test_every_request_carries_a_unique_request_id(server: CannedServer) -> None:
    server.routes[CHAT] = sse(chat("a", finish="stop"), DONE)
    async with client(server.url) as c, client(server.url) as other:
        for _ in range(2):
            assert (await c.send(prompt())).ok
        assert (await other.send(prompt())).ok
        assert (await c.send(prompt(), request_id="mine-7")).ok
    ids = [r.headers["x-request-id"] for r in server.requests]
    assert ids[-1] == "mine-7"
    assert len(set(ids)) == 4
    assert all(i.startswith("kitt-") for i in ids[:3])


async def test_no_authorization_header_without_api_key(server: CannedServer) -> None:
    assert (await send(server, sse(chat("a", finish="stop"), DONE))).ok
    assert "authorization" not in server.requests[0].headers


async def test_data_without_space_crlf_and_keepalive_comments(server: CannedServer) -> None:
    compact = b'data:{"choices":[{"delta":{"content":"x"},"finish_reason":null}]}'
    result = await send(
        server,
        sse(
            b": keep-alive\r\n\r\n",
            compact + b"\r",  # the CRLF is split across two chunks
            b"\n\r\n",
            b":ping\r\n\r\n",
            compact + b"\r\n\r\n",
            b"data:[DONE]\r\n\r\n",
        ),
    )
    assert result.ok, result.error
    assert len(result.content_ns) == 2
    assert_ordered(result)


async def test_events_of_one_chunk_share_its_arrival_time(server: CannedServer) -> None:
    result = await send(server, sse(ROLE + chat("a") + chat("b") + chat("c"), USAGE + DONE))
    assert result.ok, result.error
    assert len(result.content_ns) == 3
    assert len(set(result.content_ns)) == 1


async def test_null_and_empty_content_and_usage_only_events_do_not_count(
    server: CannedServer,
) -> None:
    result = await send(
        server,
        sse(ROLE, chat(""), chat(None), chat("a"), chat(None, finish="stop"), USAGE, DONE),
    )
    assert result.ok, result.error
    assert len(result.content_ns) == 1


async def test_reasoning_and_tool_call_deltas_count_as_content(server: CannedServer) -> None:
    call = [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{"}}]
    result = await send(
        server,
        sse(
            ROLE,
            chat(None, reasoning_content="thinking"),
            chat(None, reasoning="more"),
            chat(None, tool_calls=call),
            chat(None, tool_calls=[]),
            chat(None, finish="tool_calls"),
            DONE,
        ),
    )
    assert result.ok, result.error
    assert len(result.content_ns) == 3
    assert result.finish_reason == "tool_calls"


async def test_without_usage_token_counts_are_none(server: CannedServer) -> None:
    result = await send(server, sse(chat("a"), chat("b", finish="stop"), DONE))
    assert result.ok, result.error
    assert (result.prompt_tokens, result.completion_tokens) == (None, None)


async def test_final_event_without_blank_line_at_close(server: CannedServer) -> None:
    result = await send(server, sse_until_close(chat("a"), chat("b"), b"data: [DONE]"))
    assert result.ok, result.error
    assert len(result.content_ns) == 2
    assert_ordered(result)


async def test_clean_close_after_finish_reason_without_done_is_fine(server: CannedServer) -> None:
    result = await send(server, sse(chat("a"), chat(None, finish="stop"), USAGE))
    assert result.ok, result.error
    assert result.completion_tokens == 3
    assert_ordered(result)


async def test_end_of_stream_is_the_done_event_not_the_connection_drain(
    server: CannedServer,
) -> None:
    route = sse(chat("a", finish="stop"), DONE)
    route.insert(-1, 0.3)  # the last HTTP chunk comes 300 ms after [DONE]
    result = await send(server, route)
    returned = time.perf_counter_ns()
    assert result.ok, result.error
    assert returned - result.end_ns >= 100 * MS


async def test_completions_api(server: CannedServer) -> None:
    def text(t: str, finish: str | None = None) -> bytes:
        return event({"object": "text_completion", "choices": [
            {"index": 0, "text": t, "finish_reason": finish}
        ]})  # fmt: skip

    server.routes[("POST", "/v1/completions")] = sse(
        text("a"), text(""), text("b"), text("", "length"), USAGE, DONE
    )
    async with client(server.url) as c:
        result = await c.send(prompt(api="completions"))
    assert result.ok, result.error
    assert len(result.content_ns) == 2
    assert result.finish_reason == "length"
    body = server.requests[0].json()
    assert body["prompt"] == "hello there"
    assert "messages" not in body


# --- sending ----------------------------------------------------------------------------------


async def test_the_body_leaves_before_the_event_loop_turns(server: CannedServer) -> None:
    """A request's bytes go to the socket inside send(), before any other ready callback runs:
    with many streams sending at once, each must not wait for all the others (_EagerBodyRequest;
    Python >= 3.12 does this on its own)."""
    server.routes[("GET", "/v1/models")] = MODELS
    server.routes[CHAT] = sse(chat("a", finish="stop"), DONE)
    order: list[str] = []
    trace = aiohttp.TraceConfig()

    async def body_sent(*_: object) -> None:
        order.append("body sent")

    trace.on_request_chunk_sent.append(body_sent)
    async with client(server.url, trace_configs=[trace]) as c:
        await c.open_connections(1)  # a pooled connection: sending need not wait for anything
        order.clear()
        asyncio.get_running_loop().call_soon(order.append, "loop turned")
        assert (await c.send(prompt())).ok
    assert order[:2] == ["body sent", "loop turned"]


async def test_a_body_bigger_than_the_socket_buffers(
    server: CannedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Writing it suspends (the socket is full): the write task finishes what the eager start began.
    finished_later = []
    finish = openai_client._finish

    def spy(*args: Any) -> Any:
        finished_later.append(True)
        return finish(*args)

    monkeypatch.setattr(openai_client, "_finish", spy)
    server.routes[CHAT] = sse(chat("a", finish="stop"), DONE)
    big = PromptRequest(
        index=0, api="chat", prompt="word " * 4_000_000, max_tokens=3, ignore_eos=True
    )
    async with client(server.url) as c:
        result = await c.send(big)
        assert result.ok, result.error
        assert (await c.send(prompt())).ok  # and the connection is still good
    assert server.requests[0].json()["messages"][0]["content"] == big.prompt
    assert finished_later
    assert server.connections == 1


async def _until_resumed(future: asyncio.Future[str], log: list[str]) -> str:
    log.append("started")
    try:
        value = await future
    except ValueError as exc:
        log.append(f"caught {exc}")
        return "recovered"
    except asyncio.CancelledError:
        log.append("cancelled")
        raise
    log.append(f"got {value}")
    return value


async def test_eager_start_runs_the_first_step_at_once_then_behaves_like_a_task() -> None:
    loop = asyncio.get_running_loop()
    log: list[str] = []

    async def at_once() -> str:
        log.append("ran")
        return "done"

    task = asyncio.ensure_future(openai_client._start_eagerly(at_once()))
    assert log == ["ran"]  # before the task had a turn
    assert await task == "done"

    for outcome, expected in (("value", "v"), ("error", "recovered")):
        log.clear()
        future: asyncio.Future[str] = loop.create_future()
        task = asyncio.ensure_future(openai_client._start_eagerly(_until_resumed(future, log)))
        assert log == ["started"]
        await asyncio.sleep(0)
        assert not task.done()
        if outcome == "value":
            future.set_result("v")
        else:
            future.set_exception(ValueError("boom"))
        assert await task == expected
        assert log == ["started", "got v" if outcome == "value" else "caught boom"]


async def test_eager_start_cancellation_and_failure_reach_the_task() -> None:
    loop = asyncio.get_running_loop()
    log: list[str] = []
    future: asyncio.Future[str] = loop.create_future()
    task = asyncio.ensure_future(openai_client._start_eagerly(_until_resumed(future, log)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["started", "cancelled"]
    assert future.cancelled()  # as a task cancels the future it waits on

    async def fails_at_once() -> None:
        raise OSError("no route")

    task = asyncio.ensure_future(openai_client._start_eagerly(fails_at_once()))
    with pytest.raises(OSError, match="no route"):
        await task
    assert openai_client._start_eagerly(None) is None  # not a coroutine: left alone


# --- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, {"error": {"message": "CUDA out of memory", "code": 500}}, "CUDA out of memory"),
        (400, {"object": "error", "message": "max_tokens is too large"}, "max_tokens is too large"),
        (422, {"detail": [{"loc": ["body", "model"], "msg": "field required"}]}, "field required"),
        (503, b"<html><body>Service Unavailable</body></html>", "Service Unavailable"),
    ],
)
async def test_http_error_status(
    server: CannedServer, status: int, body: object, expected: str
) -> None:
    result = await send(server, json_reply(status, body))
    assert result.error_kind == f"http_{status}"
    assert result.http_status == status
    assert result.error is not None
    assert expected in result.error
    assert len(result.error) < 300
    assert result.content_ns == ()


@pytest.mark.parametrize(
    "error_event",
    [
        event({"error": {"message": "engine died", "type": "InternalServerError", "code": 500}}),
        event({"object": "error", "message": "engine died", "type": "InternalServerError"}),
        event({"error": "engine died", "error_type": "generation"}),
        b'event: error\ndata: {"message": "engine died"}\n\n',
    ],
)
async def test_error_event_mid_stream(server: CannedServer, error_event: bytes) -> None:
    result = await send(server, sse(ROLE, chat("a"), error_event, DONE))
    assert result.error_kind == "stream_error"
    assert result.error is not None
    assert "engine died" in result.error
    assert len(result.content_ns) == 1  # what came before the error is kept
    assert result.http_status == 200
    assert_ordered(result)


async def test_connection_dropped_mid_event(server: CannedServer) -> None:
    route = sse(chat("a"), chat("b"))[:-2]  # no final chunk
    route += [GAP, b'40\r\ndata: {"choices": [{"del', GAP, CLOSE]
    result = await send(server, route)
    assert result.error_kind == "truncated"
    assert len(result.content_ns) == 2
    assert_ordered(result)


@pytest.mark.parametrize(
    "route",
    [sse(chat("a"), chat("b")), sse_until_close(chat("a"), chat("b"))],
    ids=["chunked", "eof"],
)
async def test_clean_close_without_done_or_finish_reason_is_truncated(
    server: CannedServer, route: Script
) -> None:
    result = await send(server, route)
    assert result.error_kind == "truncated"
    assert result.error == "stream ended without [DONE] or finish_reason"
    assert len(result.content_ns) == 2


async def test_undecodable_event(server: CannedServer) -> None:
    result = await send(server, sse(chat("a"), b"data: {not json\n\n", chat("b"), DONE))
    assert result.error_kind == "bad_event"
    assert result.error is not None
    assert "{not json" in result.error
    assert len(result.content_ns) == 1


async def test_timeout_mid_stream_keeps_what_arrived(server: CannedServer) -> None:
    result = await send(server, sse(chat("a"), 5.0, DONE), request_timeout_s=0.3)
    assert result.error_kind == "timeout"
    assert len(result.content_ns) == 1
    assert result.end_ns - result.t0_ns >= 250 * MS
    assert_ordered(result)


async def test_timeout_before_the_response(server: CannedServer) -> None:
    result = await send(server, [5.0], request_timeout_s=0.2)
    assert result.error_kind == "timeout"
    assert result.http_status is None


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def test_connection_refused() -> None:
    async with client(_closed_port_url()) as c:
        result = await c.send(prompt())
    assert result.error_kind == "connection"
    assert result.error
    assert result.http_status is None


async def test_cancellation_propagates(server: CannedServer) -> None:
    server.routes[CHAT] = sse(chat("a"), 5.0, DONE)
    async with client(server.url) as c:
        task = asyncio.create_task(c.send(prompt()))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# --- models, tokenizer, pool --------------------------------------------------------------------

MODELS = json_reply(200, {"object": "list", "data": [{"id": "a", "object": "model"}, {"id": "b"}]})


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
async def test_served_models_with_any_base_url_form(server: CannedServer, suffix: str) -> None:
    server.routes[("GET", "/v1/models")] = MODELS
    async with client(server.url + suffix) as c:
        assert await c.served_models() == ["a", "b"]
    assert server.requests[0].path == "/v1/models"


async def test_served_models_unreachable_names_the_url() -> None:
    url = _closed_port_url()
    async with client(url) as c:
        with pytest.raises(EngineError, match=f"{url}/v1/models"):
            await c.served_models()


@pytest.mark.parametrize(
    "route",
    [
        json_reply(200, b"<html>hello</html>", "text/html"),
        json_reply(200, {"models": ["a"]}),
        json_reply(404, {"detail": "Not Found"}),
    ],
)
async def test_served_models_not_openai_shaped(server: CannedServer, route: Script) -> None:
    server.routes[("GET", "/v1/models")] = route
    async with client(server.url) as c:
        with pytest.raises(EngineError, match="/v1/models"):
            await c.served_models()


async def test_count_tokens_vllm_dialect(server: CannedServer) -> None:
    server.routes[("POST", "/tokenize")] = json_reply(
        200, {"count": 7, "max_model_len": 2048, "tokens": [1, 2, 3, 4, 5, 6, 7]}
    )
    async with client(server.url, model="my-model") as c:
        assert await c.count_tokens("some text") == 7
    assert server.requests[0].json() == {"model": "my-model", "prompt": "some text"}


async def test_count_tokens_llama_cpp_dialect(server: CannedServer) -> None:
    def llama_cpp(request: Received) -> Script:
        # llama-server ignores unknown fields and answers an empty list without `content`.
        return json_reply(200, {"tokens": [9, 9, 9] if "content" in request.json() else []})

    server.routes[("POST", "/tokenize")] = llama_cpp
    async with client(server.url) as c:
        assert await c.count_tokens("some text") == 3
    assert server.requests[-1].json() == {"content": "some text"}


async def test_count_tokens_without_endpoint(server: CannedServer) -> None:
    async with client(server.url) as c:
        assert await c.count_tokens("some text") is None
    async with client(_closed_port_url()) as c:
        assert await c.count_tokens("some text") is None


async def test_open_connections_leaves_them_pooled(server: CannedServer) -> None:
    server.routes[("GET", "/v1/models")] = MODELS
    server.routes[CHAT] = sse(ROLE, chat("a"), 0.05, chat("b", finish="length"), USAGE, DONE)
    async with client(server.url, pool_size=6) as c:
        await c.open_connections(6)
        assert server.connections == 6
        results = await asyncio.gather(*(c.send(prompt()) for _ in range(6)))
        assert all(r.ok for r in results)
        results = await asyncio.gather(*(c.send(prompt()) for _ in range(6)))
        assert all(r.ok for r in results)
    # The measured requests paid no connection set-up: they all reused the warm connections.
    assert server.connections == 6
    streamed = {r.connection for r in server.requests if r.path == CHAT[1]}
    assert streamed == set(range(6))


async def test_one_connection_serves_consecutive_streams(server: CannedServer) -> None:
    server.routes[CHAT] = sse(chat("a", finish="stop"), DONE)
    async with client(server.url, pool_size=1) as c:
        for _ in range(3):
            assert (await c.send(prompt())).ok
    assert server.connections == 1


async def test_open_connections_reports_an_unreachable_server() -> None:
    async with client(_closed_port_url()) as c:
        with pytest.raises(EngineError):
            await c.open_connections(2)


async def test_a_connection_closed_after_a_stream_is_not_a_failed_request(
    server: CannedServer,
) -> None:
    # llama-server announces keep-alive but closes the connection after every streamed
    # response; the next request, sent at once, can meet that closed connection in the pool.
    server.routes[("GET", "/v1/models")] = MODELS
    server.routes[CHAT] = [*sse(ROLE, chat("a"), chat("b", finish="length"), USAGE, DONE), CLOSE]
    async with client(server.url, pool_size=1) as c:
        await c.open_connections(1)
        results = [await c.send(prompt()) for _ in range(4)]
    assert [r.error for r in results] == [None] * 4
    assert all(len(r.content_ns) == 2 for r in results)
    assert server.connections >= 4  # each stream had its own connection
