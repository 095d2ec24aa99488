"""Port contracts, held by the fake that unit tests use AND by the real adapter.

If a fake drifts from the adapter it stands for, these tests fail for the fake. (The ResultStore
contract lives in test_filesystem_store.py.)
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.engine.simulated import SimulatedEngine
from adapters.hardware.host import HostProbe
from adapters.inference.openai_client import HttpxInferenceClient
from kitt.domain.engine import EngineLaunch
from kitt.domain.workload import PromptRequest
from kitt.ports import Engine, HardwareProbe, InferenceClient, RunningEngine
from tests.fakes import FakeEngine, FakeHardwareProbe, FakeInferenceClient

MODEL = "contract-model"


def launch(log_dir: Path) -> EngineLaunch:
    return EngineLaunch(engine="simulated", model=MODEL, mode="simulated", run_id="contract",
                        log_dir=log_dir, startup_timeout_s=30,
                        engine_args=("--ttft-ms=2", "--itl-ms=1"))


@pytest.fixture(params=["fake", "simulated"])
def engine(request: pytest.FixtureRequest) -> Engine:
    return FakeEngine() if request.param == "fake" else SimulatedEngine()


def test_engine_contract_start_serve_stop(engine: Engine, tmp_path: Path) -> None:
    running = engine.start(launch(tmp_path))
    try:
        assert running.endpoint.startswith("http://")
        assert running.info.name == "simulated" and running.info.mode == "simulated"
        assert running.failure() is None
    finally:
        running.stop()
    running.stop()  # idempotent


@pytest.fixture(scope="module")
def simulated() -> Iterator[RunningEngine]:
    with tempfile.TemporaryDirectory() as tmp:
        running = SimulatedEngine().start(launch(Path(tmp)))
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture(params=["fake", "httpx"])
def client(request: pytest.FixtureRequest, simulated: RunningEngine) -> InferenceClient:
    if request.param == "fake":
        return FakeInferenceClient(ttft_s=0.002, itl_s=0.001, models=(MODEL,),
                                   tokens_per_word=1.0)
    return HttpxInferenceClient(base_url=simulated.endpoint, model=MODEL, pool_size=4,
                                request_timeout_s=30)


@pytest.mark.anyio
@pytest.mark.parametrize("api", ["chat", "completions"])
async def test_inference_client_contract(client: InferenceClient, api: str) -> None:
    async with client:
        assert MODEL in await client.served_models()
        assert await client.count_tokens("one two three four") == 4
        await client.open_connections(4)
        result = await client.send(PromptRequest(index=0, api=api,  # type: ignore[arg-type]
                                                 prompt="a b c", max_tokens=5, ignore_eos=True))
    assert result.ok and result.error_kind is None
    assert len(result.content_ns) == 5 and result.completion_tokens == 5
    assert result.prompt_tokens == 3
    assert result.t0_ns < result.content_ns[0]
    assert list(result.content_ns) == sorted(result.content_ns)
    assert result.content_ns[-1] <= result.end_ns


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("probe", [FakeHardwareProbe(), HostProbe()], ids=["fake", "host"])
def test_hardware_probe_contract(probe: HardwareProbe) -> None:
    first, second = probe.probe(), probe.probe()
    assert first.fingerprint == second.fingerprint and first.fingerprint
    assert first.host.logical_cores >= 1 and first.host.memory_bytes > 0
    assert first.gpus or first.gpu_note  # no GPU is always explained
