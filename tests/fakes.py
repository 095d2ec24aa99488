"""Hand-written fakes of kitt's ports, for unit and CLI tests. Each behaves like the real adapter
it stands for (see the contract tests in tests/adapters/test_contracts.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from kitt.domain.catalogue import EngineSpec
from kitt.domain.comparison import Comparison
from kitt.domain.engine import EngineLaunch, ResolvedModel
from kitt.domain.errors import EngineError, ForgeError, ResultFileError
from kitt.domain.hardware import HardwareInfo, HostInfo, fingerprint
from kitt.domain.records import RequestRecord, StreamResult
from kitt.domain.results import EngineInfo, RunConfig, RunMetrics
from kitt.domain.workload import PromptRequest
from kitt.ports import ResultStore


class FakeRunningEngine:
    def __init__(self, launch: EngineLaunch, *, dies_after_s: float | None = None) -> None:
        self.launch = launch
        self.stopped = 0
        self.detached = False
        self._started = time.monotonic()
        self._dies_after_s = dies_after_s

    @property
    def endpoint(self) -> str:
        return "http://fake-engine.invalid:8000"

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(name=self.launch.engine, mode=self.launch.mode, endpoint=self.endpoint,
                          version="fake-1.0")

    def failure(self) -> str | None:
        if self._dies_after_s is not None and time.monotonic() - self._started > self._dies_after_s:
            return "process exited with code 137; last log lines: killed"
        return None

    def stop(self) -> None:
        self.stopped += 1

    def detach(self) -> str:
        self.detached = True
        return "the fake engine keeps running"


class FakeEngine:
    """Starts instantly, or fails to start, or dies after a while."""

    def __init__(self, *, start_error: str | None = None, dies_after_s: float | None = None):
        self.start_error = start_error
        self.dies_after_s = dies_after_s
        self.started: list[FakeRunningEngine] = []

    def start(self, launch: EngineLaunch) -> FakeRunningEngine:
        if self.start_error:
            raise EngineError(self.start_error)
        running = FakeRunningEngine(launch, dies_after_s=self.dies_after_s)
        self.started.append(running)
        return running


class FakeInferenceClient:
    """Streams `max_tokens` tokens with a fixed TTFT and inter-token gap using real sleeps, so
    the timing kitt measures through it is known. `fail` decides per request index whether
    (and how) a request fails."""

    def __init__(
        self,
        *,
        ttft_s: float = 0.002,
        itl_s: float = 0.0005,
        models: tuple[str, ...] = ("demo",),
        tokens_per_word: float | None = None,
        fail: Callable[[PromptRequest], str | None] = lambda request: None,
        send_usage: bool = True,
    ) -> None:
        self.ttft_s = ttft_s
        self.itl_s = itl_s
        self.models = models
        self.tokens_per_word = tokens_per_word
        self.fail = fail
        self.send_usage = send_usage
        self.sent: list[PromptRequest] = []
        self.opened_connections = 0
        self.closed = False

    async def __aenter__(self) -> FakeInferenceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.closed = True

    async def served_models(self) -> list[str]:
        return list(self.models)

    async def count_tokens(self, text: str) -> int | None:
        if self.tokens_per_word is None:
            return None
        return round(len(text.split()) * self.tokens_per_word)

    async def open_connections(self, count: int) -> None:
        self.opened_connections = max(self.opened_connections, count)

    async def send(self, request: PromptRequest) -> StreamResult:
        self.sent.append(request)
        t0 = time.perf_counter_ns()
        error = self.fail(request)
        if error:
            await asyncio.sleep(self.ttft_s)
            return StreamResult(t0_ns=t0, end_ns=time.perf_counter_ns(), error_kind=error,
                                error=f"injected {error}")
        await asyncio.sleep(self.ttft_s)
        content = [time.perf_counter_ns()]
        for _ in range(request.max_tokens - 1):
            await asyncio.sleep(self.itl_s)
            content.append(time.perf_counter_ns())
        return StreamResult(
            t0_ns=t0,
            end_ns=time.perf_counter_ns(),
            content_ns=tuple(content),
            prompt_tokens=len(request.prompt.split()) if self.send_usage else None,
            completion_tokens=request.max_tokens if self.send_usage else None,
            finish_reason="length",
        )


class FakeClientFactory:
    """InferenceClientFactory that hands out one shared FakeInferenceClient and remembers the
    arguments it was called with."""

    def __init__(self, client: FakeInferenceClient | None = None) -> None:
        self.client = client or FakeInferenceClient()
        self.calls: list[dict[str, object]] = []

    def __call__(self, **kwargs: object) -> FakeInferenceClient:
        self.calls.append(kwargs)
        return self.client


def fake_host(**overrides: object) -> HostInfo:
    fields: dict[str, object] = {
        "cpu_model": "Fake CPU 9000", "physical_cores": 2, "logical_cores": 4,
        "memory_bytes": 24 * 2**30, "os": "FakeOS 1", "kernel": "6.1.0-fake",
        "architecture": "x86_64", "python": "3.11.7",
    }
    fields.update(overrides)
    return HostInfo(**fields)  # type: ignore[arg-type]


class FakeHardwareProbe:
    def __init__(self, host: HostInfo | None = None) -> None:
        self.host = host or fake_host()

    def probe(self) -> HardwareInfo:
        return HardwareInfo(fingerprint=fingerprint(self.host, []), host=self.host,
                            gpu_note="fake probe: no GPU")


class FakeRunWriter:
    def __init__(self, store: FakeResultStore, directory: Path) -> None:
        self._store = store
        self._directory = directory
        self.closed = False

    @property
    def directory(self) -> Path:
        return self._directory

    def append_request(self, record: RequestRecord) -> None:
        self._store.requests.setdefault(self._directory, []).append(record)

    def write_results(self, metrics: RunMetrics, config: RunConfig, hardware: HardwareInfo) -> None:
        self._store.runs[self._directory] = (metrics, config, hardware)

    def close(self) -> None:
        self.closed = True


class FakeResultStore:
    """Keeps runs in memory, keyed by directory."""

    def __init__(self) -> None:
        self.runs: dict[Path, tuple[RunMetrics, RunConfig, HardwareInfo]] = {}
        self.requests: dict[Path, list[RequestRecord]] = {}

    def create_run(self, directory: Path) -> FakeRunWriter:
        self.runs.pop(directory, None)
        self.requests[directory] = []
        return FakeRunWriter(self, directory)

    def load_metrics(self, directory: Path) -> RunMetrics:
        if directory not in self.runs:
            raise ResultFileError(f"{directory / 'metrics.json'}: no such file")
        return self.runs[directory][0]

    def load_config(self, directory: Path) -> RunConfig:
        if directory not in self.runs:
            raise ResultFileError(f"{directory / 'config.json'}: no such file")
        return self.runs[directory][1]

    def load_requests(self, directory: Path) -> Iterator[RequestRecord]:
        if directory not in self.requests:
            raise ResultFileError(f"{directory / 'requests.jsonl'}: no such file")
        return iter(list(self.requests[directory]))

    def find_runs(self, directory: Path) -> list[Path]:
        return sorted(d for d in self.runs if d == directory or directory in d.parents)


class RecordingProgress:
    """ProgressListener that remembers what it heard."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.records: list[RequestRecord] = []

    def scenario_started(self, scenario: str, repetition: int, repetitions: int,
                         total: int | None) -> None:
        self.events.append(("started", (scenario, repetition, repetitions, total)))

    def request_finished(self, record: RequestRecord) -> None:
        self.records.append(record)

    def scenario_finished(self, scenario: str, repetition: int) -> None:
        self.events.append(("finished", (scenario, repetition)))

    def note(self, message: str) -> None:
        self.events.append(("note", message))


