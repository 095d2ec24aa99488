"""The docker engine adapter: what it asks Docker to create (a fake client, no daemon), and its
whole lifecycle against the real daemon with a real llama-server image (tests/docker_images.py).

The real-daemon tests skip when no daemon answers, except in CI (KITT_REQUIRE_DOCKER), where
they fail. Every test checks that no container labelled with its run id is left.
"""

from __future__ import annotations

import _thread
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import httpx
import msgspec
import pytest

from adapters.engine.docker import (
    DockerAdmin,
    DockerEngine,
    DockerRunningEngine,
    PullProgress,
    daemon_error,
)
from kitt.domain.catalogue import EngineSpec
from kitt.domain.engine import EngineLaunch, ResolvedModel
from kitt.domain.errors import EngineError
from kitt.ports import Engine, EngineAdmin
from kitt.services.catalogue import load_catalogue
from tests.docker_images import (
    docker_client,
    kitt_containers,
    llama_server_image_or_skip,
    remove_containers,
    smollm2_gguf_or_skip,
)

# Both satisfy their ports (checked by mypy).
_PORTS: tuple[Engine, EngineAdmin] = (DockerEngine(), DockerAdmin())


def catalogue_spec(name: str = "llama-cpp", **changes: Any) -> EngineSpec:
    spec = load_catalogue().get(name)
    assert spec is not None
    return msgspec.structs.replace(spec, **changes)


def launch(tmp_path: Path, model: ResolvedModel, **overrides: Any) -> EngineLaunch:
    values: dict[str, Any] = {
        "engine": "llama-cpp", "model": model.name, "mode": "docker",
        "run_id": f"test-{uuid.uuid4().hex[:10]}", "log_dir": tmp_path / "out",
        "startup_timeout_s": 60.0, "spec": catalogue_spec(), "resolved_model": model,
    }
    return EngineLaunch(**(values | overrides))


# ------------------------------------------------------------ a fake client (no daemon)


class _FakeStream:
    def __init__(self, data: bytes) -> None:
        self._chunks = iter([data])

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        self._chunks = iter([])


class FakeContainer:
    """A container whose process exits at once with code 3, having printed `log`."""

    def __init__(self, client: FakeDockerClient, options: dict[str, Any]) -> None:
        self.client = client
        self.options = options
        self.name = options["name"]
        self.labels = options["labels"]
        self.status = "created"
        self.attrs: dict[str, Any] = {"State": {"Status": "created"}, "NetworkSettings": {}}

    def start(self) -> None:
        # Like Docker: a container that has exited publishes no port any more.
        self.status = "exited"
        self.attrs = {"State": {"Status": "exited", "ExitCode": 3, "OOMKilled": False},
                      "NetworkSettings": {"Ports": {}}}

    def reload(self) -> None:
        if self.name not in self.client.running:
            raise docker.errors.NotFound("no such container")

    def logs(self, *, stream: bool = False, follow: bool = False, tail: int = 0) -> Any:
        return _FakeStream(self.client.log) if stream else self.client.log

    def stop(self, timeout: float) -> None:
        self.status = "exited"

    def remove(self, force: bool) -> None:
        if self.client.running.pop(self.name, None) is None:
            raise docker.errors.NotFound("no such container")


class _FakeImage:
    id = "sha256:" + "ab" * 32

    def __init__(self) -> None:
        self.attrs: dict[str, Any] = {"RepoDigests": []}


