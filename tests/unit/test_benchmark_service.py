"""The `kitt run` use case driven through the real service with fake adapters."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from kitt.domain.errors import EngineError, UsageError
from kitt.services.benchmark import BenchmarkService, RunRequest
from kitt.services.catalogue import load_catalogue
from kitt.services.suites import SuiteCatalog
from tests.fakes import (
    FakeClientFactory,
    FakeEngine,
    FakeHardwareProbe,
    FakeInferenceClient,
    FakeModelResolver,
    FakeResultStore,
    RecordingProgress,
)

SUITE = """
name = "tiny"
repetitions = 1
[[scenarios]]
name = "c2"
load = { concurrency = 2, requests = 10, warmup_requests = 2 }
workload = { input_tokens = 20, output_tokens = 5 }
slo = { ttft_ms = 1000 }
[[scenarios]]
name = "c4"
load = { concurrency = 4, requests = 12 }
workload = { input_tokens = 20, output_tokens = 3 }
"""


def write_suite(tmp_path: Path, text: str = SUITE) -> str:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return str(path)


class World:
    def __init__(self, tmp_path: Path, *, engine: FakeEngine | None = None,
                 client: FakeInferenceClient | None = None,
                 admins: dict[str, object] | None = None) -> None:
        self.tmp_path = tmp_path
        self.engine = engine or FakeEngine()
        self.factory = FakeClientFactory(client)
        self.store = FakeResultStore()
        self.progress = RecordingProgress()
        self.models = FakeModelResolver()
        self.service = BenchmarkService(
            engines={"simulated": self.engine, "external": self.engine,
                     "docker": self.engine, "native": self.engine},
            catalogue=load_catalogue(),
            models=self.models,
            admins=admins,  # type: ignore[arg-type]
            client_factory=self.factory,
            store=self.store,
            hardware=FakeHardwareProbe(),
            suites=SuiteCatalog(),
        )

    def run(self, suite: str | None = None, **overrides):
        fields = {"model": "demo", "engine": "simulated", "output_dir": self.tmp_path / "out",
                  "suite": suite or write_suite(self.tmp_path), **overrides}
        request = RunRequest(**fields)
        return self.service.run(request, self.progress)


def test_a_run_measures_every_scenario_and_writes_everything(tmp_path):
    world = World(tmp_path)
    outcome = world.run(seed=7)
    metrics = outcome.metrics
    assert metrics.status == "complete" and metrics.passed
    assert [s.name for s in metrics.scenarios] == ["c2", "c4"]
    c2 = metrics.scenarios[0].repetitions[0]
    assert (c2.requests, c2.completed, c2.failed) == (10, 10, 0)
    assert c2.output_tokens is not None and c2.output_tokens.min == 5
    assert c2.goodput_rps == pytest.approx(c2.request_throughput_rps)
    # Every request, warm-up included and flagged, reached requests.jsonl as it finished.
    records = world.store.requests[tmp_path / "out"]
    assert len(records) == 10 + 2 + 12
    assert sum(r.warmup for r in records) == 2
    saved_metrics, config, hardware = world.store.runs[tmp_path / "out"]
    assert saved_metrics == metrics
    assert config.seed == 7 and config.suite.name == "tiny"
    assert metrics.hardware_fingerprint == hardware.fingerprint
    assert world.engine.started[0].stopped == 1
    # The pool is opened at the scenario's concurrency before measuring.
    assert [c["pool_size"] for c in world.factory.calls[1:]] == [2, 4]
    assert world.progress.events[0] == ("note", "engine simulated ready at "
                                        "http://fake-engine.invalid:8000")


def test_measured_latency_is_what_the_engine_took(tmp_path):
    world = World(tmp_path, client=FakeInferenceClient(ttft_s=0.02, itl_s=0.005))
    scenario = world.run().metrics.scenarios[0]
    # Real sleeps through a fake: generous tolerance, this is not a speed check.
    assert scenario.aggregate["ttft_ms.p50"].median == pytest.approx(20, abs=8)
    assert scenario.aggregate["tpot_ms.p50"].median == pytest.approx(5, abs=3)


def test_repetitions_produce_summaries_and_an_aggregate(tmp_path):
    world = World(tmp_path)
    scenario = world.run(runs=3).metrics.scenarios[1]
    assert [r.repetition for r in scenario.repetitions] == [1, 2, 3]
    assert scenario.aggregate["ttft_ms.p50"].n == 3
    assert scenario.aggregate["ttft_ms.p50"].ci95_low is not None
    # Each repetition sends prompts of its own, so no prefix cache can favour later ones.
    prompts = [r.prompt for r in world.factory.client.sent]
    assert len(set(prompts)) == len(prompts)


def test_calibrated_tokens_per_word_scale_the_prompts(tmp_path):
    world = World(tmp_path, client=FakeInferenceClient(tokens_per_word=2.0))
    world.run()
    _, config, _ = world.store.runs[tmp_path / "out"]
    assert config.tokens_per_word == pytest.approx(2.0)
    assert {len(r.prompt.split()) for r in world.factory.client.sent} == {10}  # 20 tokens


def test_too_many_request_errors_fail_the_scenario_with_the_reason(tmp_path):
    client = FakeInferenceClient(fail=lambda r: "http_500" if r.index % 5 == 0 else None)
    metrics = World(tmp_path, client=client).run().metrics
    assert metrics.status == "complete" and not metrics.passed
    c2 = metrics.scenarios[0]
    assert c2.repetitions[0].errors == {"http_500": 2}
    assert c2.reasons == [
        "repetition 1: 2 of 10 requests failed (20.0% > 0.0% allowed): http_500 x2"
    ]


def test_an_engine_that_fails_to_start_gives_a_failed_run_with_the_reason(tmp_path):
    world = World(tmp_path, engine=FakeEngine(start_error="engine exited during start-up"))
    metrics = world.run().metrics
    assert metrics.status == "failed"
    assert metrics.status_reason == "engine exited during start-up"
    assert metrics.scenarios == []
    assert (tmp_path / "out") in world.store.runs  # the files still say what happened


def test_an_engine_dying_mid_run_keeps_what_was_measured(tmp_path):
    suite = write_suite(tmp_path, """
