"""`kitt compare` end to end: real `kitt run -e simulated` results, compared by the real CLI.

The A/A comparison is the calibration check of docs/comparison.md: two runs of the same engine
with the same timing must come out unchanged, metric by metric."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import kitt


def run_quick(out: Path, *engine_args: str) -> Path:
    result = kitt("run", "-m", "demo", "-e", "simulated", "-s", "quick", "-o", str(out),
                  *(f"--engine-arg={arg}" for arg in engine_args))
    assert result.returncode == 0, result.stderr
    return out


def verdicts(path: Path) -> dict[str, str]:
    data = json.loads(path.read_text())
    return {f"{m['scenario']} {m['metric']}": m["verdict"]
            for g in data["groups"] for m in g["metrics"]}


def test_a_a_on_the_simulated_engine_is_all_unchanged_and_a_slower_engine_regresses(tmp_path):
    a = run_quick(tmp_path / "a")
    b = run_quick(tmp_path / "b")
    same = kitt("compare", str(a), str(b), "--json", str(tmp_path / "aa.json"))
    assert same.returncode == 0, same.stderr
    assert set(verdicts(tmp_path / "aa.json").values()) == {"unchanged"}
    assert same.stdout.strip().splitlines()[-1].endswith(" unchanged")

    # 30% slower: first token and every token after it.
    slow = run_quick(tmp_path / "slow", "--ttft-ms=26", "--itl-ms=6.5")
    worse = kitt("compare", str(slow), str(b), "--json", str(tmp_path / "ab.json"))
    assert worse.returncode == 0, worse.stderr  # informational: gating is `kitt ci report`'s
    v = verdicts(tmp_path / "ab.json")
    for metric in ("ttft_ms.p50", "itl_ms.p50", "tpot_ms.mean", "e2e_ms.p50",
                   "output_throughput_tok_s"):
        assert v[f"chat-c4 {metric}"] == "regression", metric
    assert "regression" in worse.stdout
    assert "improvement" not in set(v.values())
