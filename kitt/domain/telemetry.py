"""GPU telemetry: samples taken during a measured window, and what they add up to (DESIGN §5).

Pure: the samples come from a TelemetrySource adapter (NVML); everything computed from them —
peak and mean memory, mean utilization and power, energy, output tokens per joule — is here and
unit-tested against hand-computed values (tests/unit/test_telemetry.py).

Energy: from the GPU's total-energy counter (millijoules since the driver loaded) where the GPU
has one: the difference between the last and first sample of the window. Where it has none, or
the counter went backwards (a wrap or a driver reload), the power samples are integrated over the
window (trapezoid rule) instead, and a note says so: never a silent negative number.
"""

from __future__ import annotations

from typing import Literal

import msgspec

EnergySource = Literal["counter", "integrated-power"]


class GpuSample(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One reading of one GPU. A field is None when the GPU does not support that reading."""

    t_ns: int  # time.perf_counter_ns() when it was read
    gpu: int  # index among the GPUs the engine can see
    memory_used_bytes: int | None = None
    # This run's engine processes' memory on the GPU, where NVML can tell.
    process_memory_bytes: int | None = None
    utilization_pct: float | None = None
    power_w: float | None = None
    temperature_c: float | None = None
    sm_clock_mhz: float | None = None
    energy_mj: int | None = None  # total-energy counter


class TelemetryCapture(msgspec.Struct, frozen=True, kw_only=True):
    """What a sampler collected between start() and stop()."""

    interval_s: float
    samples: list[GpuSample] = []
    # e.g. "GPU 1 (Tesla T4): power not supported by this GPU; energy integrated from... "
    notes: list[str] = []


class GpuTelemetry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One GPU over one measured window."""

    gpu: int
    samples: int
    memory_peak_bytes: int | None = None
    memory_mean_bytes: float | None = None
    process_memory_peak_bytes: int | None = None
    utilization_mean_pct: float | None = None
    power_mean_w: float | None = None
    temperature_max_c: float | None = None
    sm_clock_mean_mhz: float | None = None
    energy_j: float | None = None
    energy_source: EnergySource | None = None


class TelemetrySummary(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """All visible GPUs over one repetition's measured window (totals are sums over GPUs)."""

    interval_s: float
    gpus: list[GpuTelemetry]
    memory_peak_bytes: int | None = None
    power_mean_w: float | None = None
    energy_j: float | None = None
    output_tokens_per_joule: float | None = None
    notes: list[str] = []
