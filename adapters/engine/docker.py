"""Docker mode: the engine's image run as a container through the Docker SDK (DESIGN §3).

Every container kitt creates is named `kitt-<engine>-<run id>` and labelled `kitt.run-id`,
`kitt.engine` and `kitt.managed=true`, so that `kitt engines status` / `cleanup` find what a
crashed kitt left behind. The model is mounted read-only; a Hugging Face id gets the host's HF
cache mounted instead, with HF_TOKEN passed through (its value never appears in a message, a log
or a result file). The engine's port is published on 127.0.0.1 only: on the catalogue's port
when it is free, else on one Docker picks.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
import httpx
import msgspec
import requests

from adapters.engine.process import log_tail, wait_healthy
from kitt.domain.catalogue import DockerSpec, EngineSpec, docker_command, docker_env, read_version
from kitt.domain.engine import EngineLaunch, ResolvedModel
from kitt.domain.errors import EngineError
from kitt.domain.results import EngineInfo
from kitt.ports import EngineInstance

LABEL_RUN_ID = "kitt.run-id"
LABEL_ENGINE = "kitt.engine"
LABEL_MANAGED = "kitt.managed"
MODELS_DIR = "/models"
LOG_NAME = "engine.log"
# Passed through to the container when set (huggingface_hub reads HF_TOKEN; older images the
# legacy name).
HF_TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
_LOG_TAIL_LINES = 20
# How many levels above a model directory the mount may reach to keep its links working.
_MAX_WIDENING = 2

DockerClient = Any  # docker.DockerClient, or a fake with the same few methods (tests)
ClientFactory = Callable[[], DockerClient]
# Raised by the SDK (DockerException) and by `requests` underneath it when the daemon goes away.
_DOCKER_FAILURES = (docker.errors.DockerException, requests.exceptions.RequestException)


def _stderr(line: str) -> None:
    print(f"kitt: {line}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the daemon


def daemon_error(exc: BaseException) -> EngineError:
    """What to do when the Docker daemon cannot be reached, from the SDK's exception."""
    text = f"{exc!r} {exc}"
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if "PermissionError" in text or "Permission denied" in text:
        return EngineError(
            f"permission denied on the Docker socket ({where}): add your user to the docker "
            "group (sudo usermod -aG docker $USER, then log in again) or run kitt as a user "
            "that may use Docker; or use --mode native"
        )
    if any(s in text for s in ("FileNotFoundError", "No such file", "Connection refused",
                               "ConnectionRefusedError", "Connection aborted")):
        return EngineError(
            f"Docker is not running (nothing answers at {where}): start it (sudo systemctl "
            "start docker, or dockerd), set DOCKER_HOST if the daemon listens elsewhere, or "
            "use --mode native"
        )
    return EngineError(f"cannot talk to the Docker daemon at {where} ({exc}); check that Docker "
                       "runs (docker info), or use --mode native")


@contextlib.contextmanager
def _talking_to_docker() -> Iterator[None]:
    """Docker failures as EngineErrors: an API error with the daemon's own explanation, a
    daemon that cannot be reached with what to do about it."""
    try:
        yield
    except docker.errors.APIError as exc:
        raise EngineError(f"Docker refused: {_reason(exc)}") from None
    except _DOCKER_FAILURES as exc:
        raise daemon_error(exc) from None


def _reason(exc: BaseException) -> str:
    """The daemon's own words for an API error, without the SDK's URL wrapping."""
    explanation = getattr(exc, "explanation", None)
    text = explanation.decode() if isinstance(explanation, bytes) else str(explanation or exc)
    return text.strip()


class _Client:
    """Connects to the daemon on first use, once."""

    def __init__(self, factory: ClientFactory) -> None:
        self._factory = factory
        self._client: DockerClient | None = None

    def get(self) -> DockerClient:
        if self._client is None:
            try:
                self._client = self._factory()
            except _DOCKER_FAILURES as exc:
                raise daemon_error(exc) from None
        return self._client


# --------------------------------------------------------------------------- images


def _human_bytes(count: float) -> str:
    if count < 1e6:
        return f"{count / 1e3:.0f} kB"
    return f"{count / 1e6:.1f} MB" if count < 1e9 else f"{count / 1e9:.2f} GB"


