"""The host half of hardware.json: CPU, memory, OS, container and VM hints (DESIGN §5).

Linux facts come from files under `root` (normally /), so tests can point the probe at a fake
/proc and /sys tree; macOS answers through sysctl; elsewhere the standard library's guesses do.
Every read tolerates a missing or unreadable file: the probe describes what it can and never fails.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path

from kitt.domain.hardware import HardwareInfo, HostInfo, fingerprint

DEFAULT_GPU_NOTE = "GPU inventory is not probed yet: NVML support comes in a later version"

# AArch64 /proc/cpuinfo names no model, only MIDR fields; names as util-linux's lscpu gives them.
_ARM_IMPLEMENTERS = {
    0x41: "ARM", 0x42: "Broadcom", 0x43: "Cavium", 0x46: "Fujitsu", 0x48: "HiSilicon",
    0x4E: "NVIDIA", 0x50: "APM", 0x51: "Qualcomm", 0x53: "Samsung", 0x56: "Marvell",
    0x61: "Apple", 0x69: "Intel", 0x6D: "Microsoft", 0x70: "Phytium", 0xC0: "Ampere",
}  # fmt: skip
_ARM_LTD_PARTS = {
    0xD03: "Cortex-A53", 0xD04: "Cortex-A35", 0xD05: "Cortex-A55", 0xD07: "Cortex-A57",
    0xD08: "Cortex-A72", 0xD09: "Cortex-A73", 0xD0A: "Cortex-A75", 0xD0B: "Cortex-A76",
    0xD0C: "Neoverse-N1", 0xD0D: "Cortex-A77", 0xD40: "Neoverse-V1", 0xD41: "Cortex-A78",
    0xD44: "Cortex-X1", 0xD46: "Cortex-A510", 0xD47: "Cortex-A710", 0xD48: "Cortex-X2",
    0xD49: "Neoverse-N2", 0xD4F: "Neoverse-V2", 0xD80: "Cortex-A520", 0xD81: "Cortex-A720",
    0xD82: "Cortex-X4", 0xD84: "Neoverse-V3", 0xD8E: "Neoverse-N3",
}  # fmt: skip

# Substrings of DMI "sys_vendor product_name" that mean a virtual machine, first match wins.
_DMI_VIRTUALIZATION = (
    ("VMware", "vmware"), ("VirtualBox", "virtualbox"), ("innotek", "virtualbox"),
    ("KVM", "kvm"), ("QEMU", "qemu"), ("Xen", "xen"), ("Parallels", "parallels"),
    ("Bochs", "bochs"), ("Microsoft Corporation Virtual Machine", "microsoft"),
    ("Google Compute Engine", "google"), ("OpenStack", "openstack"),
    ("Alibaba Cloud ECS", "alibaba"), ("Amazon EC2", "amazon"),
)  # fmt: skip
# Markers in /proc/1/cgroup (cgroup v1 paths; v2 inside a container only shows "0::/").
_CGROUP_CONTAINERS = (
    ("kubepods", "kubernetes"), ("libpod", "podman"), ("docker", "docker"), ("lxc", "lxc"),
    ("containerd", "containerd"),
)  # fmt: skip


class HostProbe:
    """HardwareProbe for the host: CPU, RAM, OS, container and VM hints; no GPUs.

    `gpu_note` says why `gpus` is empty; a GPU-aware probe can take `probe_host()` and
    `environment()` from here and add its own inventory.
    """

    def __init__(self, root: Path = Path("/"), *, gpu_note: str | None = DEFAULT_GPU_NOTE) -> None:
        self._root = root
        self._gpu_note = gpu_note

    def probe(self) -> HardwareInfo:
        """hardware.json for this machine, without GPUs."""
        host = self.probe_host()
        return HardwareInfo(
            fingerprint=fingerprint(host, []),
            host=host,
            gpus=[],
            gpu_note=self._gpu_note,
            environment=self.environment(host),
        )

    def probe_host(self) -> HostInfo:
        """CPU, memory and OS facts of this machine."""
        blocks = _cpuinfo(self._read("proc/cpuinfo") or "")
        cpus = [block for block in blocks if "processor" in block]
        flags = set(cpus[0].get("flags", "").split()) if cpus else set()
        return HostInfo(
            cpu_model=self._cpu_model(cpus, blocks),
            physical_cores=self._physical_cores(cpus),
            logical_cores=len(cpus) or os.cpu_count() or 1,
            memory_bytes=self._memory_bytes(),
            os=self._os_name(),
            kernel=platform.release(),
            architecture=platform.machine(),
            python=platform.python_version(),
            container=self._container(),
            virtualization=self._virtualization(flags),
        )

    def environment(self, host: HostInfo) -> dict[str, str]:
        """Versions and limits that matter for reproducing a run but not for the hardware's
        identity: kernel, Python, and what this process may use of the machine."""
        env = {"kernel": host.kernel, "python": host.python}
        if hasattr(os, "sched_getaffinity"):  # Linux; a cpuset or taskset narrows it
            usable = len(os.sched_getaffinity(0))
            if usable != host.logical_cores:
                env["cpu_affinity"] = f"{usable} of {host.logical_cores} logical CPUs"
        cgroup = self._cgroup_dir()
        if cgroup is not None:
            quota, _, period = (self._read(f"{cgroup}/cpu.max") or "max").partition(" ")
            if quota.isdigit() and period.strip().isdigit() and int(period) > 0:
                env["cpu_quota"] = f"{int(quota) / int(period):g} CPUs"
            limit = (self._read(f"{cgroup}/memory.max") or "max").strip()
            if limit.isdigit():
                env["memory_limit"] = f"{int(limit) / 2**30:.1f} GiB"
        return env

    # --- facts ----------------------------------------------------------------------------------

    def _cpu_model(self, cpus: list[dict[str, str]], blocks: list[dict[str, str]]) -> str:
        first = cpus[0] if cpus else {}
        # x86 and 32-bit ARM "model name", POWER "cpu"; AArch64 only has MIDR fields; some ARM
        # boards (older kernels) name their SoC as "Hardware" in a block of its own.
        hardware = next((b["Hardware"] for b in blocks if b.get("Hardware")), None)
        model = (
            first.get("model name")
            or first.get("cpu")
            or _arm_model(cpus)
            or hardware
            or _sysctl("machdep.cpu.brand_string")
            or platform.processor()
        )
        return model or f"unknown {platform.machine() or 'CPU'}"

    def _physical_cores(self, cpus: list[dict[str, str]]) -> int | None:
        cores = {(c.get("physical id"), c.get("core id")) for c in cpus}
        if cpus and all(None not in core for core in cores):
            return len(cores)
        # No ids in cpuinfo (AArch64, some VMs): one sibling set per core in sysfs.
        siblings: set[str] = set()
        topology = self._root / "sys/devices/system/cpu"
        for cpu in topology.glob("cpu[0-9]*/topology"):
            listed = self._read(cpu / "core_cpus_list") or self._read(cpu / "thread_siblings_list")
            if listed:
                siblings.add(listed.strip())
        if siblings:
            return len(siblings)
        physical = _sysctl("hw.physicalcpu")
        return int(physical) if physical and physical.isdigit() else None

    def _memory_bytes(self) -> int:
        match = re.search(r"^MemTotal:\s+(\d+)\s*kB", self._read("proc/meminfo") or "", re.M)
        if match:
            return int(match.group(1)) * 1024
        memsize = _sysctl("hw.memsize")
        if memsize and memsize.isdigit():
            return int(memsize)
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
            return 0

    def _os_name(self) -> str:
        for path in ("etc/os-release", "usr/lib/os-release"):
            match = re.search(r"^PRETTY_NAME=(.*)$", self._read(path) or "", re.M)
            if match and match.group(1).strip("\"' "):
                return match.group(1).strip().strip("\"'")
        if sys.platform == "darwin":
            return f"macOS {platform.mac_ver()[0]}"
        return f"{platform.system()} {platform.release()}".strip() or "unknown"

    def _container(self) -> str | None:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            return "kubernetes"
        if (self._root / ".dockerenv").exists():
            return "docker"
        if (self._root / "run/.containerenv").exists():
            return "podman"
        # systemd's convention (lower case), set by podman, systemd-nspawn and LXC.
        hint = os.environ.get("container")  # noqa: SIM112
        if hint:
            return hint
        cgroup = self._read("proc/1/cgroup") or ""
        return next((name for marker, name in _CGROUP_CONTAINERS if marker in cgroup), None)

    def _virtualization(self, cpu_flags: set[str]) -> str | None:
        dmi = " ".join(
            (self._read(f"sys/class/dmi/id/{name}") or "").strip()
            for name in ("sys_vendor", "product_name")
        )
        if "Amazon EC2" in dmi and dmi.endswith(".metal"):
            return None  # a bare-metal EC2 instance (i3.metal, c7g.metal)
        for marker, name in _DMI_VIRTUALIZATION:
            if marker in dmi:
                return name
        hypervisor = (self._read("sys/hypervisor/type") or "").strip()
        if hypervisor:
            return hypervisor
        # The CPU says it runs under a hypervisor but DMI does not say which.
        return "hypervisor" if "hypervisor" in cpu_flags else None

    # --- reading --------------------------------------------------------------------------------

    def _read(self, relative: str | Path) -> str | None:
        try:
            return (self._root / relative).read_text(errors="replace")
        except OSError:  # absent, unreadable, or not a file: this fact stays unknown
            return None

    def _cgroup_dir(self) -> str | None:
        """This process's cgroup v2 directory under sys/fs/cgroup; None under cgroup v1."""
        for line in (self._read("proc/self/cgroup") or "").splitlines():
            if line.startswith("0::"):
                return "sys/fs/cgroup/" + line[3:].strip().lstrip("/")
        return None


