"""Per-request observations and the metrics derived from them (DESIGN §4, docs/metrics.md).

The inference client reports a `StreamResult` (raw perf_counter_ns timestamps); the domain turns it
into a `RequestRecord`, the line written to requests.jsonl, with times relative to the start of
its repetition's measured window so that records from one run can be laid on one time line.
"""

from __future__ import annotations

from typing import Literal

import msgspec

TokenSource = Literal["usage", "chunks"]

NS_PER_MS = 1_000_000


class StreamResult(msgspec.Struct, frozen=True, kw_only=True):
    """What the client observed for one request.

    t0_ns: taken right before the request is sent (after it got its concurrency slot).
    content_ns: arrival time of every event that carried non-empty content, reasoning or a
        tool-call delta (chat) or non-empty text (completions), in arrival order.
    end_ns: end of stream (`[DONE]` or a clean close), or when the failure was noticed.
    prompt_tokens / completion_tokens: from the server's `usage`, when it sent one.
    error_kind: None on success; otherwise a short reason code such as `http_500`,
        `stream_error`, `truncated`, `timeout`, `connection`.
    """

    t0_ns: int
    end_ns: int
    content_ns: tuple[int, ...] = ()
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    http_status: int | None = None
    error_kind: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_kind is None


class RequestRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One line of requests.jsonl. Times in milliseconds; `start_ms`/`end_ms` are relative to
    the opening of the repetition's measured window (for warm-up records: of the warm-up)."""

    scenario: str
    repetition: int
    index: int
    warmup: bool = False
    ok: bool
    start_ms: float
    end_ms: float
    e2e_ms: float
    queue_ms: float = 0.0
    scheduled_ms: float | None = None
    schedule_lag_ms: float | None = None
    ttft_ms: float | None = None
    tpot_ms: float | None = None
    # Arrival of each content-bearing event after t0; the first is the TTFT, the gaps are ITLs.
    chunk_ms: list[float] = msgspec.field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    token_source: TokenSource = "usage"
    requested_output_tokens: int
    finish_reason: str | None = None
    http_status: int | None = None
    error_kind: str | None = None
    error: str | None = None

    @property
    def itl_ms(self) -> list[float]:
        """Gaps between consecutive content-bearing events."""
        c = self.chunk_ms
        return [c[i] - c[i - 1] for i in range(1, len(c))]

    @property
    def output_length_mismatch(self) -> bool:
        """Only meaningful when the count came from `usage` (chunks may hold several tokens)."""
        return (
            self.ok
            and self.token_source == "usage"
            and self.output_tokens is not None
            and self.output_tokens != self.requested_output_tokens
        )


def _ms(ns: int) -> float:
    return ns / NS_PER_MS


def make_record(
    result: StreamResult,
    *,
    scenario: str,
    repetition: int,
    index: int,
    requested_output_tokens: int,
    window_start_ns: int,
    warmup: bool = False,
    queue_ns: int = 0,
    scheduled_ns: int | None = None,
) -> RequestRecord:
    """Derive TTFT, TPOT and token counts of one request (DESIGN §4).

    scheduled_ns is the absolute perf_counter_ns time an open-loop request was due; the lag is
    t0 minus that (it includes any wait for a concurrency slot).
    """
    t0 = result.t0_ns
    chunks = [_ms(t - t0) for t in result.content_ns]
    if result.completion_tokens is not None:
        output_tokens: int | None = result.completion_tokens
        source: TokenSource = "usage"
    else:
        output_tokens = len(result.content_ns)
        source = "chunks"
    ttft = chunks[0] if chunks else None
    tpot = None
    if result.ok and chunks and output_tokens is not None and output_tokens >= 2:
        # One event holding every token gives 0: no time passed between first and last token.
        tpot = (chunks[-1] - chunks[0]) / (output_tokens - 1)
    return RequestRecord(
        scenario=scenario,
        repetition=repetition,
        index=index,
        warmup=warmup,
        ok=result.ok,
        start_ms=_ms(t0 - window_start_ns),
        end_ms=_ms(result.end_ns - window_start_ns),
        e2e_ms=_ms(result.end_ns - t0),
        queue_ms=_ms(queue_ns),
        scheduled_ms=None if scheduled_ns is None else _ms(scheduled_ns - window_start_ns),
        schedule_lag_ms=None if scheduled_ns is None else _ms(t0 - scheduled_ns),
        ttft_ms=ttft,
        tpot_ms=tpot,
        chunk_ms=chunks,
        input_tokens=result.prompt_tokens,
        output_tokens=output_tokens,
        token_source=source,
        requested_output_tokens=requested_output_tokens,
        finish_reason=result.finish_reason,
        http_status=result.http_status,
        error_kind=result.error_kind,
        error=result.error,
    )