name = "long"
[[scenarios]]
name = "slow"
load = { concurrency = 2, requests = 1000 }
workload = { input_tokens = 5, output_tokens = 4 }
[[scenarios]]
name = "never"
load = { requests = 1 }
""")
    world = World(tmp_path, engine=FakeEngine(dies_after_s=0.5),
                  client=FakeInferenceClient(ttft_s=0.01, itl_s=0.001))
    metrics = world.run(suite=suite).metrics
    assert metrics.status == "failed"
    assert "the engine died during the run" in (metrics.status_reason or "")
    assert "code 137" in (metrics.status_reason or "")
    [slow] = metrics.scenarios  # "never" did not run
    rep = slow.repetitions[0]
    assert not rep.complete and 0 < rep.completed < 1000
    assert len(world.store.requests[tmp_path / "out"]) == rep.requests
    assert world.engine.started[0].stopped == 1


def test_open_loop_records_schedule_lag_and_achieved_rate(tmp_path):
    suite = write_suite(tmp_path, """
name = "open"
[[scenarios]]
name = "poisson"
load = { pattern = "constant", rate_rps = 50, requests = 20 }
workload = { input_tokens = 5, output_tokens = 2 }
""")
    rep = World(tmp_path).run(suite=suite).metrics.scenarios[0].repetitions[0]
    assert rep.requests == 20
    assert rep.achieved_rate_rps == pytest.approx(50, rel=0.2)
    assert rep.schedule_lag_ms is not None and rep.schedule_lag_ms.count == 20


def test_a_duration_bound_closed_loop_stops_sending_at_the_deadline(tmp_path):
    suite = write_suite(tmp_path, """
name = "timed"
[[scenarios]]
name = "for-a-while"
load = { concurrency = 2, duration_s = 0.3 }
workload = { input_tokens = 5, output_tokens = 2 }
""")
    world = World(tmp_path, client=FakeInferenceClient(ttft_s=0.01, itl_s=0.001))
    rep = world.run(suite=suite).metrics.scenarios[0].repetitions[0]
    assert rep.complete and rep.requests > 4
    assert rep.duration_s == pytest.approx(0.3, abs=0.15)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_run_and_keeps_the_records(tmp_path, signum):
    suite = write_suite(tmp_path, """