@dataclass
class FakeComment:
    id: str
    body: str
    author: str
    url: str | None


class FakeVcsHost:
    """A pull request's comments in memory, written by several users. Behaves as the VcsHost
    port says: find_comment searches every comment but only the token user's own; updating a
    comment that was deleted returns None; a body over the limit is refused like GitHub's 422."""

    def __init__(self, *, user: str = "kitt-bot", max_body_chars: int = 65536) -> None:
        self.user = user
        self._max_body_chars = max_body_chars
        self.comments: list[FakeComment] = []
        self.closed = False
        self._next_id = 1

    @property
    def max_body_chars(self) -> int:
        return self._max_body_chars

    def add(self, body: str, *, author: str | None = None) -> FakeComment:
        """A comment written by someone (the token's user by default), as if posted earlier."""
        comment = FakeComment(id=str(self._next_id), body=body, author=author or self.user,
                              url=f"https://forge.invalid/pr/1#comment-{self._next_id}")
        self._next_id += 1
        self.comments.append(comment)
        return comment

    def delete(self, comment_id: str) -> None:
        self.comments = [c for c in self.comments if c.id != comment_id]

    def mine(self) -> list[FakeComment]:
        return [c for c in self.comments if c.author == self.user]

    def find_comment(self, marker: str) -> FakeComment | None:
        return next((c for c in self.comments if c.author == self.user and marker in c.body),
                    None)

    def create_comment(self, body: str) -> FakeComment:
        self._check_size(body)
        return self.add(body)

    def update_comment(self, comment_id: str, body: str) -> FakeComment | None:
        self._check_size(body)
        comment = next((c for c in self.comments if c.id == comment_id), None)
        if comment is None:
            return None
        comment.body = body
        return comment

    def close(self) -> None:
        self.closed = True

    def _check_size(self, body: str) -> None:
        if len(body) > self._max_body_chars:
            raise ForgeError(
                f"Fake forge: POST /comments answered 422: body is too long "
                f"({len(body)} > {self._max_body_chars} characters)",
                forge="Fake", method="POST", path="/comments", status=422,
            )


