"""The ports: what kitt's services need from the outside world, in the domain's language.

Adapters (in the top-level `adapters` package) implement these; the composition root
(kitt/container.py) wires them; unit tests substitute fakes (tests/fakes.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Protocol

from kitt.domain.catalogue import EngineSpec
from kitt.domain.comparison import Comparison
from kitt.domain.engine import EngineLaunch, ResolvedModel
from kitt.domain.hardware import HardwareInfo
from kitt.domain.records import RequestRecord, StreamResult
from kitt.domain.results import EngineInfo, RunConfig, RunMetrics
from kitt.domain.telemetry import TelemetryCapture
from kitt.domain.workload import PromptRequest


class RunningEngine(Protocol):
    """An engine that answered its health check."""

    @property
    def endpoint(self) -> str:
        """Base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8000."""
        ...

    @property
    def info(self) -> EngineInfo: ...

    def failure(self) -> str | None:
        """Why the engine is gone (process exited, container died, with its last log lines),
        or None while it is, as far as can be told, still serving."""
        ...

    def stop(self) -> None:
        """Stop the engine and release everything it holds. Safe to call twice."""
        ...

    def detach(self) -> str:
        """Leave the engine running (--no-teardown) and say how to stop it later."""
        ...


class Engine(Protocol):
    def start(self, launch: EngineLaunch) -> RunningEngine:
        """Start (or reach) the engine and return once it is healthy.

        Raises EngineError, after releasing what it started, when the engine does not become
        healthy within launch.startup_timeout_s or exits on the way.
        """
        ...


class EngineInstance(Protocol):
    """An engine kitt started that is still there (for `kitt engines status` / `cleanup`)."""

    @property
    def engine(self) -> str: ...

    @property
    def run_id(self) -> str: ...

    @property
    def description(self) -> str:
        """e.g. "container 1a2b3c (vllm/vllm-openai:v0.32.0), port 8000" or "pid 4242"."""
        ...


class EngineAdmin(Protocol):
    """Setting engines up and finding what kitt left running, for one mode (docker, native)."""

    def availability(self, spec: EngineSpec, *, image: str | None = None) -> str | None:
        """What makes the engine usable here ("image present, sha256:...", "binary at ..."),
        or None when it is not set up."""
        ...

    def setup(
        self, spec: EngineSpec, *, image: str | None, progress: Callable[[str], None]
    ) -> str:
        """Make the engine usable in this mode (pull the image; install the native binary);
        returns what was done. Raises EngineError saying what to do when it cannot."""
        ...

    def instances(self) -> list[EngineInstance]:
        """Engines kitt started in this mode that are still running."""
        ...

    def cleanup(self) -> list[str]:
        """Stop and remove every instance; returns a line per thing removed."""
        ...


class ModelResolver(Protocol):
    def resolve(self, name: str, progress: Callable[[str], None]) -> ResolvedModel:
        """A local path stays a path (EngineError when it does not exist but looks like one);
        a known alias (e.g. smollm2-135m) becomes a file in kitt's cache, fetched when missing;
        anything else is a Hugging Face id."""
        ...


class InferenceClient(Protocol):
    """Streams completions from one OpenAI-compatible endpoint. Use as an async context manager."""

    async def __aenter__(self) -> InferenceClient: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def served_models(self) -> list[str]:
        """Model names the server offers (GET /v1/models)."""
        ...

    async def count_tokens(self, text: str) -> int | None:
        """Tokens in `text` by the engine's own tokenizer; None when it has no such endpoint."""
        ...

    async def open_connections(self, count: int) -> None:
        """Open `count` pooled connections so that measured requests never pay connection set-up."""
        ...

    async def send(self, request: PromptRequest) -> StreamResult:
        """Send one streaming request and observe it to the end. Never raises for a failed
        request: failures come back as a StreamResult with error_kind set."""
        ...


class InferenceClientFactory(Protocol):
    def __call__(
        self,
        *,
        base_url: str,
        model: str,
        pool_size: int,
        request_timeout_s: float,
        api_key: str | None = None,
    ) -> InferenceClient: ...