class FakeDockerClient:
    """Just enough of docker.DockerClient. Its state: the images it has, the containers that
    exist (`running`), and the options of every container ever created (`created`)."""

    def __init__(self, *, images: tuple[str, ...] = (), nvidia_runtime: bool = False,
                 log: bytes = b"error: invalid argument: --bogus\n",
                 pull_events: tuple[dict[str, Any], ...] = ()) -> None:
        self.image_refs = set(images)
        self.nvidia_runtime = nvidia_runtime
        self.log = log
        self.running: dict[str, FakeContainer] = {}
        self.created: list[dict[str, Any]] = []
        self.pull_events = pull_events
        self.images = self
        self.containers = self
        self.api = self

    # images
    def get(self, name: str) -> Any:
        if name in self.running:
            return self.running[name]
        if name in self.image_refs:
            return _FakeImage()
        raise docker.errors.ImageNotFound(name) if ":" in name else docker.errors.NotFound(name)

    def pull(self, reference: str, *, stream: bool, decode: bool) -> Iterator[dict[str, Any]]:
        yield from self.pull_events
        self.image_refs.add(reference)

    # containers
    def create(self, **options: Any) -> FakeContainer:
        self.created.append(options)
        container = FakeContainer(self, options)
        self.running[options["name"]] = container
        return container

    def list(self, *, all: bool, filters: dict[str, str]) -> list[FakeContainer]:
        return list(self.running.values())

    def info(self) -> dict[str, Any]:
        return {"Runtimes": {"runc": {}, **({"nvidia": {}} if self.nvidia_runtime else {})}}


IMAGE = "ghcr.io/ggml-org/llama.cpp:server-b9603"


def start_fails(client: FakeDockerClient, the_launch: EngineLaunch,
                environ: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    """Start with the fake (its container exits at once): the create options and the error."""
    engine = DockerEngine(client_factory=lambda: client, environ=environ or {},
                          progress=lambda line: None)
    with pytest.raises(EngineError) as failed:
        engine.start(the_launch)
    assert client.running == {}, "the exited container was not removed"
    return client.created[-1], failed.value.message


def test_a_local_file_is_mounted_read_only_with_its_directory(tmp_path: Path) -> None:
    gguf = tmp_path / "models" / "tiny.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF")
    port = _free_port()
    the_launch = launch(tmp_path, ResolvedModel(name="tiny", path=gguf), engine_args=("--bogus",),
                        run_id="r1", spec=catalogue_spec(port=port))
    client = FakeDockerClient(images=(IMAGE,))
    options, message = start_fails(client, the_launch)
    assert options["image"] == IMAGE
    assert options["name"] == "kitt-llama-cpp-r1"
    assert options["labels"] == {"kitt.run-id": "r1", "kitt.engine": "llama-cpp",
                                 "kitt.managed": "true"}
    assert options["mounts"] == [{"Target": "/models", "Source": str(gguf.parent),
                                  "Type": "bind", "ReadOnly": True}]
    assert options["command"] == ["-m", "/models/tiny.gguf", "--alias", "tiny", "--host",
                                  "0.0.0.0", "--port", "8080", "--bogus"]
    assert options["ports"] == {"8080/tcp": ("127.0.0.1", port)}  # the catalogue's, when free
    assert options["device_requests"] == []  # no GPU on this host, none asked for
    assert options["shm_size"] == "8g"
    assert "entrypoint" not in options  # the image's own
    # Dead at once: the exit code and its output, not a wait for the timeout.
    assert "exited with code 3" in message and "invalid argument: --bogus" in message
    assert "invalid argument: --bogus" in (tmp_path / "out" / "engine.log").read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_directory_is_mounted_under_its_name_and_a_taken_port_lets_docker_pick(
        tmp_path: Path) -> None:
    model_dir = tmp_path / "llama-3-8b"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        spec = catalogue_spec("vllm", port=port)
        options, _ = start_fails(FakeDockerClient(images=("vllm/vllm-openai:v0.32.0",)),
                                 launch(tmp_path, ResolvedModel(name="./llama-3-8b",
                                                                path=model_dir), spec=spec))
    assert options["mounts"] == [{"Target": "/models/llama-3-8b", "Source": str(model_dir),
                                  "Type": "bind", "ReadOnly": True}]
    assert options["command"][:2] == ["--model", "/models/llama-3-8b"]
    assert options["ports"] == {"8000/tcp": ("127.0.0.1", None)}