def _cpuinfo(text: str) -> list[dict[str, str]]:
    """The blocks of /proc/cpuinfo (separated by blank lines), one per processor plus, on some
    architectures, blocks describing the whole machine."""
    blocks = []
    for chunk in re.split(r"\n\s*\n", text):
        fields = {}
        for line in chunk.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if fields:
            blocks.append(fields)
    return blocks


def _arm_model(cpus: list[dict[str, str]]) -> str | None:
    """The CPU name from MIDR fields, e.g. `ARM Neoverse-V2`; big.LITTLE parts joined by +."""
    names: list[str] = []
    for cpu in cpus:
        try:
            implementer = int(cpu["CPU implementer"], 16)
            part = int(cpu["CPU part"], 16)
        except (KeyError, ValueError):
            continue
        vendor = _ARM_IMPLEMENTERS.get(implementer, f"implementer {implementer:#x}")
        known = _ARM_LTD_PARTS.get(part) if implementer == 0x41 else None
        name = f"{vendor} {known}" if known else f"{vendor} CPU part {part:#x}"
        if name not in names:
            names.append(name)
    return " + ".join(names) or None


def _sysctl(name: str) -> str | None:
    """A macOS sysctl value; None elsewhere or when it cannot be read."""
    if sys.platform != "darwin":
        return None
    try:
        done = subprocess.run(
            ["sysctl", "-n", name], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):  # no sysctl binary, no such key, hung
        return None
    return done.stdout.strip() or None