class TelemetrySampler(Protocol):
    """Samples GPUs in the background (its own thread: never on the event loop that times
    requests) between start() and stop()."""

    def start(self) -> None: ...

    def stop(self) -> TelemetryCapture:
        """Stop sampling (promptly, also when the run is being interrupted) and return what
        was collected."""
        ...


class TelemetrySource(Protocol):
    def sampler(self, interval_s: float) -> TelemetrySampler | None:
        """A sampler of the GPUs the engine can see; None when there is no GPU to sample."""
        ...


class HardwareProbe(Protocol):
    def probe(self) -> HardwareInfo:
        """Describe this machine. Never fails for a missing GPU library: it says so instead."""
        ...


class RunWriter(Protocol):
    """Writes one run's files into its output directory as the run goes."""

    @property
    def directory(self) -> Path: ...

    def append_request(self, record: RequestRecord) -> None:
        """Append one line to requests.jsonl, flushed, so a crash loses no finished request."""
        ...

    def write_results(
        self, metrics: RunMetrics, config: RunConfig, hardware: HardwareInfo
    ) -> None:
        """Atomically write metrics.json, config.json, hardware.json and summary.md."""
        ...

    def close(self) -> None: ...


class ResultStore(Protocol):
    def create_run(self, directory: Path) -> RunWriter:
        """Prepare `directory` for a new run (created if needed; an earlier run's files there
        are replaced)."""
        ...

    def load_metrics(self, directory: Path) -> RunMetrics:
        """Read and validate DIR/metrics.json; ResultFileError names the file and field."""
        ...

    def load_config(self, directory: Path) -> RunConfig:
        """Read and validate DIR/config.json."""
        ...

    def load_requests(self, directory: Path) -> Iterator[RequestRecord]:
        """The records of DIR/requests.jsonl (a truncated last line is skipped)."""
        ...

    def find_runs(self, directory: Path) -> list[Path]:
        """Every directory at or below `directory` that holds a metrics.json, sorted."""
        ...


class ProgressListener(Protocol):
    """Hears about a run as it goes; the CLI draws it. Called on the event loop: keep it cheap."""

    def scenario_started(
        self, scenario: str, repetition: int, repetitions: int, total: int | None
    ) -> None: ...

    def request_finished(self, record: RequestRecord) -> None: ...

    def scenario_finished(self, scenario: str, repetition: int) -> None: ...

    def note(self, message: str) -> None:
        """Something the user should know now (a warning, an engine event)."""
        ...


class PostedComment(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def url(self) -> str | None: ...


class VcsHost(Protocol):
    """A pull/merge request on a forge (GitHub, GitLab, Gitea) that kitt comments on."""

    @property
    def max_body_chars(self) -> int: ...

    def find_comment(self, marker: str) -> PostedComment | None:
        """The comment by the token's own user containing `marker`, searched across all pages."""
        ...

    def create_comment(self, body: str) -> PostedComment: ...

    def update_comment(self, comment_id: str, body: str) -> PostedComment | None:
        """Replace the body; None when that comment no longer exists."""
        ...


class VcsHostFactory(Protocol):
    """Makes the VcsHost of one pull/merge request. `forge` is "github", "gitlab" or "gitea";
    `repo` is OWNER/NAME (GitHub, Gitea) or the project path or ID (GitLab); `number` is the
    pull request number (GitLab: the merge request IID); `api_url` None means the forge's
    public default; `job_token` says the token is GitLab's CI_JOB_TOKEN."""

    def __call__(
        self,
        *,
        forge: str,
        api_url: str | None,
        token: str,
        repo: str,
        number: int,
        job_token: bool = False,
    ) -> VcsHost: ...


class ReportRenderer(Protocol):
    """Turns a comparison into the report people read (a PR comment, a file, a step summary)."""

    def render(
        self,
        comparison: Comparison,
        *,
        report_id: str,
        max_chars: int | None,
        title: str | None = None,
    ) -> str:
        """The report body, ending with the marker `report_marker(report_id)` as its last line.

        With `max_chars`, the body is at most that long: detail rows are dropped (with a visible
        note) before anything else; the verdict line and the marker always stay. Every value
        from the result files is escaped.
        """
        ...
