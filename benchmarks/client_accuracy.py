"""How exactly, and how fast, kitt's own client measures: `nox -s perf` (or `make perf`).

Accuracy: the simulated engine writes the first token of every request exactly `--ttft-ms`
after it arrives and the next ones `--itl-ms` apart (its /stats reports how late it itself was).
kitt's real client and load generator drive it at 1, 64 and 256 concurrent streams; the table
shows client-measured TTFT and ITL minus that scheduled ground truth. A closed loop whose
requests all take the same time keeps its streams in step: requests go out together and tokens
come back together, the worst case for a one-thread client (and what an engine that emits one
token per stream per decode step does too). The `poisson` rows send the same number of requests
as an open loop at the same mean concurrency (rate = streams / request duration), out of step.

Decomposition: every request carries an X-Request-Id, which the simulated engine makes its
response id, so each request's server timestamps (GET /stats?requests=1) pair with the client's.
TTFT error = send (t0 -> the server read the request) + server lateness (first token written
minus due) + receive (written -> the client's timestamp), exactly. Of the send delay, `client`
is t0 -> the body handed to the socket (aiohttp's on_request_chunk_sent); the rest is the
kernel and the server getting to read it.

Capacity: the engine in burst mode (every event due at once) at the same concurrencies; the
table shows the SSE events per second kitt's client parsed, and, measured in the same run, the
rate of a bare aiohttp reader that only counts `data:` markers in the raw bytes, as an upper
bound. Server and client share this machine's cores, so read ratios, not absolute numbers.
Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import numpy as np
from rich.console import Console
from rich.table import Table

from adapters.engine.simulated import SimulatedEngine
from adapters.inference.openai_client import HttpxInferenceClient
from kitt.domain.engine import EngineLaunch
from kitt.domain.load import LoadSpec
from kitt.domain.records import RequestRecord, StreamResult
from kitt.domain.workload import PromptRequest, SyntheticWorkload, WorkloadSpec
from kitt.ports import RunningEngine
from kitt.services.loadgen import LoadRun

MODEL = "perf"


@dataclass
class AccuracyRow:
    streams: int
    load: str  # closed | poisson
    requests: int
    ttft_err_p50_ms: float
    ttft_err_p99_ms: float
    itl_err_p50_ms: float
    itl_err_p99_ms: float
    server_first_late_p99_ms: float | None
    server_later_late_p99_ms: float | None
    # The TTFT error's parts (p50, p99), when the server's records pair with the client's.
    send_ms: tuple[float, float] | None = None
    client_send_ms: tuple[float, float] | None = None  # of send: t0 -> body at the socket
    server_late_ms: tuple[float, float] | None = None
    receive_ms: tuple[float, float] | None = None


@dataclass
class CapacityRow:
    streams: int
    events: int
    kitt_events_per_s: float
    raw_events_per_s: float


def start_engine(log_dir: Path, *args: str) -> RunningEngine:
    launch = EngineLaunch(engine="simulated", model=MODEL, mode="simulated", run_id="perf",
                          log_dir=log_dir, startup_timeout_s=30, engine_args=args)
    return SimulatedEngine().start(launch)


class _Tagged:
    """kitt's client as LoadRun sees it, but each request carries an X-Request-Id of ours, so
    that its result pairs with the server's record of it."""

    def __init__(self, client: HttpxInferenceClient) -> None:
        self.client = client
        self.results: dict[str, StreamResult] = {}
        self._ids = itertools.count()

    async def send(self, request: PromptRequest) -> StreamResult:
        request_id = f"acc-{next(self._ids)}"
        result = await self.client.send(request, request_id=request_id)
        self.results[request_id] = result
        return result


def _body_sent_trace(sent_ns: dict[str, int]) -> aiohttp.TraceConfig:
    """Records when each request's body was handed to the socket, by X-Request-Id."""
    trace = aiohttp.TraceConfig()

    async def headers(_: object, ctx: SimpleNamespace, params: aiohttp.TraceRequestHeadersSentParams
                      ) -> None:
        ctx.request_id = params.headers.get("X-Request-Id")

    async def body(_: object, ctx: SimpleNamespace, __: object) -> None:
        request_id = getattr(ctx, "request_id", None)
        if request_id is not None:
            sent_ns.setdefault(request_id, time.perf_counter_ns())

    trace.on_request_headers_sent.append(headers)
    trace.on_request_chunk_sent.append(body)
    return trace


@dataclass
class Drive:
    records: list[RequestRecord]
    results: dict[str, StreamResult]  # by X-Request-Id
    body_sent_ns: dict[str, int]  # by X-Request-Id


