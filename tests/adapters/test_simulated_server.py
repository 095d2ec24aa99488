"""The simulated engine server, run as a real process and spoken to over real sockets.

The SSE parsing here is deliberately tiny and separate from kitt's client, so that the server
is checked on its own.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.engine.simulated_server import EXIT_AFTER_CODE, LISTENING_PREFIX

pytestmark = pytest.mark.e2e


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        return host, int(port)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(*args: str) -> Server:
        log = tmp_path / f"server-{len(started)}.log"
        with log.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "adapters.engine.simulated_server", "--port", "0", *args],
                stdout=subprocess.PIPE, stderr=err,
            )
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert line.startswith(LISTENING_PREFIX), (line, log.read_text())
        server = Server(line.removeprefix(LISTENING_PREFIX).strip(), process, log)
        started.append(server)
        return server

    yield start
    for server in started:
        server.process.kill()
        server.process.wait()
        assert server.process.stdout is not None
        server.process.stdout.close()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as c:
        yield c


def sse_data(body: bytes) -> list[str]:
    """The `data` of each event of an SSE body (comments skipped; `data:` with or without a
    space; LF or CRLF line ends)."""
    events = []
    for block in body.decode().replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].removeprefix(" ") for line in block.split("\n")
                if line.startswith("data:")]
        if data:
            events.append("\n".join(data))
    return events


def chunks(body: bytes) -> list[dict[str, Any]]:
    """The JSON events of an SSE body ([DONE] excluded)."""
    return [json.loads(d) for d in sse_data(body) if d != "[DONE]"]


def texts(events: list[dict[str, Any]]) -> list[str]:
    """Content of the content-bearing events (chat deltas or completion texts)."""
    out = []
    for e in events:
        for choice in e.get("choices", []):
            text = choice["delta"].get("content") if "delta" in choice else choice.get("text")
            if text:
                out.append(text)
    return out


def chat(max_tokens: int = 4, *, usage: bool = True, stream: bool = True,
         content: object = "one two three", model: str = "simulated") -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}],
                            "max_tokens": max_tokens, "stream": stream}
    if usage:
        body["stream_options"] = {"include_usage": True}
    return body


def post_chat(client: httpx.Client, server: Server, body: dict[str, Any]) -> httpx.Response:
    return client.post(f"{server.url}/v1/chat/completions", json=body)


# ---------------------------------------------------------------- plain endpoints


def test_health_models_and_unknown_model(start_server: Callable[..., Server],
                                         client: httpx.Client) -> None:
    server = start_server("--served-model-name", "a", "--served-model-name", "b")
    assert client.get(f"{server.url}/health").status_code == 200
    models = client.get(f"{server.url}/v1/models").json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["a", "b"]

    response = post_chat(client, server, chat(model="c"))
    assert response.status_code == 404
    error = response.json()["error"]
    assert "`c` does not exist" in error["message"]
    assert error["code"] == 404


def test_tokenize_counts_words(start_server: Callable[..., Server],
                               client: httpx.Client) -> None:
    server = start_server("--max-model-len", "4096")
    answer = client.post(f"{server.url}/tokenize",
                         json={"model": "simulated", "prompt": "the quick  brown\nfox"}).json()
    assert answer["count"] == 4
    assert len(answer["tokens"]) == 4
    assert answer["max_model_len"] == 4096


def test_malformed_requests_get_http_errors(start_server: Callable[..., Server],
                                            client: httpx.Client) -> None:
    server = start_server()
    bad_json = client.post(f"{server.url}/v1/chat/completions", content=b"{not json")
    assert bad_json.status_code == 400
    assert "invalid request body" in bad_json.json()["error"]["message"]
    assert client.get(f"{server.url}/v1/chat/completions").status_code == 405
    assert client.get(f"{server.url}/nowhere").status_code == 404
    too_long = post_chat(client, server, chat(max_tokens=40_000))
    assert too_long.status_code == 400
    assert "maximum context length" in too_long.json()["error"]["message"]


# ---------------------------------------------------------------- streams


def test_chat_stream_shape(start_server: Callable[..., Server], client: httpx.Client) -> None:
    server = start_server("--ttft-ms", "1", "--itl-ms", "1")
    response = post_chat(client, server, chat(max_tokens=5, content="a b c d e f g"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["transfer-encoding"] == "chunked"
    data = sse_data(response.content)
    assert data[-1] == "[DONE]"
    events = chunks(response.content)
    role, *content, usage = events
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": None}
    assert texts(content) == [" tok"] * 5
    assert [e["choices"][0]["finish_reason"] for e in content] == [None] * 4 + ["length"]
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
    assert len({e["id"] for e in events}) == 1
    assert events[0]["object"] == "chat.completion.chunk"


def test_role_chunk_and_ping_go_out_at_arrival(start_server: Callable[..., Server],
                                               client: httpx.Client) -> None:
    # A client that took either for the first token would measure a TTFT near 0, not 300 ms.
    server = start_server("--ttft-ms", "300", "--itl-ms", "0", "--keepalive-comments")
    with client.stream("POST", f"{server.url}/v1/chat/completions",
                       json=chat(max_tokens=2)) as response:
        parts = response.iter_raw()
        first = next(parts)
        rest = b"".join(parts)
    assert b'"role":"assistant"' in first and b": ping" in first
    assert b" tok" not in first
    assert texts(chunks(first + rest)) == [" tok"] * 2


def test_completions_stream_without_usage_unless_asked(start_server: Callable[..., Server],
                                                       client: httpx.Client) -> None:
    server = start_server("--ttft-ms", "0", "--itl-ms", "0")
    body = {"model": "simulated", "prompt": "x y", "max_tokens": 3, "stream": True}
    response = client.post(f"{server.url}/v1/completions", json=body)
    events = chunks(response.content)
    assert texts(events) == [" tok"] * 3
    assert all("usage" not in e for e in events)
    assert events[0]["object"] == "text_completion"

    body["stream_options"] = {"include_usage": True}
    events = chunks(client.post(f"{server.url}/v1/completions", json=body).content)
    assert events[-1]["usage"]["completion_tokens"] == 3
    assert events[-1]["usage"]["prompt_tokens"] == 2


def test_no_usage_output_tokens_and_tokens_per_chunk(start_server: Callable[..., Server],
                                                     client: httpx.Client) -> None:
    server = start_server("--ttft-ms", "0", "--itl-ms", "0", "--no-usage",
                          "--output-tokens", "7", "--tokens-per-chunk", "3", "--no-role-chunk")
    events = chunks(post_chat(client, server, chat(max_tokens=10)).content)
    assert all("usage" not in e for e in events)
    # No role chunk: every event carries content; 7 tokens in chunks of 3.
    assert texts(events) == [" tok tok tok", " tok tok tok", " tok"]
    assert len(events) == 3
    # Fewer tokens than max_tokens: the engine stopped by itself.
    assert events[-1]["choices"][0]["finish_reason"] == "stop"


def test_non_streaming_answer(start_server: Callable[..., Server],
                              client: httpx.Client) -> None:
    server = start_server("--ttft-ms", "0", "--itl-ms", "0")
    answer = post_chat(client, server, chat(max_tokens=3, stream=False)).json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"] == " tok tok tok"
    assert answer["usage"]["completion_tokens"] == 3
    # Prompts as token ids, and chat content as parts, count like words.
    ids = client.post(f"{server.url}/v1/completions",
                      json={"prompt": [1, 2, 3, 4], "max_tokens": 2}).json()
    assert ids["choices"][0]["text"] == " tok tok"
    assert ids["usage"]["prompt_tokens"] == 4
    parts = chat(max_tokens=1, stream=False, content=[{"type": "text", "text": "a b"}])
    assert post_chat(client, server, parts).json()["usage"]["prompt_tokens"] == 2


def test_wire_variants(start_server: Callable[..., Server], client: httpx.Client) -> None:
    server = start_server("--ttft-ms", "0", "--itl-ms", "0", "--no-space", "--crlf",
                          "--keepalive-comments", "--no-done")
    body = post_chat(client, server, chat(max_tokens=3)).content
    assert body.startswith(b"data:{")
    assert b"data: " not in body
    assert b"\r\n\r\n" in body and b"}\n" not in body
    assert b": ping\r\n\r\n" in body
    assert "[DONE]" not in sse_data(body)
    assert texts(chunks(body)) == [" tok"] * 3


def test_keep_alive_and_pipelined_requests_on_one_connection(
    start_server: Callable[..., Server],
) -> None:
    server = start_server("--ttft-ms", "0", "--itl-ms", "0")
    payload = json.dumps(chat(max_tokens=2)).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json"
               b"\r\ncontent-length: %d\r\n\r\n%b" % (len(payload), payload))
    with socket.create_connection(server.address, timeout=10) as sock:
        sock.sendall(request)  # one request, then its answer ...
        first = _read_until(sock, b"0\r\n\r\n")
        # ... then two at once, the second asking to close.
        sock.sendall(request + request.replace(b"host: x", b"host: x\r\nconnection: close"))
        rest = _read_until_closed(sock)
    assert first.startswith(b"HTTP/1.1 200 OK")
    assert rest.count(b"HTTP/1.1 200 OK") == 2
    assert rest.endswith(b"0\r\n\r\n")
    assert b"chatcmpl-sim2" in rest and b"chatcmpl-sim3" in rest


def _read_until(sock: socket.socket, end: bytes) -> bytes:
    data = b""
    while not data.endswith(end):
        more = sock.recv(65536)
        assert more, data
        data += more
    return data


def _read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while more := sock.recv(65536):
        data += more
    return data


def test_burst_mode_sends_everything(start_server: Callable[..., Server],
                                     client: httpx.Client) -> None:
    server = start_server("--ttft-ms", "0", "--itl-ms", "0")
    events = chunks(post_chat(client, server, chat(max_tokens=2000)).content)
    assert len(texts(events)) == 2000
    assert events[-1]["usage"]["completion_tokens"] == 2000


# ---------------------------------------------------------------- faults


def test_fault_http_500_every_second_request(start_server: Callable[..., Server],
                                             client: httpx.Client) -> None:
    server = start_server("--ttft-ms", "0", "--itl-ms", "0", "--fault", "http-500:2")
    statuses = [post_chat(client, server, chat()).status_code for _ in range(4)]
    assert statuses == [200, 500, 200, 500]
    error = post_chat(client, server, chat())  # request 5: fine
    assert error.status_code == 200
    failed = post_chat(client, server, chat())
    assert failed.json()["error"]["code"] == 500
    stats = client.get(f"{server.url}/stats").json()
    assert stats["requests"]["faults"] == {"http-500": 3}


def test_fault_mid_stream_error(start_server: Callable[..., Server],
                                client: httpx.Client) -> None:
    server = start_server("--ttft-ms", "0", "--itl-ms", "1", "--fault", "mid-stream-error:1")
    response = post_chat(client, server, chat(max_tokens=10))
    assert response.status_code == 200
    events = chunks(response.content)
    assert texts(events) == [" tok"] * 5
    assert events[-1]["error"]["code"] == 500
    assert events[-1]["error"]["message"]
    assert all(c.get("finish_reason") is None for e in events for c in e.get("choices", []))
    recent = client.get(f"{server.url}/stats?requests=1").json()["recent"]
    assert [(r["content_events"], r["outcome"]) for r in recent] == [(5, "mid-stream-error")]


def test_fault_truncate_breaks_the_stream(start_server: Callable[..., Server],
                                         client: httpx.Client) -> None:
    server = start_server("--ttft-ms", "0", "--itl-ms", "1", "--fault", "truncate:1")
    received = b""
    with (pytest.raises(httpx.RemoteProtocolError),
          client.stream("POST", f"{server.url}/v1/chat/completions",
                        json=chat(max_tokens=10)) as response):
        for part in response.iter_raw():
            received += part
    complete, _, partial = received.rpartition(b"\n\n")
    assert texts(chunks(complete + b"\n\n")) == [" tok"] * 5
    assert partial.startswith(b"data: {") and not partial.endswith(b"}")


def test_fault_no_finish_ends_cleanly_without_finish(start_server: Callable[..., Server],
                                                     client: httpx.Client) -> None:
    server = start_server("--ttft-ms", "0", "--itl-ms", "0", "--fault", "no-finish:1")
    response = post_chat(client, server, chat(max_tokens=4))
    assert response.status_code == 200  # a complete chunked body: httpx raises otherwise
    events = chunks(response.content)
    assert texts(events) == [" tok"] * 4
    assert "[DONE]" not in sse_data(response.content)
    assert all(c.get("finish_reason") is None for e in events for c in e["choices"])
    # The connection stays usable.
    assert post_chat(client, server, chat()).status_code == 200


def test_exit_after_kills_the_process_and_its_streams(start_server: Callable[..., Server],
                                                      client: httpx.Client) -> None:
    server = start_server("--ttft-ms", "0", "--itl-ms", "20", "--exit-after", "1")
    with client.stream("POST", f"{server.url}/v1/chat/completions",
                       json=chat(max_tokens=500)) as response:
        parts = response.iter_raw()
        assert b"data:" in next(parts)  # the stream is open and flowing
        with httpx.Client(timeout=10.0) as other, pytest.raises(httpx.TransportError):
            post_chat(other, server, chat())  # request 2: the server dies on arrival
        with pytest.raises(httpx.RemoteProtocolError):
            for _ in parts:
                pass
    assert server.process.wait(timeout=10) == EXIT_AFTER_CODE
    assert "exiting now" in server.log.read_text()


@pytest.mark.parametrize("args", [["--fault", "explode:2"], ["--fault", "http-500:0"],
                                  ["--itl-ms", "-1"], ["--nope"]])
def test_bad_arguments_exit_with_usage_error(args: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "adapters.engine.simulated_server", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "error:" in result.stderr


# ---------------------------------------------------------------- timing


async def _timed_stream(address: tuple[str, int], body: dict[str, Any]) -> list[int]:
    """Send one request on a fresh connection; return [t0, arrival of each content event]
    (time.perf_counter_ns), t0 taken right before sending."""
    reader, writer = await asyncio.open_connection(*address)
    payload = json.dumps(body).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: "
               b"application/json\r\ncontent-length: %d\r\n\r\n%b" % (len(payload), payload))
    times = [time.perf_counter_ns()]
    writer.write(request)
    pending = b""
    while not pending.endswith(b"0\r\n\r\n"):
        data = await reader.read(65536)
        now = time.perf_counter_ns()
        assert data, "the stream ended early"
        *complete, pending = (pending + data).split(b"\n\n")
        times += [now for event in complete if b'"content":" tok' in event]
    writer.close()
    return times


def test_timing_matches_the_schedule(start_server: Callable[..., Server],
                                     client: httpx.Client) -> None:
    server = start_server("--ttft-ms", "50", "--itl-ms", "10")

    async def rounds() -> list[list[int]]:
        results = []
        for _ in range(3):  # rounds of concurrent streams
            results += await asyncio.gather(
                *(_timed_stream(server.address, chat(max_tokens=32)) for _ in range(8))
            )
        return results

    # Other processes competing for the 2 cores can only make writes late, never early; so
    # the schedule is shown met when one of a few attempts meets it, and every attempt must
    # never be early and must account for every event exactly.
    attempts = []
    for _ in range(3):
        assert client.post(f"{server.url}/stats/reset").status_code == 200
        streams = asyncio.run(rounds())
        stats = client.get(f"{server.url}/stats").json()
        assert all(len(s) == 33 for s in streams)
        assert min((s[1] - s[0]) / 1e6 for s in streams) >= 50  # never early
        assert stats["requests"]["served"] == 24
        assert stats["events_written"] == 24 * (1 + 32 + 1 + 1)  # role, content, usage, [DONE]
        late = stats["lateness_ms"]
        assert late["first_token"]["count"] == 24
        assert late["later_tokens"]["count"] == 24 * 31
        assert 0 <= late["later_tokens"]["p50"] <= late["later_tokens"]["p99"] \
            <= late["later_tokens"]["max"]
        observed = {
            "ttft_ms": statistics.median((s[1] - s[0]) / 1e6 for s in streams),
            "gap_ms": statistics.median(
                (b - a) / 1e6 for s in streams for a, b in itertools.pairwise(s[1:])
            ),
            # Errors do not accumulate: the last token is due 50 + 31 * 10 ms after arrival.
            "last_ms": statistics.median((s[-1] - s[0]) / 1e6 for s in streams),
            "server_first_late_ms": late["first_token"]["p50"],
            "server_later_late_ms": late["later_tokens"]["p50"],
        }
        attempts.append(observed)
        # On an idle machine: TTFT p50 50.6-50.8 ms, gaps 10.00 ms, server lateness p50 0.05 ms;
        # with both cores busy with other work, TTFT p50 up to 55 ms.
        if (abs(observed["ttft_ms"] - 50) <= 5 and abs(observed["gap_ms"] - 10) <= 1
                and abs(observed["last_ms"] - 360) <= 8
                and observed["server_first_late_ms"] < 3 and observed["server_later_late_ms"] < 3):
            return
    pytest.fail(f"no attempt kept to the schedule (p50s): {attempts}")


def test_stats_per_request_and_reset(start_server: Callable[..., Server],
                                     client: httpx.Client) -> None:
    server = start_server("--ttft-ms", "5", "--itl-ms", "1")
    events = chunks(post_chat(client, server, chat(max_tokens=3)).content)
    recent = client.get(f"{server.url}/stats?requests=1").json()["recent"]
    assert [r["id"] for r in recent] == [events[0]["id"]]
    r = recent[0]
    assert r["first_token_due_ns"] - r["arrival_ns"] == 5_000_000
    assert r["first_token_due_ns"] <= r["first_token_written_ns"] <= r["last_token_written_ns"]
    assert r["content_events"] == 3 and r["outcome"] == "ok"

    assert client.post(f"{server.url}/stats/reset").status_code == 200
    stats = client.get(f"{server.url}/stats").json()
    assert stats["requests"]["served"] == 0
    assert stats["lateness_ms"]["first_token"] == {
        "count": 0, "mean": None, "p50": None, "p99": None, "max": None}
    assert "recent" not in stats


def test_x_request_id_becomes_the_response_id(start_server: Callable[..., Server],
                                               client: httpx.Client) -> None:
    # As vLLM does: chatcmpl-/cmpl- + the client's X-Request-Id, in every chunk and in /stats.
    server = start_server("--ttft-ms", "1", "--itl-ms", "1")
    tagged = client.post(f"{server.url}/v1/chat/completions", json=chat(max_tokens=2),
                         headers={"X-Request-Id": "kitt-abc-1"})
    assert {e["id"] for e in chunks(tagged.content)} == {"chatcmpl-kitt-abc-1"}
    completion = client.post(f"{server.url}/v1/completions",
                             json={"prompt": "a b", "max_tokens": 2, "stream": True},
                             headers={"x-request-id": "kitt-abc-2"})
    assert {e["id"] for e in chunks(completion.content)} == {"cmpl-kitt-abc-2"}
    untagged = chunks(post_chat(client, server, chat(max_tokens=2)).content)
    recent = client.get(f"{server.url}/stats?requests=1").json()["recent"]
    assert [r["id"] for r in recent] == ["chatcmpl-kitt-abc-1", "cmpl-kitt-abc-2",
                                         untagged[0]["id"]]
    assert untagged[0]["id"] == "chatcmpl-sim3"
