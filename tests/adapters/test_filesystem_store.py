"""FilesystemStore and FilesystemRunWriter against a real directory (the ResultStore port)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.storage.filesystem import FilesystemStore, format_number, md_escape
from kitt.domain.errors import ResultFileError
from kitt.domain.hardware import GpuInfo, HardwareInfo, HostInfo, fingerprint
from kitt.domain.load import LoadSpec
from kitt.domain.metrics import aggregate, failure_reasons, summarize
from kitt.domain.records import RequestRecord
from kitt.domain.results import CiContext, EngineInfo, RunConfig, RunMetrics, ScenarioResult
from kitt.domain.suite import Scenario, Slo, Suite
from kitt.domain.workload import WorkloadSpec
from kitt.ports import ResultStore
from tests.fakes import FakeResultStore

EVIL_MODEL = "evil|<script>*x*"

# --- a realistic run, summarized by the domain from hand-made records ---------------------------


def record(
    repetition: int,
    index: int,
    *,
    ttft: float = 25.0,
    gap: float = 6.0,
    tokens: int = 16,
    start: float = 0.0,
    error_kind: str | None = None,
    token_source: str = "usage",
    scenario: str = "chat_short",
) -> RequestRecord:
    if error_kind is not None:
        return RequestRecord(
            scenario=scenario, repetition=repetition, index=index, ok=False, start_ms=start,
            end_ms=start + 40.0, e2e_ms=40.0, requested_output_tokens=16, http_status=500,
            error_kind=error_kind, error="Internal Server Error",
        )  # fmt: skip
    chunks = [ttft + gap * k for k in range(tokens)]
    e2e = chunks[-1] + 2.0
    return RequestRecord(
        scenario=scenario, repetition=repetition, index=index, ok=True, start_ms=start,
        end_ms=start + e2e, e2e_ms=e2e, ttft_ms=ttft, tpot_ms=gap, chunk_ms=chunks,
        input_tokens=128, output_tokens=tokens, token_source=token_source,  # type: ignore[arg-type]
        requested_output_tokens=16,
    )  # fmt: skip


LOAD = LoadSpec(pattern="closed", concurrency=4, requests=8, warmup_requests=1)
WORKLOAD = WorkloadSpec(input_tokens=128, output_tokens=16)
SLO = Slo(ttft_ms=40.0)


def repetition_records(repetition: int) -> list[RequestRecord]:
    records = [record(repetition, -1, start=-300.0)] + [
        record(repetition, i, ttft=20.0 + 3 * i + repetition, gap=5.0 + 0.25 * i, start=12.5 * i)
        for i in range(7)
    ]
    records[0] = msgspec.structs.replace(records[0], warmup=True)
    records.append(record(repetition, 7, start=30.0, error_kind="http_500"))
    if repetition == 2:
        records.append(record(repetition, 8, tokens=11, start=40.0))  # stopped early
    return records


def make_run(
    tmp_records: list[RequestRecord] | None = None,
    *,
    model: str = "HuggingFaceTB/SmolLM2-135M-Instruct",
    status: str = "complete",
    status_reason: str | None = None,
    scenario_description: str = "Short chat turns",
) -> tuple[RunMetrics, RunConfig, HardwareInfo, list[RequestRecord]]:
    records = tmp_records or [r for rep in (1, 2, 3) for r in repetition_records(rep)]
    reps = [
        summarize([r for r in records if r.repetition == rep], repetition=rep, slo=SLO)
        for rep in sorted({r.repetition for r in records})
    ]
    reasons = failure_reasons(reps, max_error_rate=0.2, repetitions=3)
    scenario = ScenarioResult(
        name="chat_short", description=scenario_description, load=LOAD, workload=WORKLOAD,
        slo=SLO, repetitions=reps, aggregate=aggregate(reps), passed=not reasons, reasons=reasons,
    )  # fmt: skip
    host = HostInfo(
        cpu_model="AMD EPYC 7B13", physical_cores=8, logical_cores=16, memory_bytes=64 * 2**30,
        os="Debian GNU/Linux 12 (bookworm)", kernel="6.1.0-18-amd64", architecture="x86_64",
        python="3.11.7", container="docker", virtualization="kvm",
    )  # fmt: skip
    gpus = [GpuInfo(index=i, name="NVIDIA H100 80GB HBM3", memory_bytes=80 * 2**30) for i in (0, 1)]
    hardware = HardwareInfo(
        fingerprint=fingerprint(host, gpus), host=host, gpus=gpus,
        environment={"kernel": host.kernel, "python": host.python, "driver": "550.54.15"},
    )  # fmt: skip
    engine = EngineInfo(
        name="vllm", mode="docker", endpoint="http://127.0.0.1:8000",
        image="vllm/vllm-openai:v0.6.3", image_digest="sha256:" + "ab" * 32, version="0.6.3",
        args=["--max-model-len", "4096"],
    )  # fmt: skip
    metrics = RunMetrics(
        run_id="20250101T000000Z-1a2b", kitt_version="0.1.0", status=status,  # type: ignore[arg-type]
        status_reason=status_reason, started_at="2025-01-01T00:00:00Z",
        finished_at="2025-01-01T00:02:05Z", model=model, engine=engine, suite="quick", seed=7,
        hardware_fingerprint=hardware.fingerprint, scenarios=[scenario],
    )  # fmt: skip
    suite = Suite(
        name="quick", repetitions=3, max_error_rate=0.2,
        scenarios=[Scenario(name="chat_short", load=LOAD, workload=WORKLOAD, slo=SLO)],
    )  # fmt: skip
    config = RunConfig(
        run_id=metrics.run_id, kitt_version="0.1.0", model=model, engine=engine, suite=suite,
        seed=7, sampling={"temperature": 0.0}, tokens_per_word=1.31,
        ci=CiContext(provider="github", commit_sha="0123abc", ref="refs/pull/9/merge"),
    )  # fmt: skip
    return metrics, config, hardware, records


def write_run(directory: Path, **kwargs: Any) -> tuple[RunMetrics, RunConfig, HardwareInfo, list]:
    metrics, config, hardware, records = make_run(**kwargs)
    with FilesystemStore().create_run(directory) as writer:
        for r in records:
            writer.append_request(r)
        writer.write_results(metrics, config, hardware)
    return metrics, config, hardware, records


def edit_json(path: Path, change: Any) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.fixture
def store() -> FilesystemStore:
    return FilesystemStore()


# --- the ResultStore contract, held by the fake the service tests use and by the real store ------


@pytest.fixture(params=["fake", "filesystem"])
def any_store(request: pytest.FixtureRequest) -> ResultStore:
    return FakeResultStore() if request.param == "fake" else FilesystemStore()


def test_contract_a_written_run_is_found_and_read_back(
    tmp_path: Path, any_store: ResultStore
) -> None:
    metrics, config, hardware, records = make_run()
    run = tmp_path / "results" / "job-a"
    writer = any_store.create_run(run)
    assert writer.directory == run
    for r in records:
        writer.append_request(r)
    writer.write_results(metrics, config, hardware)
    writer.close()

    assert any_store.find_runs(tmp_path / "results") == [run]
    assert any_store.load_metrics(run) == metrics


def test_contract_a_new_run_replaces_the_earlier_one(
    tmp_path: Path, any_store: ResultStore
) -> None:
    metrics, config, hardware, _ = make_run(model="old-model")
    writer = any_store.create_run(tmp_path)
    writer.write_results(metrics, config, hardware)
    writer.close()

    any_store.create_run(tmp_path).close()
    assert any_store.find_runs(tmp_path) == []
    with pytest.raises(ResultFileError, match=r"metrics\.json"):
        any_store.load_metrics(tmp_path)


def test_contract_nothing_there(tmp_path: Path, any_store: ResultStore) -> None:
    assert any_store.find_runs(tmp_path / "missing") == []
    with pytest.raises(ResultFileError, match=r"metrics\.json"):
        any_store.load_metrics(tmp_path / "missing")


# --- writing and reading back --------------------------------------------------------------------


def test_every_file_round_trips(tmp_path: Path, store: FilesystemStore) -> None:
    run = tmp_path / "results"
    metrics, config, hardware, records = write_run(run)

    assert store.load_metrics(run) == metrics
    assert store.load_config(run) == config
    assert store.load_hardware(run) == hardware
    assert list(store.load_requests(run)) == records
    assert "chat\\_short" not in (run / "summary.md").read_text()  # intraword `_` left readable
    assert sorted(p.name for p in run.iterdir()) == [
        "config.json", "hardware.json", "metrics.json", "requests.jsonl", "summary.md",
    ]  # fmt: skip


def test_json_files_are_indented_by_two_spaces(tmp_path: Path) -> None:
    write_run(tmp_path)
    for name in ("metrics.json", "config.json", "hardware.json"):
        assert (tmp_path / name).read_text().startswith('{\n  "schema_version": 1,\n')


def test_requests_are_one_line_each_and_readable_while_the_run_goes(
    tmp_path: Path, store: FilesystemStore
) -> None:
    *_, records = make_run()
    writer = store.create_run(tmp_path)
    writer.append_request(records[0])
    writer.append_request(records[1])
    assert list(store.load_requests(tmp_path)) == records[:2]

    writer.append_request(records[2])
    assert list(store.load_requests(tmp_path)) == records[:3]
    assert len((tmp_path / "requests.jsonl").read_bytes().splitlines()) == 3
    writer.close()
    writer.close()  # twice is fine


def test_a_crash_loses_no_finished_request(tmp_path: Path, store: FilesystemStore) -> None:
    # A real process that appends three records and dies without closing anything.
    script = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_filesystem_store import make_run
        from adapters.storage.filesystem import FilesystemStore
        *_, records = make_run()
        writer = FilesystemStore().create_run(Path({str(tmp_path)!r}))
        for r in records[:3]:
            writer.append_request(r)
        os._exit(1)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=False, timeout=60)
    *_, records = make_run()
    assert list(store.load_requests(tmp_path)) == records[:3]


def test_an_earlier_run_in_the_directory_is_replaced(
    tmp_path: Path, store: FilesystemStore
) -> None:
    write_run(tmp_path, model="old-model")
    (tmp_path / ".metrics.json.0badc0ffee00.tmp").write_text("{")  # an earlier crash mid-write

    writer = store.create_run(tmp_path)
    # While the new run goes, nothing of the old one passes for its results.
    assert store.find_runs(tmp_path) == []
    assert list(store.load_requests(tmp_path)) == []

    metrics, config, hardware, records = make_run(model="new-model")
    writer.append_request(records[0])
    writer.write_results(metrics, config, hardware)
    writer.close()
    assert store.load_metrics(tmp_path).model == "new-model"
    assert list(store.load_requests(tmp_path)) == records[:1]
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files


def test_write_results_twice_replaces_the_files(tmp_path: Path, store: FilesystemStore) -> None:
    metrics, config, hardware, _ = make_run(status="interrupted", status_reason="Ctrl-C")
    with store.create_run(tmp_path) as writer:
        writer.write_results(metrics, config, hardware)
        writer.write_results(msgspec.structs.replace(metrics, status="complete"), config, hardware)
    assert store.load_metrics(tmp_path).status == "complete"
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "complete"


def test_metrics_json_is_written_last(tmp_path: Path, store: FilesystemStore) -> None:
    metrics, config, hardware, _ = make_run()
    writer = store.create_run(tmp_path)
    (tmp_path / "summary.md").mkdir()  # nothing can be renamed over a directory

    with pytest.raises(ResultFileError, match=r"cannot write .*summary\.md"):
        writer.write_results(metrics, config, hardware)
    assert (tmp_path / "config.json").is_file()
    assert not (tmp_path / "metrics.json").exists()
    assert store.find_runs(tmp_path) == []
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    writer.close()


def test_result_files_are_readable_by_others(tmp_path: Path) -> None:
    write_run(tmp_path)
    # mkstemp's 0600 would hide results from CI artifact uploaders running as another user.
    assert (tmp_path / "metrics.json").stat().st_mode & 0o044 == 0o044


# --- readers refuse what they cannot trust, in one line ----------------------------------------


@pytest.mark.parametrize("name", ["metrics.json", "config.json", "hardware.json"])
def test_a_newer_schema_version_is_refused(
    tmp_path: Path, store: FilesystemStore, name: str
) -> None:
    (tmp_path / name).write_text('{"schema_version": 3, "shape": "unknown to this kitt"}')
    load = {"metrics.json": store.load_metrics, "config.json": store.load_config,
            "hardware.json": store.load_hardware}[name]  # fmt: skip
    with pytest.raises(ResultFileError) as caught:
        load(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path / name} was written by a newer kitt (schema_version 3; "
        "this kitt reads up to 1): upgrade kitt"
    )


def test_a_missing_file_names_the_path_and_what_writes_it(
    tmp_path: Path, store: FilesystemStore
) -> None:
    with pytest.raises(ResultFileError) as caught:
        store.load_metrics(tmp_path / "results")
    message = str(caught.value)
    assert str(tmp_path / "results" / "metrics.json") in message
    assert "does not exist" in message
    assert "`kitt run -o DIR` writes metrics.json into DIR" in message
    with pytest.raises(ResultFileError, match=r"requests\.jsonl not found"):
        store.load_requests(tmp_path)  # at the call, not at the first next()


def test_malformed_json_is_one_line_naming_the_file(tmp_path: Path, store: FilesystemStore) -> None:
    (tmp_path / "metrics.json").write_text('{"schema_version": 1, "run_id": ')
    with pytest.raises(ResultFileError) as caught:
        store.load_metrics(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'metrics.json'}: not valid JSON (")
    assert "\n" not in message


def test_a_wrong_type_names_file_and_field(tmp_path: Path, store: FilesystemStore) -> None:
    write_run(tmp_path)
    path = tmp_path / "metrics.json"
    edit_json(path, lambda d: d["scenarios"][0]["repetitions"][1].update(completed="many"))
    with pytest.raises(ResultFileError) as caught:
        store.load_metrics(tmp_path)
    assert str(caught.value) == (
        f"{path}: expected `int`, got `str`, at $.scenarios[0].repetitions[1].completed"
    )


def test_a_missing_field_and_an_invalid_value_name_their_place(
    tmp_path: Path, store: FilesystemStore
) -> None:
    write_run(tmp_path)
    path = tmp_path / "config.json"
    edit_json(path, lambda d: d.pop("run_id"))
    with pytest.raises(ResultFileError) as caught:
        store.load_config(tmp_path)
    assert str(caught.value) == f"{path}: object missing required field `run_id`, at $"

    write_run(tmp_path)
    edit_json(path, lambda d: d["suite"]["scenarios"][0]["load"].update(requests=0))
    with pytest.raises(ResultFileError) as caught:
        store.load_config(tmp_path)
    assert str(caught.value) == f"{path}: requests must be >= 1, at $.suite.scenarios[0].load"


def test_unknown_fields_from_a_newer_minor_kitt_are_tolerated(
    tmp_path: Path, store: FilesystemStore
) -> None:
    metrics, *_ = write_run(tmp_path)

    def add_fields(d: dict[str, Any]) -> None:
        d["energy_j"] = 12.5
        d["scenarios"][0]["telemetry"] = {"gpu_power_w": {"p50": 300}}

    edit_json(tmp_path / "metrics.json", add_fields)
    assert store.load_metrics(tmp_path) == metrics


def test_a_truncated_last_request_line_is_skipped_with_a_warning(
    tmp_path: Path, store: FilesystemStore
) -> None:
    *_, records = write_run(tmp_path)
    path = tmp_path / "requests.jsonl"
    full = path.read_bytes()
    last_line_start = full.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(full[: last_line_start + 25])  # cut off mid-write

    warnings: list[str] = []
    assert list(store.load_requests(tmp_path, on_warning=warnings.append)) == records[:-1]
    assert warnings == [
        f"{path}: skipped incomplete line {len(records)} (the run stopped, or was still "
        "running, while it was being written)"
    ]


def test_a_bad_request_line_in_the_middle_is_an_error_with_its_number(
    tmp_path: Path, store: FilesystemStore
) -> None:
    write_run(tmp_path)
    path = tmp_path / "requests.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = b'{"scenario": "chat_short", "repetition": "one"}\n'
    path.write_bytes(b"".join(lines))
    with pytest.raises(ResultFileError) as caught:
        list(store.load_requests(tmp_path))
    assert str(caught.value) == f"{path}, line 3: expected `int`, got `str`, at $.repetition"


# --- finding runs --------------------------------------------------------------------------------


def test_find_runs_walks_a_ci_matrix_layout(tmp_path: Path, store: FilesystemStore) -> None:
    results = tmp_path / "results"
    for run in ("job-b/x", "job-a", "job-c/deep/er"):
        (results / run).mkdir(parents=True)
        (results / run / "metrics.json").write_text("{}")
    (results / "job-d").mkdir()  # a job that wrote nothing
    (results / "job-d" / "requests.jsonl").write_text("")

    assert store.find_runs(results) == [
        results / "job-a", results / "job-b" / "x", results / "job-c" / "deep" / "er",
    ]  # fmt: skip
    assert store.find_runs(results / "job-a") == [results / "job-a"]


def test_find_runs_in_a_missing_directory_is_empty(tmp_path: Path, store: FilesystemStore) -> None:
    assert store.find_runs(tmp_path / "baseline") == []
    (tmp_path / "file").write_text("")
    assert store.find_runs(tmp_path / "file") == []


# --- summary.md ----------------------------------------------------------------------------------


class _Text(HTMLParser):
    """Text content and tags of rendered HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def to_html(markdown: str) -> _Text:
    markdown_it = pytest.importorskip("markdown_it")
    renderer = markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"])
    parser = _Text()
    parser.feed(renderer.render(markdown))
    return parser


