"""`kitt engines` with the engine admins replaced by fakes (the real ones have their own tests)."""

from __future__ import annotations

from click.testing import CliRunner
from dependency_injector import providers

from kitt.cli import cli
from kitt.container import Container
from tests.fakes import FakeEngineAdmin, FakeInstance


def world(*, docker_problem: str | None = None):
    docker = FakeEngineAdmin("docker", problem=docker_problem)
    native = FakeEngineAdmin("native", available={"llama-cpp"})
    container = Container()
    container.engine_admins.override(providers.Object({"docker": docker, "native": native}))
    return container, docker, native


def invoke(container, *args: str):
    return CliRunner().invoke(cli, ["engines", *args], obj=container)


def test_list_shows_every_engine_its_image_and_what_is_set_up():
    container, _, _ = world(docker_problem="Docker is not running (cannot reach "
                                           "/var/run/docker.sock)")
    result = invoke(container, "list")
    assert result.exit_code == 0, result.output
    for name in ("vllm", "sglang", "llama-cpp", "tgi", "ollama"):
        assert name in result.output
    assert "vllm/vllm-openai:v0.32.0" in result.output
    assert "native ready" in result.output  # llama-cpp's native server is installed
    assert "Docker is not running" in result.output  # said, not a crash


def test_setup_uses_the_default_mode_or_the_one_asked_for():
    container, docker, native = world()
    result = invoke(container, "setup", "vllm")
    assert result.exit_code == 0 and "vllm is ready in docker mode" in result.output
    assert "vllm" in docker.available and "vllm" not in native.available
    result = invoke(container, "setup", "llama-cpp", "--mode", "native")
    assert result.exit_code == 0 and "llama-cpp is ready in native mode" in result.output
    bad = invoke(container, "setup", "nope")
    assert bad.exit_code == 2 and "unknown engine 'nope'" in bad.output
    wrong = invoke(container, "setup", "llama-cpp", "--mode", "native", "--image", "x:1")
    assert wrong.exit_code == 2 and "--image applies to docker mode" in wrong.output


def test_status_and_cleanup_cover_both_modes():
    container, docker, native = world()
    assert "no engine started by kitt is running" in invoke(container, "status").output
    docker.running.append(FakeInstance("vllm", "run-1", "container abc (vllm), port 8000"))
    native.running.append(FakeInstance("llama-cpp", "run-2", "pid 4242"))
    status = invoke(container, "status")
    assert "container abc" in status.output and "pid 4242" in status.output
    only = invoke(container, "status", "vllm")
    assert "pid 4242" not in only.output
    cleaned = invoke(container, "cleanup")
    assert cleaned.exit_code == 0 and "removed 2 leftovers" in cleaned.output
    assert docker.running == [] and native.running == []


def test_with_docker_down_native_leftovers_are_still_listed_and_removed():
    container, _, native = world(docker_problem="Docker is not running")
    native.running.append(FakeInstance("llama-cpp", "run-2", "pid 4242"))
    status = invoke(container, "status")
    assert "pid 4242" in status.output
    assert status.exit_code == 1 and "docker mode could not be checked" in status.output
    cleaned = invoke(container, "cleanup")
    assert "removed 1 leftover" in cleaned.output and native.running == []
    assert cleaned.exit_code == 1 and "Docker is not running" in cleaned.output