def test_a_hugging_face_snapshot_is_mounted_with_the_blobs_its_links_point_to(
        tmp_path: Path) -> None:
    repo = tmp_path / "hub" / "models--org--m"
    snapshot = repo / "snapshots" / "abc123"
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (repo / "blobs" / "f00d").write_text("{}")
    (snapshot / "config.json").symlink_to("../../blobs/f00d")
    options, _ = start_fails(FakeDockerClient(images=(IMAGE,)),
                             launch(tmp_path, ResolvedModel(name="m", path=snapshot)))
    assert options["mounts"][0]["Source"] == str(repo)
    assert options["mounts"][0]["Target"] == "/models/models--org--m"
    assert options["command"][1] == "/models/models--org--m/snapshots/abc123"


def test_a_hugging_face_id_mounts_the_hf_cache_and_passes_the_token_without_showing_it(
        tmp_path: Path) -> None:
    secret = "hf_do-not-print-me-42"
    environ = {"HF_HOME": str(tmp_path / "hf"), "HF_TOKEN": secret}
    spec = catalogue_spec("vllm")
    options, message = start_fails(
        FakeDockerClient(images=(spec.docker.image,) if spec.docker else ()),
        launch(tmp_path, ResolvedModel(name="org/model", hub_id="org/model"), spec=spec),
        environ=environ,
    )
    assert options["mounts"] == [{"Target": "/root/.cache/huggingface",
                                  "Source": str(tmp_path / "hf"), "Type": "bind",
                                  "ReadOnly": False}]
    assert (tmp_path / "hf").is_dir()  # made by kitt, not by Docker as root
    assert options["environment"] == {"HF_TOKEN": secret}
    assert options["command"][:2] == ["--model", "org/model"]
    assert secret not in message and secret not in json.dumps(options["command"])


def test_entrypoint_and_env_come_from_the_catalogue(tmp_path: Path) -> None:
    sglang = catalogue_spec("sglang")
    options, _ = start_fails(FakeDockerClient(images=("lmsysorg/sglang:v0.5.19-cu129",)),
                             launch(tmp_path, ResolvedModel(name="org/m", hub_id="org/m"),
                                    spec=sglang))
    assert options["entrypoint"] == ["python3", "-m", "sglang.launch_server"]
    ollama = catalogue_spec("ollama")
    options, _ = start_fails(FakeDockerClient(images=("ollama/ollama:0.12.6",)),
                             launch(tmp_path, ResolvedModel(name="llama3.2:1b",
                                                            hub_id="llama3.2:1b"), spec=ollama))
    assert options["environment"] == {"OLLAMA_HOST": "0.0.0.0:11434"}


@pytest.mark.parametrize(("gpus", "expected"), [
    (None, [(-1, [])]),  # all of them
    ("all", [(-1, [])]),
    ("0, 2", [(0, ["0", "2"])]),
    ("none", []),
])
def test_gpus_are_requested_when_the_host_has_them(
        tmp_path: Path, gpus: str | None, expected: list[tuple[int, list[str]]]) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    options, _ = start_fails(FakeDockerClient(images=(IMAGE,), nvidia_runtime=True),
                             launch(tmp_path, ResolvedModel(name="m", path=gguf), gpus=gpus))
    requests = options["device_requests"]
    assert [(r["Count"], r["DeviceIDs"] or []) for r in requests] == expected
    assert all(r["Capabilities"] == [["gpu"]] for r in requests)


def test_gpus_asked_for_on_a_host_without_them_fail_before_anything_is_created(
        tmp_path: Path) -> None:
    if Path("/dev/nvidia0").exists():
        pytest.skip("this host has a GPU")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    client = FakeDockerClient(images=(IMAGE,))
    engine = DockerEngine(client_factory=lambda: client, environ={})
    with pytest.raises(EngineError, match=r"GPU requested \(--gpus 0\) but none visible"):
        engine.start(launch(tmp_path, ResolvedModel(name="m", path=gguf), gpus="0"))
    assert client.created == []