async def drive(endpoint: str, streams: int, requests: int, output_tokens: int,
                stream: str, load: LoadSpec | None = None) -> Drive:
    """kitt's LoadRun + client: a warm-up round at full concurrency, then the measured load
    (by default a closed loop at `streams`)."""
    load = load or LoadSpec(concurrency=streams, requests=requests)
    pool = max(streams, load.pool_size())
    records: list[RequestRecord] = []
    sent: dict[str, int] = {}
    spec = WorkloadSpec(input_tokens=32, output_tokens=output_tokens)
    async with HttpxInferenceClient(base_url=endpoint, model=MODEL, pool_size=pool,
                                    request_timeout_s=120,
                                    trace_configs=[_body_sent_trace(sent)]) as http:
        client = _Tagged(http)
        await http.open_connections(pool)
        for phase in ("warmup", "measure"):
            if phase == "measure":
                await reset_stats(endpoint)
                records.clear()
                client.results.clear()
                sent.clear()
            await LoadRun(
                client,  # type: ignore[arg-type]  # LoadRun only sends
                scenario=stream, repetition=1,
                load=load if phase == "measure" else LoadSpec(concurrency=streams,
                                                              requests=streams),
                workload=SyntheticWorkload(spec, seed=0, stream=f"{stream}/{phase}"),
                warmup=SyntheticWorkload(spec, seed=0, stream=f"{stream}/unused"),
                seed=0, sink=records.append,
            ).run()
    return Drive(records, client.results, sent)


async def reset_stats(endpoint: str) -> None:
    async with aiohttp.ClientSession() as s, s.post(f"{endpoint}/stats/reset") as r:
        r.raise_for_status()


async def server_stats(endpoint: str) -> dict:  # type: ignore[type-arg]
    async with aiohttp.ClientSession() as s, s.get(f"{endpoint}/stats?requests=1") as r:
        return await r.json()  # type: ignore[no-any-return]