def test_summary_holds_the_numbers(tmp_path: Path) -> None:
    metrics, *_ = write_run(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    rep1 = metrics.scenarios[0].repetitions[0]
    assert rep1.ttft_ms is not None and rep1.e2e_ms is not None
    row = (
        f"| 1 | {rep1.completed} | {rep1.failed} | {format_number(rep1.ttft_ms.p50)} / "
        f"{format_number(rep1.ttft_ms.p99)} |"
    )
    assert row in summary
    assert f"{format_number(rep1.e2e_ms.p50)} / {format_number(rep1.e2e_ms.p99)}" in summary
    assert f"| {format_number(rep1.output_throughput_tok_s)} |" in summary
    median = metrics.scenarios[0].aggregate["ttft_ms.p50"].median
    assert f"| Median of 3 | 22 | 3 | {format_number(median)} / " in summary
    assert "http_500 × 1" in summary
    assert "- repetition 2: 1 of 8" in summary  # output length mismatch (11 of 16 tokens)
    assert metrics.hardware_fingerprint.split(" [")[0].replace("|", "\\|") in summary
    assert "PASS" in summary.splitlines()[2]
    assert "<" not in summary.replace("&lt;", "")


def test_summary_escapes_values_from_the_files(tmp_path: Path) -> None:
    write_run(
        tmp_path, model=EVIL_MODEL, scenario_description="# [click](javascript:alert(1)) <img>"
    )
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("# evil\\|&lt;script&gt;\\*x\\* on vllm: quick suite\n")

    page = to_html(summary)
    assert "script" not in page.tags and "img" not in page.tags and "a" not in page.tags
    assert "em" not in page.tags and "h1" in page.tags
    text = "".join(page.parts)
    assert f"{EVIL_MODEL} on vllm" in text
    assert "# [click](javascript:alert(1)) <img>" in text


def test_summary_of_an_interrupted_run_says_why_and_flags_chunk_counts(tmp_path: Path) -> None:
    records = [record(1, i, start=10.0 * i, token_source="chunks", ttft=30.0 + i) for i in range(4)]
    write_run(tmp_path, tmp_records=records, status="interrupted", status_reason="SIGTERM")
    summary = (tmp_path / "summary.md").read_text()
    assert "**INTERRUPTED**" in summary
    assert "Reason: SIGTERM" in summary
    assert "2 of 3 repetitions did not run" in summary
    assert "counted as streamed chunks" in summary
    assert "- repetition 1: all requests counted by chunks" in summary
    assert "Median of" not in summary  # one repetition: its row is the whole story


PLAIN_TAGS = {"p", "ul", "li", "h1", "table", "thead", "tbody", "tr", "th", "td"}
# Characters that mean something in Markdown, HTML or GFM tables, mixed with plain text.
_markdownish = st.text(
    alphabet=st.sampled_from(list("\\`*_{}[]()<>#+-.!|~$&;:=/'\"@ \t\naZé019")), max_size=40
)


@given(_markdownish)
def test_md_escape_renders_as_the_literal_text(value: str) -> None:
    expected = " ".join(value.split())
    escaped = md_escape(value)
    assert "\n" not in escaped
    for markdown, wrap in (
        (f"x {escaped}\n", lambda s: f"x {s}".strip()),
        (f"- {escaped}\n", str),
        (f"# {escaped}\n", str),
        (f"| a | b |\n| - | - |\n| {escaped} | z |\n", lambda s: f"a b {s} z".strip()),
    ):
        page = to_html(markdown)
        text = " ".join("".join(page.parts).split())
        assert text == " ".join(wrap(expected).split()), markdown
        assert set(page.tags) <= PLAIN_TAGS