def test_a_missing_model_path_is_named(tmp_path: Path) -> None:
    engine = DockerEngine(client_factory=lambda: FakeDockerClient(images=(IMAGE,)), environ={})
    missing = tmp_path / "nope.gguf"
    with pytest.raises(EngineError, match=r"model path .*nope\.gguf does not exist"):
        engine.start(launch(tmp_path, ResolvedModel(name="x", path=missing)))


def test_docker_not_running_says_so_and_how_to_fix_it(tmp_path: Path) -> None:
    engine = DockerEngine(
        client_factory=lambda: docker.DockerClient(base_url=f"unix://{tmp_path}/docker.sock"))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(EngineError) as failed:
        engine.start(launch(tmp_path, ResolvedModel(name="m", path=gguf)))
    assert "Docker is not running" in failed.value.message
    assert "systemctl start docker" in failed.value.message
    assert "--mode native" in failed.value.message


def test_permission_denied_on_the_socket_says_what_to_do() -> None:
    cause = docker.errors.DockerException(
        "Error while fetching server API version: ('Connection aborted.', "
        "PermissionError(13, 'Permission denied'))")
    assert "permission denied on the Docker socket" in daemon_error(cause).message
    assert "usermod -aG docker" in daemon_error(cause).message


def test_pull_progress_is_folded_into_a_few_lines() -> None:
    now = [0.0]
    lines: list[str] = []
    folded = PullProgress("img:1", lines.append, interval_s=2.0, clock=lambda: now[0])
    folded.feed({"status": "Pulling from library/img", "id": "1"})
    for layer in ("a", "b"):
        folded.feed({"status": "Pulling fs layer", "id": layer, "progressDetail": {}})
    for step in range(1, 101):  # 100 progress events per layer in 1 s
        now[0] += 0.005
        for layer in ("a", "b"):
            folded.feed({"status": "Downloading", "id": layer,
                         "progressDetail": {"current": step * 10_000, "total": 1_000_000}})
    now[0] += 2.5
    folded.feed({"status": "Downloading", "id": "a",
                 "progressDetail": {"current": 1_000_000, "total": 1_000_000}})
    folded.feed({"status": "Pull complete", "id": "a"})
    folded.feed({"status": "Pull complete", "id": "b"})
    folded.feed({"status": "Digest: sha256:00"})
    assert lines == [
        "img:1: Pulling from library/img",
        "img:1: 0/1 layers done",  # the first event always shows
        "img:1: 0/2 layers done, 2.0 MB of 2.0 MB downloaded",
        "img:1: 1/2 layers done, 2.0 MB of 2.0 MB downloaded",
        "img:1: 2/2 layers done, 2.0 MB of 2.0 MB downloaded",
        "img:1: Digest: sha256:00",
    ]
    with pytest.raises(EngineError, match="toomanyrequests"):
        folded.feed({"error": "toomanyrequests: rate limit", "errorDetail": {}})


def test_setup_pulls_with_progress() -> None:
    client = FakeDockerClient(pull_events=({"status": "Pulling from x", "id": "1"},
                                           {"status": "Status: Downloaded newer image"}))
    lines: list[str] = []
    result = DockerAdmin(client_factory=lambda: client).setup(
        catalogue_spec("vllm"), image="x:1", progress=lines.append)
    assert result == f"pulled x:1 ({_FakeImage.id})"
    assert lines == ["pulling x:1", "x:1: Pulling from x", "x:1: Status: Downloaded newer image"]


# ------------------------------------------------------------ the real daemon


@pytest.fixture(scope="module")
def client() -> Any:
    return docker_client()


@pytest.fixture(scope="module")
def image(client: Any) -> str:
    return llama_server_image_or_skip(client)


@pytest.fixture(scope="module")
def gguf() -> Path:
    return smollm2_gguf_or_skip()


