"""The engine catalogue: what kitt knows about each inference engine, as data (DESIGN §3).

The entries live in kitt/engines.toml (shipped in the wheel). A launch is built from the same
entry for every mode: the docker and native argument lists share their templates, so a flag
added for one mode cannot be forgotten in the other.

Templates may use {model} (what the engine loads: a path inside the container, a local path, or
a Hugging Face id), {served_model_name} (the name requests use: kitt's -m as given), {port} and
{host}; the native command may also use {python} (the interpreter that has the engine
installed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import msgspec

FixedLength = Literal["ignore_eos", "unsupported"]
Mode = Literal["docker", "native"]


class DockerSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Pinned tag, never :latest (tests/unit/test_catalogue.py checks).
    image: str
    container_port: int
    # Arguments after the image's entrypoint (or the whole command, with `entrypoint`).
    args: list[str]
    entrypoint: list[str] | None = None
    shm_size: str = "8g"
    env: dict[str, str] = {}
    # Where the image expects the Hugging Face cache (mounted when the model is an HF id).
    hf_cache: str = "/root/.cache/huggingface"


class NativeSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Candidate commands, first usable one wins: e.g. `vllm serve ...`, then
    # `{python} -m vllm.entrypoints.openai.api_server ...`.
    commands: list[list[str]]
    # The Python module that provides the engine, when it is a Python package (found with the
    # interpreter named by KITT_<ENGINE>_PYTHON, else kitt's own).
    python_module: str | None = None
    # What `kitt engines setup ENGINE --mode native` installs into kitt's environment (a pip
    # requirement), or None when kitt only prints `install_hint`.
    pip_requirement: str | None = None
    install_hint: str = ""


class EngineSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    description: str
    default_mode: Mode
    # Port the engine listens on (native) and kitt maps to on the host (docker); a free port is
    # chosen when it is taken.
    port: int
    health_path: str
    # GET version_path and read version_field (a dotted path into the JSON answer).
    version_path: str
    version_field: str
    # How kitt makes every request produce exactly max_tokens: "ignore_eos" in the request
    # body; "unsupported" where the engine has no such switch (mismatches are then counted).
    fixed_length: FixedLength
    fixed_length_note: str = ""
    # The args (both modes) that load {model} and serve it as {served_model_name} on {port}.
    serve_args: list[str]
    docker: DockerSpec | None = None
    native: NativeSpec | None = None

    def __post_init__(self) -> None:
        modes = self.modes
        if not modes:
            raise ValueError(f"engine {self.name!r} has neither a docker nor a native section")
        if self.default_mode not in modes:
            raise ValueError(f"engine {self.name!r}: default_mode {self.default_mode!r} has no "
                             "section")
        if self.docker is not None and (
            ":" not in self.docker.image.rsplit("/", 1)[-1]
            or self.docker.image.endswith(":latest")
        ):
            raise ValueError(f"engine {self.name!r}: image {self.docker.image!r} must carry a "
                             "pinned tag (never :latest)")

    @property
    def modes(self) -> list[Mode]:
        found: list[Mode] = []
        if self.docker is not None:
            found.append("docker")
        if self.native is not None:
            found.append("native")
        return found


class Catalogue(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    engines: list[EngineSpec]

    def get(self, name: str) -> EngineSpec | None:
        return next((e for e in self.engines if e.name == name), None)

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.engines]


def fill(template: list[str], values: Mapping[str, str]) -> list[str]:
    """Substitute {placeholders} in each argument; an unknown placeholder is an error (a typo in
    the catalogue must not become a literal `{modle}` on an engine's command line)."""
    try:
        return [arg.format_map(values) for arg in template]
    except KeyError as exc:
        raise ValueError(f"unknown placeholder {{{exc.args[0]}}} in {template}") from None


def read_version(document: object, dotted: str) -> str | None:
    """The value at `dotted` (e.g. "build_info" or "version") of a decoded JSON answer."""
    value = document
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return None if value is None else str(value)


DOCKER_HOST = "0.0.0.0"  # inside a container: reachable through the mapped port
NATIVE_HOST = "127.0.0.1"  # a native engine serves this machine only


def docker_command(
    spec: EngineSpec, *, model: str, served_model_name: str, extra_args: tuple[str, ...] = ()
) -> list[str]:
    """The container's command (after the image's entrypoint, or after `docker.entrypoint`)."""
    if spec.docker is None:
        raise ValueError(f"engine {spec.name!r} has no docker mode")
    values = {"model": model, "served_model_name": served_model_name, "host": DOCKER_HOST,
              "port": str(spec.docker.container_port)}
    return [*fill(spec.docker.args, values), *fill(spec.serve_args, values), *extra_args]


def docker_env(spec: EngineSpec) -> dict[str, str]:
    if spec.docker is None:
        raise ValueError(f"engine {spec.name!r} has no docker mode")
    values = {"host": DOCKER_HOST, "port": str(spec.docker.container_port)}
    return {key: value.format_map(values) for key, value in spec.docker.env.items()}


def native_command(
    spec: EngineSpec,
    command: list[str],
    *,
    model: str,
    served_model_name: str,
    port: int,
    python: str,
    extra_args: tuple[str, ...] = (),
) -> list[str]:
    """One of `spec.native.commands`, filled in, with the serving args and the user's extras."""
    values = {"model": model, "served_model_name": served_model_name, "host": NATIVE_HOST,
              "port": str(port), "python": python}
    return [*fill(command, values), *fill(spec.serve_args, values), *extra_args]