_LAYER_DONE = frozenset({"Pull complete", "Already exists"})
_LAYER_DOWNLOADED = frozenset({"Download complete", "Extracting", "Verifying Checksum",
                               *_LAYER_DONE})


@dataclass
class _Layer:
    status: str = ""
    current: int = 0
    total: int = 0


class PullProgress:
    """Folds the daemon's pull events (several per layer and second) into a few lines: one
    when a layer completes, and at most one per `interval_s` about bytes downloaded."""

    def __init__(self, reference: str, emit: Callable[[str], None], *, interval_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._reference = reference
        self._emit = emit
        self._interval_s = interval_s
        self._clock = clock
        self._layers: dict[str, _Layer] = {}
        self._last_line = ""
        self._last_at = -float("inf")

    def feed(self, event: Mapping[str, Any]) -> None:
        """One decoded event of `docker pull`'s JSON stream. Raises EngineError for an error."""
        if error := event.get("error"):
            raise EngineError(str(error).strip())
        status = str(event.get("status", ""))
        layer_id = event.get("id")
        if not layer_id or status.startswith("Pulling from"):
            if status:  # "Pulling from ...", "Digest: ...", "Status: Downloaded newer image"
                self._emit(f"{self._reference}: {status}")
            return
        layer = self._layers.setdefault(str(layer_id), _Layer())
        was_done = layer.status in _LAYER_DONE
        layer.status = status
        detail = event.get("progressDetail") or {}
        if status == "Downloading":
            layer.current = int(detail.get("current") or 0)
            layer.total = int(detail.get("total") or layer.total)
        elif status in _LAYER_DOWNLOADED:
            layer.current = layer.total
        now = self._clock()
        if (layer.status in _LAYER_DONE) != was_done or now - self._last_at >= self._interval_s:
            self._report(now)

    def _report(self, now: float) -> None:
        done = sum(layer.status in _LAYER_DONE for layer in self._layers.values())
        line = f"{self._reference}: {done}/{len(self._layers)} layers done"
        total = sum(layer.total for layer in self._layers.values())
        if total:
            current = sum(layer.current for layer in self._layers.values())
            line += f", {_human_bytes(current)} of {_human_bytes(total)} downloaded"
        if line != self._last_line:
            self._emit(line)
            self._last_line, self._last_at = line, now


def pull_image(client: DockerClient, reference: str, progress: Callable[[str], None]) -> Any:
    """Pull `reference`, reporting aggregated progress; the pulled image. Raises EngineError
    with the daemon's reason when it cannot."""
    folded = PullProgress(reference, progress)
    try:
        for event in client.api.pull(reference, stream=True, decode=True):
            folded.feed(event)
        return client.images.get(reference)
    except docker.errors.APIError as exc:
        raise EngineError(_reason(exc)) from None
    except _DOCKER_FAILURES as exc:
        raise daemon_error(exc) from None


def image_digest(image: Any) -> str:
    """The registry digest (repo@sha256:...) when the image came from a registry, else its
    local id (sha256:...)."""
    digests = image.attrs.get("RepoDigests") or []
    return str(digests[0]) if digests else str(image.id)


def _find_image(client: DockerClient, reference: str) -> Any | None:
    """The local image, or None; EngineError when the daemon cannot be asked."""
    try:
        return client.images.get(reference)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as exc:
        if exc.status_code == 404:
            return None
        raise EngineError(f"Docker refused to look up image {reference}: {_reason(exc)}") from None
    except _DOCKER_FAILURES as exc:
        raise daemon_error(exc) from None


# --------------------------------------------------------------------------- the container


def hf_cache_dir(environ: Mapping[str, str]) -> Path:
    """The host's Hugging Face cache, as huggingface_hub finds it (HF_HOME, else
    $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface)."""
    if home := environ.get("HF_HOME"):
        return Path(home).expanduser()
    cache = environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(cache) / "huggingface"


def _mount_root(directory: Path) -> Path:
    """The directory to mount for a model directory: itself, widened to cover where its
    symlinks point when that is close by (a Hugging Face snapshot links into ../../blobs);
    never a far-away ancestor such as / or the home directory."""
    root = directory
    for count, entry in enumerate(directory.rglob("*")):
        if count >= 10_000:  # a huge tree is no model directory; don't walk it all
            break
        if entry.is_symlink():
            common = Path(os.path.commonpath([root, entry.resolve()]))
            if len(directory.parts) - len(common.parts) <= _MAX_WIDENING:
                root = common
    return root


@dataclass(frozen=True)
class ModelMount:
    """How the model reaches the container."""

    reference: str  # what the engine's command line loads
    mounts: list[docker.types.Mount]
    env: dict[str, str]  # HF tokens: values never shown


def model_mount(model: ResolvedModel, spec: DockerSpec, environ: Mapping[str, str]) -> ModelMount:
    """A local file's directory mounted read-only at /models, a local directory at
    /models/<name>; for a Hugging Face id, the host's HF cache read-write where the image
    expects it, and HF_TOKEN passed through."""
    if model.path is not None:
        path = model.path.expanduser().absolute()
        if not path.exists():
            raise EngineError(f"model path {model.path} does not exist: pass an existing file or "
                              "directory with -m, or a Hugging Face id")
        if path.is_file():
            # A link to a file: mount where the file really is. The directory, not the file
            # alone, so that the other shards of a split GGUF come along.
            path = path.resolve()
            root, target = path.parent, MODELS_DIR
        else:
            root = _mount_root(path)
            target = f"{MODELS_DIR}/{root.name or 'model'}"
        inside = Path(target, path.relative_to(root)).as_posix()
        mount = docker.types.Mount(target, str(root), type="bind", read_only=True)
        return ModelMount(reference=inside, mounts=[mount], env={})
    cache = hf_cache_dir(environ)
    # Made here: a directory Docker creates for a bind mount belongs to root.
    cache.mkdir(parents=True, exist_ok=True)
    mount = docker.types.Mount(spec.hf_cache, str(cache), type="bind", read_only=False)
    tokens = {name: environ[name] for name in HF_TOKEN_VARIABLES if environ.get(name)}
    return ModelMount(reference=model.hub_id or model.name, mounts=[mount], env=tokens)


def gpus_visible(client: DockerClient) -> bool:
    """Whether this machine has NVIDIA GPUs Docker can hand out: a /dev/nvidiaN device, or the
    nvidia runtime registered with the daemon (a remote DOCKER_HOST)."""
    if any(re.fullmatch(r"nvidia\d+", p.name) for p in Path("/dev").glob("nvidia*")):
        return True
    with contextlib.suppress(*_DOCKER_FAILURES):
        return "nvidia" in (client.info().get("Runtimes") or {})
    return False  # cannot ask the daemon: the container create will say why


def device_requests(gpus: str | None, visible: bool) -> list[docker.types.DeviceRequest]:
    """GPU requests for `gpus` (None: all GPUs when there are any; "all"; "none"; or a
    comma-separated list of indices/UUIDs). EngineError when GPUs are asked for and none are
    visible."""
    wanted = None if gpus is None else gpus.strip().lower()
    if wanted == "none" or (wanted is None and not visible):
        return []
    if not visible:
        raise EngineError(
            f"GPU requested (--gpus {gpus}) but none visible: this machine has no /dev/nvidia* "
            "device and Docker has no nvidia runtime. Install the NVIDIA driver and the NVIDIA "
            "Container Toolkit, or leave out --gpus to run on the CPU."
        )
    if wanted in (None, "all"):
        return [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
    assert gpus is not None
    ids = [part.strip() for part in gpus.split(",") if part.strip()]
    return [docker.types.DeviceRequest(device_ids=ids, capabilities=[["gpu"]])]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def container_name(engine: str, run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"kitt-{engine}-{run_id}")


def container_options(launch: EngineLaunch, spec: EngineSpec, *, image: str,
                      model: ModelMount, devices: list[docker.types.DeviceRequest],
                      host_port: int | None) -> dict[str, Any]:
    """The keyword arguments of `containers.create` for `launch` (host_port None: Docker
    picks one)."""
    assert spec.docker is not None
    command = docker_command(spec, model=model.reference, served_model_name=launch.model,
                             extra_args=launch.engine_args)
    options: dict[str, Any] = {
        "image": image,
        "command": command,
        "name": container_name(spec.name, launch.run_id),
        "labels": {LABEL_RUN_ID: launch.run_id, LABEL_ENGINE: spec.name, LABEL_MANAGED: "true"},
        "environment": {**docker_env(spec), **model.env},
        "mounts": model.mounts,
        "ports": {f"{spec.docker.container_port}/tcp": ("127.0.0.1", host_port)},
        "shm_size": spec.docker.shm_size,
        "device_requests": devices,
        "detach": True,
    }
    if spec.docker.entrypoint is not None:
        options["entrypoint"] = spec.docker.entrypoint
    return options


def describe_exit(state: Mapping[str, Any]) -> str:
    """'exited with code 1', 'was killed (SIGKILL, exit code 137)', or the OOM killer."""
    code = int(state.get("ExitCode") or 0)
    if state.get("OOMKilled"):
        what = (f"was killed by the out-of-memory killer (OOMKilled, exit code {code}): give "
                "it more memory, or a smaller model or context")
    elif code > 128:
        try:
            name = signal.Signals(code - 128).name
        except ValueError:
            name = f"signal {code - 128}"
        what = f"was killed ({name}, exit code {code})"
    else:
        what = f"exited with code {code}"
    if error := state.get("Error"):
        what += f" ({error})"
    return what


def exit_report(container: Any, engine: str, log_path: Path) -> str | None:
    """Why the container no longer runs (how it ended, its last log lines), or None while it
    does. Asks the daemon (NotFound when the container is gone)."""
    container.reload()
    state = container.attrs.get("State") or {}
    if state.get("Status") in ("created", "running", "paused", "restarting"):
        return None
    return (f"the {engine} container {container.name} {describe_exit(state)}; "
            f"last lines of its log:\n{container_log_tail(container, log_path)}")


def container_log_tail(container: Any, log_path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """The container's last output lines (from the log file once the container is gone)."""
    try:
        text = container.logs(tail=lines).decode("utf-8", errors="replace").rstrip()
    except _DOCKER_FAILURES:
        return log_tail(log_path, lines)
    return text or "(the log is empty)"


class _LogFollower:
    """Copies the container's output into a log file as it comes, in a background thread."""

    def __init__(self, container: Any, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._stream = container.logs(stream=True, follow=True)
        self._thread = threading.Thread(target=self._copy, name=f"kitt-logs-{container.name}",
                                        daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        with self._path.open("ab") as log:
            try:
                for chunk in self._stream:
                    log.write(chunk)
                    log.flush()
            except (*_DOCKER_FAILURES, OSError) as exc:  # the daemon went away
                log.write(f"\n[kitt stopped following this log: {exc}]\n".encode())

    def stop(self, drain_s: float = 2.0) -> None:
        """Stop following. The stream ends by itself once the container has stopped: give it
        `drain_s` to deliver the last lines, then close its socket (which ends a blocked read)."""
        self._thread.join(timeout=drain_s)
        with contextlib.suppress(*_DOCKER_FAILURES, OSError):
            self._stream.close()
        self._thread.join(timeout=5)


class DockerRunningEngine:
    """A container that answered its health check."""

    def __init__(self, container: Any, *, engine: str, host_port: int, log_path: Path,
                 info: EngineInfo, stop_timeout_s: float, logs: _LogFollower | None) -> None:
        self._container = container
        self._engine = engine
        self._log_path = log_path
        self._stop_timeout_s = stop_timeout_s
        self._logs = logs
        self._endpoint = f"http://127.0.0.1:{host_port}"
        self._info = msgspec.structs.replace(info, endpoint=self._endpoint)
        self._stopped = False

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def info(self) -> EngineInfo:
        return self._info

    @property
    def name(self) -> str:
        """The container's name."""
        return str(self._container.name)

    def _set_version(self, version: str | None) -> None:
        self._info = msgspec.structs.replace(self._info, version=version)

    def failure(self) -> str | None:
        if self._stopped:
            return None
        try:
            return exit_report(self._container, self._engine, self._log_path)
        except docker.errors.NotFound:
            return (f"the {self._engine} container {self.name} is gone (removed outside kitt); "
                    f"last lines of {self._log_path}:\n{log_tail(self._log_path)}")
        except _DOCKER_FAILURES:
            return None  # cannot tell now; failing requests will show

    def log_tail(self) -> str:
        """The container's last output lines (from the log file once it is gone)."""
        return container_log_tail(self._container, self._log_path)

    def stop(self) -> None:
        """Stop (SIGTERM, SIGKILL after a short grace) and remove the container; fine when it
        is already gone. EngineError, saying how to remove it, when Docker cannot."""
        if self._stopped:
            return
        self._stopped = True
        try:
            remove_container(self._container, self._stop_timeout_s)
        finally:
            if self._logs is not None:
                self._logs.stop()

    def detach(self) -> str:
        self._stopped = True  # not a failure any more: kitt stops watching it
        if self._logs is not None:
            self._logs.stop(drain_s=0)  # it keeps running: its stream would never end
        return (f"the {self._engine} container {self.name} keeps running at {self.endpoint}; "
                f"stop it with: docker rm -f {self.name}  (or: kitt engines cleanup)")


def remove_container(container: Any, stop_timeout_s: float) -> None:
    """Stop then force-remove; already gone is fine. EngineError saying how to remove it by
    hand when Docker cannot."""
    name = container.name
    try:
        with contextlib.suppress(docker.errors.NotFound):
            if stop_timeout_s > 0:
                # The API takes whole seconds.
                container.stop(timeout=max(1, math.ceil(stop_timeout_s)))
            container.remove(force=True)
    except docker.errors.APIError as exc:
        if exc.status_code == 409 and "in progress" in _reason(exc):
            return  # someone else (kitt engines cleanup) is removing it
        raise EngineError(f"could not remove container {name} ({_reason(exc)}): remove it "
                          f"with docker rm -f {name}, or kitt engines cleanup") from None
    except _DOCKER_FAILURES as exc:
        raise EngineError(f"could not remove container {name} ({daemon_error(exc)}): once "
                          f"Docker answers, remove it with docker rm -f {name}, or kitt engines "
                          "cleanup") from None


class DockerEngine:
    """Starts an engine's image as a container (Engine port, docker mode) and waits until it is
    healthy; on any failure or interruption on the way the container is removed."""

    def __init__(self, *, client_factory: ClientFactory = docker.from_env,
                 environ: Mapping[str, str] | None = None,
                 progress: Callable[[str], None] = _stderr,
                 gpu_probe: Callable[[DockerClient], bool] = gpus_visible,
                 stop_timeout_s: float = 5.0) -> None:
        self._client = _Client(client_factory)
        self._environ = os.environ if environ is None else environ
        self._progress = progress
        self._gpu_probe = gpu_probe
        self._stop_timeout_s = stop_timeout_s

    def start(self, launch: EngineLaunch) -> DockerRunningEngine:
        spec = launch.spec
        if spec is None or spec.docker is None:
            raise EngineError(f"engine {launch.engine!r} has no docker mode: use --mode native")
        if launch.resolved_model is None:
            raise EngineError("docker mode needs the model resolved to a path or a Hugging Face "
                              "id (internal error: EngineLaunch.resolved_model is missing)")
        client = self._client.get()
        reference = launch.image or spec.docker.image
        model = model_mount(launch.resolved_model, spec.docker, self._environ)
        devices = device_requests(launch.gpus, self._gpu_probe(client))
        image = self._ensure_image(client, reference, spec.name)
        # The start-up timeout counts from here: a pull of many GB is not the engine's start.
        deadline = time.monotonic() + launch.startup_timeout_s
        options = container_options(
            launch, spec, image=reference, model=model, devices=devices,
            host_port=spec.port if port_is_free(spec.port) else None,
        )
        log_path = launch.log_dir / LOG_NAME
        name = options["name"]
        container: Any = None
        logs: _LogFollower | None = None
        running: DockerRunningEngine | None = None
        try:
            container = self._create_and_start(client, options)
            logs = _LogFollower(container, log_path)
            host_port = _host_port(container, spec.docker, spec.name, log_path)
            running = DockerRunningEngine(
                container, engine=spec.name, host_port=host_port, log_path=log_path,
                stop_timeout_s=self._stop_timeout_s, logs=logs,
                info=EngineInfo(name=spec.name, mode="docker", image=reference,
                                image_digest=image_digest(image), args=options["command"]),
            )
            self._wait_healthy(running, spec, deadline)
            running._set_version(_read_version(running.endpoint, spec))
            return running
        except BaseException as exc:  # also Ctrl-C and SIGTERM: never leave the container
            self._discard(client, name, container, running, exc)
            if logs is not None:
                logs.stop()  # after the removal, so that the log has the engine's last words
            raise

    def _ensure_image(self, client: DockerClient, reference: str, engine: str) -> Any:
        image = _find_image(client, reference)
        if image is not None:
            return image
        self._progress(f"image {reference} is not on this machine; pulling it")
        try:
            return pull_image(client, reference, self._progress)
        except EngineError as exc:
            raise EngineError(
                f"image {reference} is not on this machine and could not be pulled ({exc}): run "
                f"`kitt engines setup {engine}` where the registry is reachable, or pass --image"
            ) from None

    def _create_and_start(self, client: DockerClient, options: dict[str, Any]) -> Any:
        with _talking_to_docker():
            container = client.containers.create(**options)
        try:
            container.start()
        except docker.errors.APIError as exc:
            reason = _reason(exc)
            with _talking_to_docker():
                container.remove(force=True)
            if "port is already allocated" in reason or "address already in use" in reason:
                # Taken between our check and Docker's bind: let Docker pick a port.
                port = next(iter(options["ports"]))
                options = {**options, "ports": {port: ("127.0.0.1", None)}}
                with _talking_to_docker():
                    container = client.containers.create(**options)
                    container.start()
            elif "could not select device driver" in reason:
                raise EngineError(
                    f"Docker cannot give the container GPUs ({reason}): install the NVIDIA "
                    "Container Toolkit (nvidia-ctk runtime configure --runtime=docker, then "
                    "restart Docker), or pass --gpus none to run on the CPU"
                ) from None
            else:
                raise EngineError(f"Docker could not start container {options['name']}: "
                                  f"{reason}") from None
        except _DOCKER_FAILURES as exc:
            raise daemon_error(exc) from None
        with _talking_to_docker():
            container.reload()  # for the published port
        return container

    def _wait_healthy(self, running: DockerRunningEngine, spec: EngineSpec,
                      deadline: float) -> None:
        name = f"the {spec.name} container {running.name}"
        try:
            wait_healthy(running.endpoint + spec.health_path, deadline=deadline,
                         failure=running.failure, name=name)
        except EngineError as exc:
            if running.failure() is not None:
                raise  # the message already has the exit and the log tail
            raise EngineError(f"{exc} Last lines of its log:\n{running.log_tail()}") from None

    def _discard(self, client: DockerClient, name: str, container: Any,
                 running: DockerRunningEngine | None, cause: BaseException) -> None:
        """Remove what start() created; a removal failure is added to an EngineError's message
        (or noted on other exceptions) rather than hiding the cause."""
        try:
            if running is not None:
                running.stop()
                return
            if container is None:
                # Interrupted inside create(): the container may exist without us holding it.
                with contextlib.suppress(docker.errors.NotFound):
                    container = client.containers.get(name)
            if container is not None:
                remove_container(container, 0)
        except EngineError as failed:
            if isinstance(cause, EngineError):
                cause.message += f"\nAlso: {failed.message}"
                cause.args = (cause.message,)
            else:
                cause.add_note(failed.message)
        except _DOCKER_FAILURES as failed:
            cause.add_note(f"could not remove container {name}: {failed}")


def _host_port(container: Any, spec: DockerSpec, engine: str, log_path: Path) -> int:
    bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(
        f"{spec.container_port}/tcp") or []
    for binding in bindings:
        if binding.get("HostPort"):
            return int(binding["HostPort"])
    # An engine that exited at once has no published port any more: say why it exited.
    with _talking_to_docker():
        exited = exit_report(container, engine, log_path)
    raise EngineError(exited or f"Docker published no host port for container port "
                                f"{spec.container_port} of {container.name}")


def _read_version(endpoint: str, spec: EngineSpec) -> str | None:
    """The engine's version from its own API, best effort."""
    try:
        with httpx.Client(trust_env=False, timeout=5) as client:
            response = client.get(endpoint + spec.version_path)
        if response.status_code != 200:
            return None
        return read_version(msgspec.json.decode(response.content), spec.version_field)
    except (httpx.HTTPError, msgspec.DecodeError):
        return None  # many builds do not say; the image digest identifies the engine anyway


# --------------------------------------------------------------------------- admin


@dataclass(frozen=True)
class DockerInstance:
    """A container kitt started (running or exited)."""

    engine: str
    run_id: str
    description: str


class DockerAdmin:
    """`kitt engines` in docker mode (EngineAdmin port): pull images, find and remove the
    containers kitt labelled."""

    def __init__(self, *, client_factory: ClientFactory = docker.from_env) -> None:
        self._client = _Client(client_factory)

    def availability(self, spec: EngineSpec, *, image: str | None = None) -> str | None:
        """"image present (sha256:...)", or None when the image is not on this machine.
        EngineError when Docker cannot be reached."""
        if spec.docker is None:
            return None
        found = _find_image(self._client.get(), image or spec.docker.image)
        return None if found is None else f"image present ({image_digest(found)})"

    def setup(self, spec: EngineSpec, *, image: str | None,
              progress: Callable[[str], None]) -> str:
        if spec.docker is None:
            raise EngineError(f"engine {spec.name!r} has no docker mode: use --mode native")
        reference = image or spec.docker.image
        client = self._client.get()
        progress(f"pulling {reference}")
        try:
            pulled = pull_image(client, reference, progress)
        except EngineError as exc:
            present = _find_image(client, reference)
            if present is None:
                raise EngineError(f"could not pull {reference} ({exc}): check the network and "
                                  "the image name, or `docker login` for a private "
                                  "registry") from None
            return (f"image {reference} is present ({image_digest(present)}); could not check "
                    f"the registry for a newer one ({exc})")
        return f"pulled {reference} ({image_digest(pulled)})"

    def _containers(self) -> list[dict[str, Any]]:
        """kitt's containers as the daemon lists them (one call: asking about each in turn
        would race with containers being removed meanwhile)."""
        with _talking_to_docker():
            return list(self._client.get().api.containers(
                all=True, filters={"label": LABEL_RUN_ID}))

    def instances(self) -> list[EngineInstance]:
        """kitt's containers, running or exited (an exited one is a leftover to clean up)."""
        found: list[EngineInstance] = []
        for entry in self._containers():
            labels = entry.get("Labels") or {}
            ports = sorted({f"{p.get('IP', '127.0.0.1')}:{p['PublicPort']}"
                            for p in entry.get("Ports") or [] if p.get("PublicPort")})
            # State: running, exited...; Status: "Up 2 hours", "Exited (137) 5 minutes ago".
            description = (f"container {_listed_name(entry)} ({entry.get('Image', '?')}), "
                           f"{entry.get('State', '?')} ({entry.get('Status', '?')})")
            if ports:
                description += f", port {', '.join(ports)}"
            found.append(DockerInstance(engine=labels.get(LABEL_ENGINE, "?"),
                                        run_id=labels.get(LABEL_RUN_ID, "?"),
                                        description=description))
        return found

    def cleanup(self) -> list[str]:
        """Force-remove every container kitt labelled; a line for each."""
        removed = []
        client = self._client.get()
        for entry in self._containers():
            labels = entry.get("Labels") or {}
            try:
                container = client.containers.get(entry["Id"])
            except docker.errors.NotFound:
                continue  # removed meanwhile (by the kitt that started it)
            except _DOCKER_FAILURES as exc:
                raise daemon_error(exc) from None
            remove_container(container, 0)
            engine, run_id = labels.get(LABEL_ENGINE, "?"), labels.get(LABEL_RUN_ID, "?")
            removed.append(f"removed container {_listed_name(entry)} ({engine}, run {run_id})")
        return removed


def _listed_name(entry: Mapping[str, Any]) -> str:
    names = entry.get("Names") or [entry.get("Id", "?")[:12]]
    return str(names[0]).lstrip("/")