name = "long"
[[scenarios]]
name = "slow"
load = { concurrency = 2, requests = 100000 }
workload = { input_tokens = 5, output_tokens = 4 }
""")
    world = World(tmp_path, client=FakeInferenceClient(ttft_s=0.005, itl_s=0.001))
    measuring = threading.Event()

    def signal_once_measuring() -> None:
        while sum(not r.warmup for r in world.progress.records) < 5:
            if measuring.wait(0.01):
                return
        os.kill(os.getpid(), signum)

    sender = threading.Thread(target=signal_once_measuring)
    sender.start()
    try:
        metrics = world.run(suite=suite).metrics
    finally:
        measuring.set()
        sender.join()
    assert metrics.status == "interrupted"
    name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C (SIGINT)"
    assert metrics.status_reason is not None and metrics.status_reason.startswith(
        f"interrupted by {name}")
    rep = metrics.scenarios[0].repetitions[0]
    assert not rep.complete and rep.completed > 0
    assert len(world.store.requests[tmp_path / "out"]) == rep.requests
    assert world.engine.started[0].stopped == 1
    # The default handlers are back once the run is over.
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"engine": "vllm-turbo"}, "unknown engine 'vllm-turbo': kitt can run simulated, vllm"),
        ({"engine": "external"}, "external mode needs --endpoint"),
        ({"endpoint": "http://x:1", "mode": "native"}, "cannot be combined with --mode native"),
        ({"mode": "docker"}, "engine 'simulated' has no docker mode"),
        ({"engine": "llama-cpp", "image": "x:1", "mode": "native"}, "--image applies to docker"),
        ({"engine": "vllm", "gpus": "all", "mode": "native"}, "--gpus applies to docker"),
        ({"runs": 0}, "--runs must be >= 1"),
    ],
)
def test_usage_errors_are_found_before_anything_starts(tmp_path, overrides, message):
    world = World(tmp_path)
    with pytest.raises(UsageError, match=message):
        world.run(**overrides)
    assert world.engine.started == [] and world.store.runs == {}


def test_a_catalogue_engine_gets_its_spec_mode_and_resolved_model(tmp_path):
    world = World(tmp_path)
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    world.run(engine="llama-cpp", model=str(model), gpus=None)
    [running] = world.engine.started
    launch = running.launch
    assert (launch.engine, launch.mode) == ("llama-cpp", "native")  # the catalogue's default
    assert launch.spec is not None and launch.spec.name == "llama-cpp"
    assert launch.resolved_model is not None and launch.resolved_model.path == model.resolve()
    assert launch.model == str(model)  # requests name the model as the user did
    world.run(engine="vllm", model="Qwen/Qwen2.5-0.5B-Instruct", image="vllm/vllm-openai:v1",
              gpus="0,1")
    launch = world.engine.started[-1].launch
    assert (launch.mode, launch.image, launch.gpus) == ("docker", "vllm/vllm-openai:v1", "0,1")
    assert launch.resolved_model is not None
    assert launch.resolved_model.hub_id == "Qwen/Qwen2.5-0.5B-Instruct"


def test_engines_that_cannot_force_the_length_are_not_asked_to(tmp_path):
    world = World(tmp_path)
    world.run(engine="tgi", model="some/model")
    assert {r.ignore_eos for r in world.factory.client.sent} == {False}
    assert any("no ignore_eos" in str(e[1]) for e in world.progress.events if e[0] == "note")
    world.run(engine="vllm", model="some/model")
    assert world.factory.client.sent[-1].ignore_eos is True


def test_no_teardown_leaves_the_engine_running_and_says_how_to_stop_it(tmp_path):
    world = World(tmp_path)
    world.run(teardown=False)
    [running] = world.engine.started
    assert running.stopped == 0 and running.detached
    assert ("note", "--no-teardown: the fake engine keeps running") in world.progress.events


def test_a_missing_model_path_stops_before_anything_starts(tmp_path):
    world = World(tmp_path)
    world.models.missing = "./nope.gguf"
    with pytest.raises(EngineError, match="does not exist"):
        world.run(engine="llama-cpp", model="./nope.gguf")
    assert world.engine.started == [] and world.store.runs == {}


def test_a_native_engine_that_is_not_installed_is_named_before_the_model_is_fetched(tmp_path):
    from tests.fakes import FakeEngineAdmin

    world = World(tmp_path, admins={"native": FakeEngineAdmin("native")})
    with pytest.raises(EngineError, match="kitt engines setup vllm --mode native"):
        world.run(engine="vllm", mode="native", model="smollm2-135m")
    assert world.models.resolved == [] and world.engine.started == []
