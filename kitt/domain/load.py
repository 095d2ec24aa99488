"""Load patterns: when each request is sent.

- closed: `concurrency` workers each send their next request as soon as the previous one ends.
- poisson / constant: open loop; requests are due on an absolute schedule (exponential or equal
  gaps at `rate_rps`) whether or not earlier ones have finished. `concurrency`, when set, caps
  the requests in flight; time spent waiting for a slot is reported as queue_ms.
A scenario is bounded by a request count, a duration, or both (whichever ends first); warm-up
requests run before the measured window and are excluded from every metric.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Literal

import msgspec

Pattern = Literal["closed", "poisson", "constant"]


class LoadSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pattern: Pattern = "closed"
    # closed: number of workers (default 1); open loop: cap on requests in flight
    # (default, or 0: no cap).
    concurrency: int | None = None
    rate_rps: float | None = None
    requests: int | None = None
    duration_s: float | None = None
    warmup_requests: int = 0

    def __post_init__(self) -> None:
        if self.requests is None and self.duration_s is None:
            raise ValueError("a load needs `requests`, `duration_s`, or both")
        if self.requests is not None and self.requests < 1:
            raise ValueError("requests must be >= 1")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ValueError("duration_s must be > 0")
        if self.warmup_requests < 0:
            raise ValueError("warmup_requests must be >= 0")
        if self.pattern == "closed":
            if self.concurrency is not None and self.concurrency < 1:
                raise ValueError("a closed loop needs concurrency >= 1")
            if self.rate_rps is not None:
                raise ValueError("rate_rps applies to the poisson and constant patterns only")
        else:
            if self.rate_rps is None or self.rate_rps <= 0:
                raise ValueError(f"the {self.pattern} pattern needs rate_rps > 0")
            if self.concurrency is not None and self.concurrency < 0:
                raise ValueError("concurrency must be >= 0 (0 = no cap)")

    @property
    def is_open_loop(self) -> bool:
        return self.pattern != "closed"

    @property
    def max_in_flight(self) -> int | None:
        """Requests in flight at most; None when unbounded (open loop without a cap)."""
        if self.pattern == "closed":
            return self.concurrency or 1
        return self.concurrency or None

    def pool_size(self) -> int:
        """Connections the client needs so that no measured request waits for one."""
        if self.max_in_flight is not None:
            return self.max_in_flight
        # Uncapped open loop: enough for the arrivals of a few seconds at the target rate.
        assert self.rate_rps is not None
        return max(16, min(1024, round(self.rate_rps * 4)))


def arrival_offsets_s(spec: LoadSpec, seed: int) -> Iterator[float]:
    """Scheduled send times (seconds after the window opens) of an open-loop scenario.

    The schedule is absolute: a late send does not shift the ones after it. Stops after
    `requests` arrivals or at `duration_s`, whichever comes first.
    """
    if not spec.is_open_loop or spec.rate_rps is None:
        raise ValueError("only open-loop patterns have an arrival schedule")
    rng = random.Random(seed)
    t = 0.0
    n = 0
    while spec.requests is None or n < spec.requests:
        if spec.duration_s is not None and t >= spec.duration_s:
            return
        yield t
        n += 1
        t += rng.expovariate(spec.rate_rps) if spec.pattern == "poisson" else 1.0 / spec.rate_rps