def _p50_p99(values: list[int]) -> tuple[float, float]:
    ms = np.array(values) / 1e6
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def decompose(run: Drive, stats: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """The TTFT error's parts, for the requests whose server record pairs with the client's
    (the server's response id is chatcmpl-<X-Request-Id>); empty when none does."""
    server = {r["id"].partition("-")[2]: r for r in stats.get("recent", [])}
    send, client, late, receive = [], [], [], []
    for request_id, result in run.results.items():
        record = server.get(request_id)
        if record is None or not result.ok or not result.content_ns:
            continue
        send.append(record["arrival_ns"] - result.t0_ns)
        late.append(record["first_token_written_ns"] - record["first_token_due_ns"])
        receive.append(result.content_ns[0] - record["first_token_written_ns"])
        if request_id in run.body_sent_ns:
            client.append(run.body_sent_ns[request_id] - result.t0_ns)
    if not send:
        return {}
    parts = {"send_ms": _p50_p99(send), "server_late_ms": _p50_p99(late),
             "receive_ms": _p50_p99(receive)}
    if len(client) == len(send):
        parts["client_send_ms"] = _p50_p99(client)
    return parts


def accuracy(log_dir: Path, streams: int, ttft_ms: float, itl_ms: float,
             output_tokens: int, pattern: str = "closed") -> AccuracyRow:
    engine = start_engine(log_dir, f"--ttft-ms={ttft_ms}", f"--itl-ms={itl_ms}")
    try:
        requests = max(32, 2 * streams)
        load = None
        if pattern == "poisson":
            # The same mean number of requests in flight (Little's law), but out of step.
            duration_s = (ttft_ms + (output_tokens - 1) * itl_ms) / 1000
            load = LoadSpec(pattern="poisson", rate_rps=streams / duration_s, requests=requests)
        run = asyncio.run(drive(engine.endpoint, streams, requests, output_tokens,
                                f"acc-{pattern}-{streams}", load))
        stats = asyncio.run(server_stats(engine.endpoint))
    finally:
        engine.stop()
    records = run.records
    ok = [r for r in records if r.ok]
    if len(ok) != len(records):
        failures = {r.error_kind for r in records if not r.ok}
        raise SystemExit(f"{len(records) - len(ok)} requests failed at {streams} streams: "
                         f"{failures}")
    ttft_err = np.array([r.ttft_ms for r in ok]) - ttft_ms
    itl_err = np.array([gap for r in ok for gap in r.itl_ms]) - itl_ms
    late = stats["lateness_ms"]
    return AccuracyRow(
        streams=streams,
        load=pattern,
        requests=len(ok),
        ttft_err_p50_ms=float(np.percentile(ttft_err, 50)),
        ttft_err_p99_ms=float(np.percentile(ttft_err, 99)),
        itl_err_p50_ms=float(np.percentile(itl_err, 50)),
        itl_err_p99_ms=float(np.percentile(itl_err, 99)),
        server_first_late_p99_ms=late["first_token"]["p99"],
        server_later_late_p99_ms=late["later_tokens"]["p99"],
        **decompose(run, stats),
    )


async def raw_reader(endpoint: str, streams: int, requests: int, output_tokens: int) -> float:
    """Events/s of a reader that does no SSE parsing at all: the ceiling for any client."""
    body = {"model": MODEL, "prompt": "hello " * 32, "max_tokens": output_tokens,
            "stream": True, "ignore_eos": True}
    connector = aiohttp.TCPConnector(limit=streams)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one() -> int:
            async with session.post(f"{endpoint}/v1/completions", json=body) as response:
                count = 0
                async for chunk in response.content.iter_any():
                    count += chunk.count(b"data:")
                return count

        await asyncio.gather(*(one() for _ in range(streams)))  # open the pool
        remaining = requests

        async def worker() -> int:
            nonlocal remaining
            total = 0
            while remaining > 0:
                remaining -= 1
                total += await one()
            return total

        start = time.perf_counter()
        events = sum(await asyncio.gather(*(worker() for _ in range(streams))))
        return events / (time.perf_counter() - start)


def capacity(log_dir: Path, streams: int, output_tokens: int) -> CapacityRow:
    engine = start_engine(log_dir, "--ttft-ms=0", "--itl-ms=0")
    try:
        requests = max(16, 4 * streams)
        records = asyncio.run(drive(engine.endpoint, streams, requests, output_tokens,
                                    f"cap-{streams}")).records
        raw = asyncio.run(raw_reader(engine.endpoint, streams, requests, output_tokens))
    finally:
        engine.stop()
    events = sum(len(r.chunk_ms) for r in records if r.ok)
    window_s = (max(r.end_ms for r in records) - min(r.start_ms for r in records)) / 1000
    return CapacityRow(streams=streams, events=events, kitt_events_per_s=events / window_s,
                       raw_events_per_s=raw)


def _pair(value: tuple[float, float] | None, sign: str = "+") -> str:
    return "-" if value is None else f"{value[0]:{sign}.3f} / {value[1]:{sign}.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--itl-ms", type=float, default=10.0)
    parser.add_argument("--output-tokens", type=int, default=64)
    parser.add_argument("--burst-tokens", type=int, default=256)
    parser.add_argument("--no-poisson", dest="poisson", action="store_false",
                        help="skip the out-of-step (poisson) accuracy rows")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    console = Console(highlight=False, width=max(120, Console().width))

    with tempfile.TemporaryDirectory(prefix="kitt-perf-") as tmp:
        log_dir = Path(tmp)
        acc = []
        for n in args.streams:
            acc.append(accuracy(log_dir, n, args.ttft_ms, args.itl_ms, args.output_tokens))
            if args.poisson and n > 1:  # one stream is never out of step with itself
                acc.append(accuracy(log_dir, n, args.ttft_ms, args.itl_ms, args.output_tokens,
                                    "poisson"))
        cap = [capacity(log_dir, n, args.burst_tokens) for n in args.streams]

    table = Table(title=f"Accuracy: client-measured minus scheduled (TTFT {args.ttft_ms:g} ms, "
                  f"ITL {args.itl_ms:g} ms, {args.output_tokens} tokens)", title_justify="left")
    for header in ("streams", "load", "requests", "TTFT err p50", "TTFT err p99", "ITL err p50",
                   "ITL err p99", "server late p99 (first / later)"):
        table.add_column(header, justify="right")
    for a in acc:
        table.add_row(str(a.streams), a.load, str(a.requests), f"{a.ttft_err_p50_ms:+.3f} ms",
                      f"{a.ttft_err_p99_ms:+.3f} ms", f"{a.itl_err_p50_ms:+.3f} ms",
                      f"{a.itl_err_p99_ms:+.3f} ms",
                      f"{a.server_first_late_p99_ms:.3f} / {a.server_later_late_p99_ms:.3f} ms")
    console.print(table)

    parts = [a for a in acc if a.send_ms is not None]
    if parts:
        table = Table(title="TTFT error = send + server lateness + receive, per request "
                      "(p50 / p99)", title_justify="left")
        for header in ("streams", "load", "send: t0 -> server read it", "of which client: "
                       "t0 -> socket", "server lateness", "receive: written -> timestamp"):
            table.add_column(header, justify="right")
        for a in parts:
            table.add_row(str(a.streams), a.load, _pair(a.send_ms), _pair(a.client_send_ms),
                          _pair(a.server_late_ms), _pair(a.receive_ms))
        console.print(table)

    table = Table(title=f"Capacity: SSE events/s parsed, burst mode, {args.burst_tokens} "
                  "events per request", title_justify="left")
    for header in ("streams", "events", "kitt client", "bare aiohttp reader", "kitt / bare"):
        table.add_column(header, justify="right")
    for c in cap:
        table.add_row(str(c.streams), f"{c.events:,}", f"{c.kitt_events_per_s:,.0f}/s",
                      f"{c.raw_events_per_s:,.0f}/s",
                      f"{c.kitt_events_per_s / c.raw_events_per_s:.2f}")
    console.print(table)
    best = max(cap, key=lambda c: c.kitt_events_per_s)
    console.print(f"highest sustained rate of kitt's client: {best.kitt_events_per_s:,.0f} "
                  f"events/s at {best.streams} streams")
    if args.json:
        args.json.write_text(json.dumps({"accuracy": [asdict(a) for a in acc],
                                         "capacity": [asdict(c) for c in cap]}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