@pytest.fixture
def real(tmp_path: Path, client: Any, image: str, gguf: Path) -> Iterator[EngineLaunch]:
    """A launch of the real llama-server image; afterwards, no container of its run may be
    left (removed here so that one failing test does not leak into the next)."""
    the_launch = launch(tmp_path, ResolvedModel(name="smollm2", path=gguf), image=image)
    yield the_launch
    leftovers = kitt_containers(client, the_launch.run_id)
    remove_containers(client, leftovers)
    assert leftovers == [], "a container of this run was left behind"


def stream_chat(endpoint: str) -> list[str]:
    """The content pieces of one streamed chat completion."""
    pieces = []
    body = {"model": "smollm2", "stream": True, "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "user", "content": "Say hello."}]}
    with httpx.Client(trust_env=False, timeout=60) as http, \
            http.stream("POST", f"{endpoint}/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                delta = json.loads(line[5:])["choices"][0]["delta"]
                if delta.get("content"):
                    pieces.append(delta["content"])
    return pieces


@pytest.mark.e2e
def test_serves_a_streaming_request_and_leaves_nothing_behind(
        real: EngineLaunch, client: Any, image: str, gguf: Path) -> None:
    running = DockerEngine().start(real)
    try:
        assert running.endpoint.startswith("http://127.0.0.1:")
        info = running.info
        assert (info.name, info.mode, info.image) == ("llama-cpp", "docker", image)
        assert info.image_digest == client.images.get(image).id  # a local image: its id
        assert info.version  # llama.cpp's build_info from /props
        assert info.args == ["-m", f"/models/{gguf.name}", "--alias", "smollm2", "--host",
                             "0.0.0.0", "--port", "8080"]
        assert len(stream_chat(running.endpoint)) >= 1
        assert running.failure() is None
        container = client.containers.get(running.name)
        assert container.labels["kitt.run-id"] == real.run_id
        assert [(m["Destination"], m["RW"]) for m in container.attrs["Mounts"]] == [
            ("/models", False)]
    finally:
        running.stop()
    assert kitt_containers(client, real.run_id) == []
    running.stop()  # idempotent, also with the container gone
    assert running.failure() is None  # stopped by kitt: not a failure
    assert "listening on" in (real.log_dir / "engine.log").read_text()


@pytest.mark.e2e
def test_an_engine_that_never_gets_healthy_times_out_with_its_log(real: EngineLaunch) -> None:
    never = msgspec.structs.replace(real, startup_timeout_s=3.0,
                                    spec=catalogue_spec(health_path="/never-healthy"))
    started = time.monotonic()
    with pytest.raises(EngineError) as failed:
        DockerEngine().start(never)
    assert time.monotonic() - started >= 3.0
    message = failed.value.message
    # 503 while loading the model, 404 once loaded (on a busy machine loading may take 3 s).
    assert "did not become healthy in time" in message and "last gave HTTP" in message
    assert "Last lines of its log" in message and "llama_server" in message


@pytest.mark.e2e
def test_an_engine_that_exits_on_start_up_is_reported_at_once_with_its_log(
        real: EngineLaunch) -> None:
    broken = msgspec.structs.replace(real, engine_args=("--no-such-flag",),
                                     startup_timeout_s=120.0)
    started = time.monotonic()
    with pytest.raises(EngineError) as failed:
        DockerEngine().start(broken)
    assert time.monotonic() - started < 20  # seconds, not the 120 s timeout
    message = failed.value.message
    assert "exited with code" in message and "--no-such-flag" in message


@pytest.mark.e2e
def test_a_container_killed_mid_run_is_reported(real: EngineLaunch, client: Any) -> None:
    running = DockerEngine().start(real)
    try:
        client.containers.get(running.name).kill()
        deadline = time.monotonic() + 20
        while (failure := running.failure()) is None:
            assert time.monotonic() < deadline, "failure() never noticed the kill"
            time.sleep(0.1)
        assert f"container {running.name} was killed (SIGKILL, exit code 137)" in failure
        assert "last lines of its log" in failure
    finally:
        running.stop()


@pytest.mark.e2e
def test_ctrl_c_while_waiting_for_health_removes_the_container(real: EngineLaunch) -> None:
    never = msgspec.structs.replace(real, startup_timeout_s=60.0,
                                    spec=catalogue_spec(health_path="/never-healthy"))
    timer = threading.Timer(2.0, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            DockerEngine().start(never)
    finally:
        timer.cancel()
    # The `real` fixture checks that the container is gone.


@pytest.mark.e2e
def test_a_missing_image_that_cannot_be_pulled_says_what_to_do(
        real: EngineLaunch, client: Any) -> None:
    missing = msgspec.structs.replace(real, image="registry.invalid/kitt/none:1")
    with pytest.raises(EngineError) as failed:
        DockerEngine(progress=lambda line: None).start(missing)
    message = failed.value.message
    assert message.startswith("image registry.invalid/kitt/none:1 is not on this machine and "
                              "could not be pulled (")
    assert "run `kitt engines setup llama-cpp` where the registry is reachable, or pass " \
           "--image" in message


@pytest.mark.e2e
def test_a_busy_port_moves_the_engine_to_another(real: EngineLaunch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        moved = msgspec.structs.replace(real, spec=catalogue_spec(port=port))
        running = DockerEngine().start(moved)
        try:
            assert running.endpoint != f"http://127.0.0.1:{port}"
            assert httpx.get(f"{running.endpoint}/health", trust_env=False).status_code == 200
        finally:
            running.stop()


@pytest.mark.e2e
def test_gpus_asked_for_without_any_fail_clearly(real: EngineLaunch, client: Any) -> None:
    if Path("/dev/nvidia0").exists() or "nvidia" in (client.info().get("Runtimes") or {}):
        pytest.skip("this host has GPUs")
    with pytest.raises(EngineError) as failed:
        DockerEngine().start(msgspec.structs.replace(real, gpus="all"))
    assert "GPU requested (--gpus all) but none visible" in failed.value.message


@pytest.mark.e2e
def test_detach_leaves_it_running_and_cleanup_removes_it(
        real: EngineLaunch, client: Any, image: str) -> None:
    running: DockerRunningEngine = DockerEngine().start(real)
    try:
        how = running.detach()
        assert f"docker rm -f {running.name}" in how and "kitt engines cleanup" in how
        assert client.containers.get(running.name).status == "running"
        admin = DockerAdmin()
        mine = [i for i in admin.instances() if i.run_id == real.run_id]
        assert len(mine) == 1 and mine[0].engine == "llama-cpp"
        assert running.name in mine[0].description and "running" in mine[0].description
        spec = catalogue_spec()
        assert (admin.availability(spec, image=image) or "").startswith("image present (sha256:")
        assert admin.availability(spec, image="registry.invalid/kitt/none:1") is None
        removed = admin.cleanup()
        assert any(running.name in line and real.run_id in line for line in removed)
        assert kitt_containers(client, real.run_id) == []
    finally:
        running.stop()


@pytest.mark.e2e
def test_setup_of_an_unreachable_image_fails_with_the_reason(client: Any) -> None:
    with pytest.raises(EngineError, match=r"could not pull registry.invalid/kitt/none:1 \(.+\)"):
        DockerAdmin().setup(catalogue_spec(), image="registry.invalid/kitt/none:1",
                            progress=lambda line: None)


@pytest.mark.e2e
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to act as a user outside the docker group")
def test_permission_denied_on_the_real_socket(client: Any, tmp_path: Path) -> None:
    probe = ("from adapters.engine.docker import DockerAdmin\n"
             "from kitt.domain.errors import EngineError\n"
             "try:\n    DockerAdmin().instances()\n"
             "except EngineError as e:\n    print(e)\n")
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
         probe], capture_output=True, text=True, check=False, cwd=Path(__file__).parents[2],
        env={**os.environ, "HOME": str(tmp_path)},
    )
    if "Permission denied" in result.stderr and "python" in result.stderr.lower():
        pytest.skip("the unprivileged user cannot run this interpreter")
    assert "permission denied on the Docker socket" in result.stdout, result.stderr
