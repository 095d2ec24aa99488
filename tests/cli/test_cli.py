"""The CLI through click's runner, with the composition root's adapters replaced by fakes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from dependency_injector import providers

from kitt import __version__
from kitt.cli import cli
from kitt.container import Container
from tests.fakes import (
    FakeClientFactory,
    FakeEngine,
    FakeHardwareProbe,
    FakeInferenceClient,
)

SUITE = """
name = "tiny"
[[scenarios]]
name = "c2"
load = { concurrency = 2, requests = 6 }
workload = { input_tokens = 8, output_tokens = 3 }
"""


@pytest.fixture
def suite_file(tmp_path: Path) -> str:
    path = tmp_path / "tiny.toml"
    path.write_text(SUITE)
    return str(path)


def make_container(*, engine: FakeEngine | None = None,
                   client: FakeInferenceClient | None = None) -> Container:
    container = Container()
    fake_engine = engine or FakeEngine()
    container.engines.override(providers.Dict(simulated=providers.Object(fake_engine),
                                              external=providers.Object(fake_engine)))
    container.inference_client_factory.override(providers.Object(FakeClientFactory(client)))
    container.hardware_probe.override(providers.Object(FakeHardwareProbe()))
    return container


def invoke(args: list[str], container: Container | None = None):
    return CliRunner().invoke(cli, args, obj=container or make_container())


def test_version_and_help():
    assert invoke(["--version"]).output == f"kitt {__version__}\n"
    result = invoke(["--help"])
    assert result.exit_code == 0
    for command in ("run", "suites", "hardware", "show"):
        assert command in result.output


def test_help_imports_no_heavy_module():
    # `kitt --help` must stay fast: no command module, HTTP stack or DI container at import.
    code = (
        "import sys; from kitt.cli import cli\n"
        "try:\n    cli.main(['--help'], prog_name='kitt')\nexcept SystemExit:\n    pass\n"
        "heavy = {'httpx', 'aiohttp', 'rich', 'dependency_injector', 'jinja2', 'adapters',"
        " 'kitt.container', 'kitt.services.benchmark'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_run_writes_the_five_files_and_exits_0(tmp_path, suite_file):
    out = tmp_path / "out"
    result = invoke(["run", "-m", "demo", "-e", "simulated", "-s", suite_file, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "hardware.json", "metrics.json", "requests.jsonl", "summary.md"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "complete"
    assert metrics["scenarios"][0]["repetitions"][0]["completed"] == 6
    assert "c2" in result.output and "pass" in result.output


def test_request_failures_exit_1_with_the_reason(tmp_path, suite_file):
    client = FakeInferenceClient(fail=lambda r: "http_500" if r.index == 0 else None)
    result = invoke(["run", "-m", "demo", "-e", "simulated", "-s", suite_file,
                     "-o", str(tmp_path / "o")], make_container(client=client))
    assert result.exit_code == 1
    assert "1 of 6 requests failed" in result.output and "http_500" in result.output
    assert "benchmark failed" in result.output


def test_engine_start_failure_exits_1_and_says_why(tmp_path, suite_file):
    engine = FakeEngine(start_error="engine 'simulated' exited during start-up (code 2): bad flag")
    result = invoke(["run", "-m", "demo", "-e", "simulated", "-s", suite_file,
                     "-o", str(tmp_path / "o")], make_container(engine=engine))
    assert result.exit_code == 1
    assert "run failed: engine 'simulated' exited during start-up (code 2): bad flag" in (
        " ".join(result.output.split()))
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["status"] == "failed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-e", "nope"], "unknown engine 'nope'"),
        (["-e", "external"], "external mode needs --endpoint"),
        (["-e", "simulated", "--runs", "0"], "Invalid value for '--runs'"),
        (["-e", "simulated", "--mode", "gpu"], "Invalid value for '--mode'"),
    ],
)
def test_usage_errors_exit_2(tmp_path, suite_file, args, message):
    result = invoke(["run", "-m", "demo", "-s", suite_file, "-o", str(tmp_path / "o"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_malformed_suite_file_is_one_line_without_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[scenarios]]\nname = "a"\nload = { concurency = 2 }\n')
    result = invoke(["run", "-m", "demo", "-e", "simulated", "-s", str(bad),
                     "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert result.output == (f"kitt: error: suite file {bad}: unknown key `concurency` "
                             "(at `scenarios[0].load`)\n")


def test_show_reads_back_a_run_and_rejects_a_malformed_metrics_file(tmp_path, suite_file):
    out = tmp_path / "out"
    assert invoke(["run", "-m", "demo", "-e", "simulated", "-s", suite_file,
                   "-o", str(out)]).exit_code == 0
    shown = invoke(["show", str(tmp_path)])
    assert shown.exit_code == 0 and "c2" in shown.output and "complete" in shown.output

    metrics = json.loads((out / "metrics.json").read_text())
    metrics["scenarios"][0]["repetitions"] = "oops"
    (out / "metrics.json").write_text(json.dumps(metrics))
    broken = invoke(["show", str(out)])
    assert broken.exit_code == 1
    assert broken.output.startswith(f"kitt: error: {out / 'metrics.json'}")
    assert "scenarios[0].repetitions" in broken.output
    assert len(broken.output.strip().splitlines()) == 1 and "Traceback" not in broken.output

    empty = invoke(["show", str(tmp_path / "nothing-here")])
    assert empty.exit_code == 1 and "no metrics.json" in empty.output


def test_suites_list_and_show():
    listed = invoke(["suites", "list"])
    assert listed.exit_code == 0
    assert [line.split()[0] for line in listed.output.splitlines()] == [
        "performance", "quick", "standard"]
    shown = invoke(["suites", "show", "quick"])
    assert shown.exit_code == 0 and "chat-c4" in shown.output
    as_toml = invoke(["suites", "show", "quick", "--toml"])
    assert 'name = "quick"' in as_toml.output
    missing = invoke(["suites", "show", "nope"])
    assert missing.exit_code == 1 and "no suite named 'nope'" in missing.output


def test_hardware_prints_the_fingerprint_and_json():
    text = invoke(["hardware"])
    assert text.exit_code == 0 and "Fake CPU 9000" in text.output
    doc = json.loads(invoke(["hardware", "--json"]).output)
    assert doc["host"]["cpu_model"] == "Fake CPU 9000"
    assert doc["gpus"] == [] and doc["gpu_note"]


def test_the_cli_reference_in_docs_is_current():
    tool = Path(__file__).resolve().parents[2] / "tools" / "cli_reference.py"
    result = subprocess.run([sys.executable, str(tool), "--check"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr
