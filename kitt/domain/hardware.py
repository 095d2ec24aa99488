"""What the benchmark ran on: the model of hardware.json and the hardware fingerprint.

The fingerprint identifies the hardware class (CPU model and cores, RAM rounded to GiB, GPU model
x count and memory). Driver, CUDA and kernel versions are recorded in `environment` but are not
part of the identity, so an OS update does not make two runs incomparable.
"""

from __future__ import annotations

import hashlib

import msgspec

HARDWARE_SCHEMA_VERSION = 1


class HostInfo(msgspec.Struct, frozen=True, kw_only=True):
    cpu_model: str
    physical_cores: int | None
    logical_cores: int
    memory_bytes: int
    os: str
    kernel: str
    architecture: str
    python: str
    # e.g. "docker", "podman", "kubernetes", "lxc"; None on bare metal or when unknown.
    container: str | None = None
    # e.g. "kvm", "vmware", "microsoft"; None when none was detected.
    virtualization: str | None = None


class GpuInfo(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    name: str
    memory_bytes: int
    uuid: str | None = None
    compute_capability: str | None = None
    power_limit_w: float | None = None
    pci_bus_id: str | None = None
    mig_mode: bool | None = None


class HardwareInfo(msgspec.Struct, frozen=True, kw_only=True):
    schema_version: int = HARDWARE_SCHEMA_VERSION
    fingerprint: str
    host: HostInfo
    gpus: list[GpuInfo] = []
    # Why `gpus` is empty, when it is (no library, no driver, no device...).
    gpu_note: str | None = None
    # Versions that matter for reproduction but not for identity: driver, CUDA, kernel.
    environment: dict[str, str] = {}


def fingerprint(host: HostInfo, gpus: list[GpuInfo]) -> str:
    """A stable, readable identity of the hardware class, with a short hash for exact matching."""
    ram_gib = round(host.memory_bytes / 2**30)
    parts = [f"{host.cpu_model} x{host.logical_cores}", f"{ram_gib} GiB RAM"]
    if gpus:
        by_model: dict[tuple[str, int], int] = {}
        for gpu in gpus:
            key = (gpu.name, round(gpu.memory_bytes / 2**30))
            by_model[key] = by_model.get(key, 0) + 1
        parts += [f"{count}x {name} {mem} GiB" for (name, mem), count in sorted(by_model.items())]
    else:
        parts.append("no GPU")
    readable = " | ".join(parts)
    digest = hashlib.sha256(readable.encode()).hexdigest()[:12]
    return f"{readable} [{digest}]"
