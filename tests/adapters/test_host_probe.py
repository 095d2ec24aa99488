"""HostProbe against fake /proc and /sys trees, and once against this machine."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from adapters.hardware.host import DEFAULT_GPU_NOTE, HostProbe
from kitt.domain.hardware import HardwareInfo, fingerprint

XEON = "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"


def write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def x86_cpuinfo(sockets: int, cores: int, threads: int, flags: str = "fpu sse2 avx2") -> str:
    blocks: list[str] = []
    for socket in range(sockets):
        for core in range(cores):
            for _ in range(threads):
                blocks.append(
                    f"processor\t: {len(blocks)}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n"
                    f"model\t\t: 106\nmodel name\t: {XEON}\nphysical id\t: {socket}\n"
                    f"core id\t\t: {core}\ncpu cores\t: {cores}\nflags\t\t: {flags}\n"
                )
    return "\n".join(blocks) + "\n"


def arm_cpuinfo(parts: list[str], implementer: str = "0x41") -> str:
    return "\n".join(
        f"processor\t: {i}\nBogoMIPS\t: 2000.00\nFeatures\t: fp asimd\n"
        f"CPU implementer\t: {implementer}\nCPU architecture: 8\nCPU variant\t: 0x0\n"
        f"CPU part\t: {part}\nCPU revision\t: 1\n"
        for i, part in enumerate(parts)
    )


def sibling_sets(*sets: str) -> dict[str, str]:
    return {
        f"sys/devices/system/cpu/cpu{cpu}/topology/core_cpus_list": siblings
        for cpu, siblings in enumerate(sets)
    }


@pytest.fixture(autouse=True)
def _outside_any_container(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests may themselves run in a pod or a podman container.
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("container", raising=False)


def test_a_two_socket_x86_vm_in_docker(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "proc/cpuinfo": x86_cpuinfo(sockets=2, cores=2, threads=2, flags="fpu hypervisor avx2"),
        "proc/meminfo": "MemTotal:       32816412 kB\nMemFree:         1000 kB\n",
        "etc/os-release": 'NAME="Ubuntu"\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\nID=ubuntu\n',
        ".dockerenv": "",
        "sys/class/dmi/id/sys_vendor": "QEMU\n",
        "sys/class/dmi/id/product_name": "Standard PC (Q35 + ICH9, 2009)\n",
    })  # fmt: skip
    info = HostProbe(root).probe()
    host = info.host

    assert (host.cpu_model, host.physical_cores, host.logical_cores) == (XEON, 4, 8)
    assert host.memory_bytes == 32816412 * 1024
    assert host.os == "Ubuntu 22.04.4 LTS"
    assert (host.container, host.virtualization) == ("docker", "qemu")
    assert info.gpus == [] and info.gpu_note == DEFAULT_GPU_NOTE
    assert info.fingerprint == fingerprint(host, [])
    assert info.fingerprint.startswith(f"{XEON} x8 | 31 GiB RAM | no GPU [")
    assert {"kernel": host.kernel, "python": host.python}.items() <= info.environment.items()


def test_an_aarch64_host_is_named_from_its_midr_fields(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "proc/cpuinfo": arm_cpuinfo(["0xd4f"] * 4),
        **sibling_sets("0", "1", "2", "3"),
        "sys/class/dmi/id/sys_vendor": "Amazon EC2",
        "sys/class/dmi/id/product_name": "c8g.xlarge",
    })  # fmt: skip
    host = HostProbe(root).probe_host()
    assert (host.cpu_model, host.physical_cores, host.logical_cores) == ("ARM Neoverse-V2", 4, 4)
    assert host.virtualization == "amazon"


@pytest.mark.parametrize(
    ("cpuinfo", "model"),
    [
        (arm_cpuinfo(["0xd05"] * 2 + ["0xd0b"] * 2), "ARM Cortex-A55 + ARM Cortex-A76"),
        (arm_cpuinfo(["0xac3"], implementer="0xc0"), "Ampere CPU part 0xac3"),
        (arm_cpuinfo(["0x001"], implementer="0x99"), "implementer 0x99 CPU part 0x1"),
        ("processor\t: 0\ncpu\t\t: POWER9 (raw), altivec\n", "POWER9 (raw), altivec"),
        ("processor\t: 0\nBogoMIPS\t: 108.00\n\nHardware\t: BCM2835\nSerial\t: 1\n", "BCM2835"),
    ],
)  # fmt: skip
def test_cpu_model_of_other_architectures(tmp_path: Path, cpuinfo: str, model: str) -> None:
    root = write(tmp_path, {"proc/cpuinfo": cpuinfo})
    assert HostProbe(root).probe_host().cpu_model == model


def test_bare_metal_ec2_is_not_a_vm(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "proc/cpuinfo": arm_cpuinfo(["0xd4f"]),
        "sys/class/dmi/id/sys_vendor": "Amazon EC2",
        "sys/class/dmi/id/product_name": "c7g.metal",
    })  # fmt: skip
    assert HostProbe(root).probe_host().virtualization is None


@pytest.mark.parametrize(
    ("files", "env", "container"),
    [
        ({"run/.containerenv": ""}, {}, "podman"),
        ({"proc/1/cgroup": "12:devices:/kubepods/besteffort/pod1\n"}, {}, "kubernetes"),
        ({"proc/1/cgroup": "4:memory:/lxc/web01\n"}, {}, "lxc"),
        ({".dockerenv": ""}, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "kubernetes"),
        ({}, {"container": "systemd-nspawn"}, "systemd-nspawn"),
        ({"proc/1/cgroup": "0::/init.scope\n"}, {}, None),
    ],
)
def test_container_hints(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str],
    env: dict[str, str],
    container: str | None,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert HostProbe(write(tmp_path, files)).probe_host().container == container


@pytest.mark.parametrize(
    ("vendor", "product", "flags", "virtualization"),
    [
        ("VMware, Inc.", "VMware Virtual Platform", "fpu hypervisor", "vmware"),
        ("Microsoft Corporation", "Virtual Machine", "fpu hypervisor", "microsoft"),
        ("Microsoft Corporation", "Surface Laptop 5", "fpu", None),
        ("Google", "Google Compute Engine", "fpu hypervisor", "google"),
        ("Red Hat", "KVM", "fpu hypervisor", "kvm"),
        ("Firecracker", "", "fpu hypervisor", "hypervisor"),
        ("Dell Inc.", "PowerEdge R760", "fpu avx2", None),
    ],
)  # fmt: skip
def test_virtualization_hints(
    tmp_path: Path, vendor: str, product: str, flags: str, virtualization: str | None
) -> None:
    root = write(tmp_path, {
        "proc/cpuinfo": x86_cpuinfo(1, 1, 1, flags=flags),
        "sys/class/dmi/id/sys_vendor": vendor + "\n",
        "sys/class/dmi/id/product_name": product + "\n",
    })  # fmt: skip
    assert HostProbe(root).probe_host().virtualization == virtualization


def test_nothing_readable_still_gives_a_description(tmp_path: Path) -> None:
    # Directories where files should be: every read fails, none of them fatally.
    for relative in ("proc/cpuinfo", "proc/meminfo", "etc/os-release", "proc/1/cgroup"):
        (tmp_path / relative).mkdir(parents=True)
    info = HostProbe(tmp_path).probe()
    host = info.host
    assert host.logical_cores == (os.cpu_count() or 1)
    assert host.physical_cores is None or host.physical_cores >= 1
    assert host.memory_bytes > 0  # sysconf
    assert host.cpu_model and host.os and host.architecture
    assert host.container is None and host.virtualization is None


def test_cgroup_limits_are_recorded_in_the_environment(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "proc/cpuinfo": x86_cpuinfo(1, 4, 2),
        "proc/self/cgroup": "0::/kitt.slice/bench.scope\n",
        "sys/fs/cgroup/kitt.slice/bench.scope/cpu.max": "250000 100000\n",
        "sys/fs/cgroup/kitt.slice/bench.scope/memory.max": f"{8 * 2**30}\n",
    })  # fmt: skip
    env = HostProbe(root).probe().environment
    assert env["cpu_quota"] == "2.5 CPUs"
    assert env["memory_limit"] == "8.0 GiB"

    write(root, {"sys/fs/cgroup/kitt.slice/bench.scope/cpu.max": "max 100000\n"})
    assert "cpu_quota" not in HostProbe(root).probe().environment


def test_the_gpu_note_is_the_callers(tmp_path: Path) -> None:
    assert HostProbe(tmp_path, gpu_note=None).probe().gpu_note is None
    assert HostProbe(tmp_path, gpu_note="no NVIDIA driver").probe().gpu_note == "no NVIDIA driver"


def test_this_machine() -> None:
    first, second = HostProbe().probe(), HostProbe().probe()
    host = first.host
    assert host.logical_cores >= 1
    assert host.physical_cores is None or 1 <= host.physical_cores <= host.logical_cores
    assert host.memory_bytes > 2**20
    assert host.cpu_model.strip() and host.os.strip() and host.kernel and host.python
    assert first.fingerprint == second.fingerprint == fingerprint(host, [])
    # hardware.json round-trips.
    assert msgspec.json.decode(msgspec.json.encode(first), type=HardwareInfo) == first