class FakeVcsHostFactory:
    """VcsHostFactory handing out one FakeVcsHost; remembers what it was asked for."""

    def __init__(self, host: FakeVcsHost | None = None) -> None:
        self.host = host or FakeVcsHost()
        self.calls: list[dict[str, object]] = []

    def __call__(self, **kwargs: object) -> FakeVcsHost:
        self.calls.append(kwargs)
        return self.host


class FakeComparer:
    """The comparison service's part that `kitt ci report` uses: returns a set comparison and
    remembers its calls. With a store, missing current results fail as the real one does."""

    def __init__(self, comparison: Comparison, *, store: ResultStore | None = None) -> None:
        self.comparison = comparison
        self.store = store
        self.calls: list[tuple[Path, Path | None, dict[str, float]]] = []

    def compare(
        self, current_dir: Path, baseline_dir: Path | None, *, thresholds: Mapping[str, float]
    ) -> Comparison:
        self.calls.append((current_dir, baseline_dir, dict(thresholds)))
        if self.store is not None and not self.store.find_runs(current_dir):
            raise ResultFileError(f"no metrics.json in {current_dir} or below")
        return self.comparison


class FakeModelResolver:
    """Local paths stay paths, anything else is a Hugging Face id; remembers what it resolved."""

    def __init__(self, *, missing: str | None = None) -> None:
        self.missing = missing
        self.resolved: list[str] = []

    def resolve(self, name: str, progress: Callable[[str], None]) -> ResolvedModel:
        self.resolved.append(name)
        if self.missing is not None and name == self.missing:
            raise EngineError(f"model path {name} does not exist")
        path = Path(name)
        if path.exists():
            return ResolvedModel(name=name, path=path.resolve())
        return ResolvedModel(name=name, hub_id=name)


class FakeInstance:
    def __init__(self, engine: str, run_id: str, description: str) -> None:
        self.engine, self.run_id, self.description = engine, run_id, description


class FakeEngineAdmin:
    """EngineAdmin for one mode: `available` engines are set up; setup makes one available."""

    def __init__(self, mode: str, *, available: set[str] | None = None,
                 problem: str | None = None) -> None:
        self.mode = mode
        self.available = set(available or ())
        self.problem = problem
        self.running: list[FakeInstance] = []

    def availability(self, spec: EngineSpec, *, image: str | None = None) -> str | None:
        if self.problem:
            raise EngineError(self.problem)
        return f"{self.mode} ready" if spec.name in self.available else None

    def setup(self, spec: EngineSpec, *, image: str | None,
              progress: Callable[[str], None]) -> str:
        progress(f"setting up {spec.name} ({self.mode})")
        self.available.add(spec.name)
        return f"{spec.name} is ready in {self.mode} mode" + (f" ({image})" if image else "")

    def instances(self) -> list[FakeInstance]:
        if self.problem:
            raise EngineError(self.problem)
        return list(self.running)

    def cleanup(self) -> list[str]:
        if self.problem:
            raise EngineError(self.problem)
        removed = [f"removed {i.description}" for i in self.running]
        self.running.clear()
        return removed
