"""How exactly, and how fast, kitt's own client measures: `nox -s perf` (or `make perf`).

Accuracy: the simulated engine writes the first token of every request exactly `--ttft-ms`
after it arrives and the next ones `--itl-ms` apart (its /stats reports how late it itself was).
kitt's real client and load generator drive it at 1, 64 and 256 concurrent streams; the table
shows client-measured TTFT and ITL minus that scheduled ground truth.

Capacity: the engine in burst mode (every event due at once) at the same concurrencies; the
table shows the SSE events per second kitt's client parsed, and, measured in the same run, the
rate of a bare aiohttp reader that only counts `data:` markers in the raw bytes, as an upper
bound. Server and client share this machine's cores, so read ratios, not absolute numbers.
Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import numpy as np
from rich.console import Console
from rich.table import Table

from adapters.engine.simulated import SimulatedEngine
from adapters.inference.openai_client import HttpxInferenceClient
from kitt.domain.engine import EngineLaunch
from kitt.domain.load import LoadSpec
from kitt.domain.records import RequestRecord
from kitt.domain.workload import SyntheticWorkload, WorkloadSpec
from kitt.ports import RunningEngine
from kitt.services.loadgen import LoadRun

MODEL = "perf"


@dataclass
class AccuracyRow:
    streams: int
    requests: int
    ttft_err_p50_ms: float
    ttft_err_p99_ms: float
    itl_err_p50_ms: float
    itl_err_p99_ms: float
    server_first_late_p99_ms: float | None
    server_later_late_p99_ms: float | None


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


async def drive(endpoint: str, streams: int, requests: int, output_tokens: int,
                stream: str) -> list[RequestRecord]:
    """kitt's LoadRun + client: a warm-up round at full concurrency, then the measured load."""
    records: list[RequestRecord] = []
    spec = WorkloadSpec(input_tokens=32, output_tokens=output_tokens)
    async with HttpxInferenceClient(base_url=endpoint, model=MODEL, pool_size=streams,
                                    request_timeout_s=120) as client:
        await client.open_connections(streams)
        for phase, count in (("warmup", streams), ("measure", requests)):
            if phase == "measure":
                await reset_stats(endpoint)
                records.clear()
            await LoadRun(
                client, scenario=stream, repetition=1,
                load=LoadSpec(concurrency=streams, requests=count),
                workload=SyntheticWorkload(spec, seed=0, stream=f"{stream}/{phase}"),
                warmup=SyntheticWorkload(spec, seed=0, stream=f"{stream}/unused"),
                seed=0, sink=records.append,
            ).run()
    return records


async def reset_stats(endpoint: str) -> None:
    async with aiohttp.ClientSession() as s, s.post(f"{endpoint}/stats/reset") as r:
        r.raise_for_status()


async def server_stats(endpoint: str) -> dict:  # type: ignore[type-arg]
    async with aiohttp.ClientSession() as s, s.get(f"{endpoint}/stats") as r:
        return await r.json()  # type: ignore[no-any-return]


def accuracy(log_dir: Path, streams: int, ttft_ms: float, itl_ms: float,
             output_tokens: int) -> AccuracyRow:
    engine = start_engine(log_dir, f"--ttft-ms={ttft_ms}", f"--itl-ms={itl_ms}")
    try:
        requests = max(32, 2 * streams)
        records = asyncio.run(drive(engine.endpoint, streams, requests, output_tokens,
                                    f"acc-{streams}"))
        stats = asyncio.run(server_stats(engine.endpoint))
    finally:
        engine.stop()
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
        requests=len(ok),
        ttft_err_p50_ms=float(np.percentile(ttft_err, 50)),
        ttft_err_p99_ms=float(np.percentile(ttft_err, 99)),
        itl_err_p50_ms=float(np.percentile(itl_err, 50)),
        itl_err_p99_ms=float(np.percentile(itl_err, 99)),
        server_first_late_p99_ms=late["first_token"]["p99"],
        server_later_late_p99_ms=late["later_tokens"]["p99"],
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
                                    f"cap-{streams}"))
        raw = asyncio.run(raw_reader(engine.endpoint, streams, requests, output_tokens))
    finally:
        engine.stop()
    events = sum(len(r.chunk_ms) for r in records if r.ok)
    window_s = (max(r.end_ms for r in records) - min(r.start_ms for r in records)) / 1000
    return CapacityRow(streams=streams, events=events, kitt_events_per_s=events / window_s,
                       raw_events_per_s=raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--itl-ms", type=float, default=10.0)
    parser.add_argument("--output-tokens", type=int, default=64)
    parser.add_argument("--burst-tokens", type=int, default=256)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    console = Console(highlight=False, width=max(120, Console().width))

    with tempfile.TemporaryDirectory(prefix="kitt-perf-") as tmp:
        log_dir = Path(tmp)
        acc = [accuracy(log_dir, n, args.ttft_ms, args.itl_ms, args.output_tokens)
               for n in args.streams]
        cap = [capacity(log_dir, n, args.burst_tokens) for n in args.streams]

    table = Table(title=f"Accuracy: client-measured minus scheduled (TTFT {args.ttft_ms:g} ms, "
                  f"ITL {args.itl_ms:g} ms, {args.output_tokens} tokens)", title_justify="left")
    for header in ("streams", "requests", "TTFT err p50", "TTFT err p99", "ITL err p50",
                   "ITL err p99", "server late p99 (first / later)"):
        table.add_column(header, justify="right")
    for a in acc:
        table.add_row(str(a.streams), str(a.requests), f"{a.ttft_err_p50_ms:+.3f} ms",
                      f"{a.ttft_err_p99_ms:+.3f} ms", f"{a.itl_err_p50_ms:+.3f} ms",
                      f"{a.itl_err_p99_ms:+.3f} ms",
                      f"{a.server_first_late_p99_ms:.3f} / {a.server_later_late_p99_ms:.3f} ms")
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
