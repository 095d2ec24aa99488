"""The `kitt run` use case: start an engine, run a suite against it, write the results.

Sequence: resolve the suite -> probe the hardware -> open the result directory -> start the
engine -> calibrate prompt lengths -> for each scenario and repetition: open the client's
connection pool, warm up, measure, summarize -> ALWAYS stop the engine and write the result files,
also when the engine dies, the user presses Ctrl-C, or SIGTERM arrives. Records of finished
requests reach requests.jsonl as they finish, so nothing measured is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import threading
from collections.abc import Awaitable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import msgspec

import kitt
from kitt.domain.catalogue import Catalogue, EngineSpec
from kitt.domain.ci import ci_context
from kitt.domain.engine import EngineLaunch, redact_url
from kitt.domain.errors import EngineError, UsageError
from kitt.domain.hardware import HardwareInfo
from kitt.domain.metrics import RepetitionSummary, aggregate, failure_reasons, summarize
from kitt.domain.records import RequestRecord
from kitt.domain.results import (
    EngineInfo,
    EngineMode,
    RunConfig,
    RunMetrics,
    RunStatus,
    ScenarioResult,
)
from kitt.domain.suite import Scenario, Suite
from kitt.domain.workload import SyntheticWorkload, calibration_text, derive_seed
from kitt.ports import (
    Engine,
    EngineAdmin,
    HardwareProbe,
    InferenceClientFactory,
    ModelResolver,
    ProgressListener,
    ResultStore,
    RunningEngine,
    RunWriter,
)
from kitt.services.loadgen import LoadRun
from kitt.services.suites import SuiteCatalog

# How often the engine is checked for having died while a repetition runs.
_WATCH_INTERVAL_S = 0.25
_CALIBRATION_WORDS = 1000



@dataclass(frozen=True)
class RunRequest:
    """Everything `kitt run` was asked to do."""

    model: str
    engine: str
    suite: str
    output_dir: Path
    mode: EngineMode | None = None
    endpoint: str | None = None
    image: str | None = None
    engine_args: tuple[str, ...] = ()
    runs: int | None = None
    seed: int = 0
    startup_timeout_s: float = 600.0
    gpus: str | None = None
    teardown: bool = True
    api_key: str | None = field(default=None, repr=False)
    env: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class RunOutcome:
    metrics: RunMetrics
    directory: Path


class Interrupted(Exception):
    """Raised by the SIGTERM handler outside the event loop, like KeyboardInterrupt for SIGINT."""


@dataclass(frozen=True)
class _Selection:
    engine: Engine
    mode: EngineMode
    # The catalogue entry (docker and native modes; also external when -e names one).
    spec: EngineSpec | None


@dataclass
class _Session:
    """What a run has produced so far; turned into metrics.json whatever way the run ends."""

    suite: Suite
    summaries: dict[str, list[RepetitionSummary]] = field(default_factory=dict)
    status: RunStatus = "complete"
    status_reason: str | None = None
    engine_info: EngineInfo | None = None
    tokens_per_word: float = 1.0
    measured: int = 0
    # False for engines that cannot force the output length (TGI, Ollama): asking would be
    # refused or ignored, so requests say max_tokens only.
    ignore_eos: bool = True

    def stop(self, status: RunStatus, reason: str) -> None:
        if self.status == "complete":  # the first cause is the one to report
            self.status, self.status_reason = status, reason

    def add(self, scenario: str, summary: RepetitionSummary) -> None:
        self.summaries.setdefault(scenario, []).append(summary)

    def scenario_results(self) -> list[ScenarioResult]:
        results = []
        for scenario in self.suite.scenarios:
            summaries = self.summaries.get(scenario.name)
            if not summaries:
                continue
            reasons = failure_reasons(
                summaries,
                max_error_rate=self.suite.max_error_rate,
                repetitions=self.suite.repetitions,
            )
            results.append(
                ScenarioResult(
                    name=scenario.name,
                    description=scenario.description,
                    load=scenario.load,
                    workload=scenario.workload,
                    slo=scenario.slo,
                    repetitions=summaries,
                    aggregate=aggregate(summaries),
                    passed=not reasons,
                    reasons=reasons,
                )
            )
        return results


class BenchmarkService:
    def __init__(
        self,
        *,
        engines: Mapping[str, Engine],
        client_factory: InferenceClientFactory,
        store: ResultStore,
        hardware: HardwareProbe,
        suites: SuiteCatalog,
        catalogue: Catalogue,
        models: ModelResolver,
        admins: Mapping[str, EngineAdmin] | None = None,
    ) -> None:
        """`engines`: the adapter of each mode: simulated, external, docker, native;
        `admins`: what tells whether a native engine is installed."""
        self._admins = admins
        self._catalogue = catalogue
        self._models = models
        self._engines = engines
        self._client_factory = client_factory
        self._store = store
        self._hardware = hardware
        self._suites = suites

    def known_engines(self) -> list[str]:
        """Every engine name `-e` accepts."""
        return ["simulated", "external", *self._catalogue.names]

    def _select_engine(self, request: RunRequest) -> _Selection:
        if request.endpoint or request.mode == "external" or request.engine == "external":
            if not request.endpoint:
                raise UsageError("external mode needs --endpoint URL (the server's base URL)")
            if request.mode not in (None, "external"):
                raise UsageError(f"--endpoint means external mode; it cannot be combined with "
                                 f"--mode {request.mode}")
            return _Selection(self._engines["external"], "external",
                              self._catalogue.get(request.engine))
        if request.engine == "simulated":
            if request.mode is not None:
                raise UsageError(f"engine 'simulated' has no {request.mode} mode (it is kitt's "
                                 "own server, always run as a local process)")
            return _Selection(self._engines["simulated"], "simulated", None)
        spec = self._catalogue.get(request.engine)
        if spec is None:
            raise UsageError(
                f"unknown engine {request.engine!r}: kitt can run "
                f"{', '.join(e for e in self.known_engines() if e != 'external')}; "
                "for a server that is already running use -e external --endpoint URL"
            )
        mode = request.mode or spec.default_mode
        if mode not in spec.modes:
            raise UsageError(f"engine {spec.name!r} has no {mode} mode (it has: "
                             f"{', '.join(spec.modes)})")
        return _Selection(self._engines[mode], mode, spec)

    def run(self, request: RunRequest, progress: ProgressListener) -> RunOutcome:
        """Run the suite. Returns the outcome (its metrics say complete / interrupted / failed);
        raises KittError only for problems found before anything was started."""
        suite = self._suites.load(request.suite)
        if request.runs is not None:
            if request.runs < 1:
                raise UsageError("--runs must be >= 1")
            suite = suite.with_repetitions(request.runs)
        selection = self._select_engine(request)
        engine, mode, spec = selection.engine, selection.mode, selection.spec
        for flag, value in (("--image", request.image), ("--gpus", request.gpus)):
            if value is not None and mode != "docker":
                raise UsageError(f"{flag} applies to docker mode, not to {mode} mode")
        # Before the model is fetched: no point downloading it for an engine that is absent.
        if (
            mode == "native"
            and spec is not None
            and self._admins is not None
            and self._admins["native"].availability(spec) is None
        ):
            hint = spec.native.install_hint if spec.native else ""
            raise EngineError(
                f"{spec.name} is not installed for native mode here: run `kitt engines "
                f"setup {spec.name} --mode native`" + (f" ({hint})" if hint else "")
            )
        # May fetch the model (an alias): after every usage check, before anything starts.
        resolved = None
        if mode in ("docker", "native"):
            resolved = self._models.resolve(request.model, progress.note)
        hardware: HardwareInfo = self._hardware.probe()
        started_at = _utc_now()
        run_id = f"{started_at.replace(':', '').replace('-', '')}-{secrets.token_hex(3)}"
        launch = EngineLaunch(
            engine=request.engine,
            model=request.model,
            mode=mode,
            run_id=run_id,
            log_dir=request.output_dir,
            startup_timeout_s=request.startup_timeout_s,
            endpoint=request.endpoint,
            image=request.image,
            engine_args=request.engine_args,
            spec=spec if mode in ("docker", "native") else None,
            resolved_model=resolved,
            gpus=request.gpus,
            teardown=request.teardown,
        )
        forces_length = spec is None or spec.fixed_length != "unsupported"
        if not forces_length and spec is not None:
            progress.note(f"note: {spec.fixed_length_note}")
        session = _Session(suite=suite, ignore_eos=forces_length)
        writer = self._store.create_run(request.output_dir)
        running: RunningEngine | None = None
        try:
            with _sigterm_raises_interrupted():
                try:
                    running = engine.start(launch)
                    session.engine_info = running.info
                    progress.note(
                        f"engine {running.info.name} ready at {running.info.endpoint}"
                    )
                    asyncio.run(self._measure(request, suite, running, session, writer, progress))
                except EngineError as exc:
                    session.stop("failed", str(exc))
                except (KeyboardInterrupt, Interrupted) as exc:
                    session.stop("interrupted", _interrupt_reason(exc, session))
                finally:
                    if running is not None and request.teardown:
                        running.stop()
                    elif running is not None:
                        progress.note(f"--no-teardown: {running.detach()}")
        finally:
            engine_info = session.engine_info or EngineInfo(
                name=request.engine,
                mode=mode,
                endpoint=None if request.endpoint is None else redact_url(request.endpoint),
                image=request.image,
            )
            metrics = RunMetrics(
                run_id=run_id,
                kitt_version=kitt.__version__,
                status=session.status,
                status_reason=session.status_reason,
                started_at=started_at,
                finished_at=_utc_now(),
                model=request.model,
                engine=engine_info,
                suite=suite.name,
                seed=request.seed,
                hardware_fingerprint=hardware.fingerprint,
                scenarios=session.scenario_results(),
            )
            config = RunConfig(
                run_id=run_id,
                kitt_version=kitt.__version__,
                model=request.model,
                engine=engine_info,
                suite=suite,
                seed=request.seed,
                sampling={"temperature": 0, "stream": True, "include_usage": True},
                tokens_per_word=session.tokens_per_word,
                ci=ci_context(request.env),
            )
            writer.write_results(metrics, config, hardware)
            writer.close()
        return RunOutcome(metrics=metrics, directory=request.output_dir)

    async def _measure(
        self,
        request: RunRequest,
        suite: Suite,
        engine: RunningEngine,
        session: _Session,
        writer: RunWriter,
        progress: ProgressListener,
    ) -> None:
        with _sigterm_cancels(asyncio.current_task()) as terminated:
            try:
                session.tokens_per_word = await self._calibrate(request, engine)
                for scenario in suite.scenarios:
                    for repetition in range(1, suite.repetitions + 1):
                        failure = await self._repetition(
                            request, scenario, repetition, suite.repetitions,
                            engine, session, writer, progress,
                        )
                        if failure is not None:
                            session.stop("failed", failure)
                            return
            except asyncio.CancelledError:
                signal_name = "SIGTERM" if terminated.is_set() else "Ctrl-C (SIGINT)"
                session.stop("interrupted", _interrupt_reason(signal_name, session))

    async def _calibrate(self, request: RunRequest, engine: RunningEngine) -> float:
        """Tokens per prompt word by the engine's tokenizer; 1.0 when it has no tokenize API."""
        client = self._client_factory(
            base_url=engine.endpoint,
            model=request.model,
            pool_size=1,
            request_timeout_s=60,
            api_key=request.api_key,
        )
        async with client:
            count = await client.count_tokens(calibration_text(_CALIBRATION_WORDS))
        return count / _CALIBRATION_WORDS if count else 1.0

    async def _repetition(
        self,
        request: RunRequest,
        scenario: Scenario,
        repetition: int,
        repetitions: int,
        engine: RunningEngine,
        session: _Session,
        writer: RunWriter,
        progress: ProgressListener,
    ) -> str | None:
        """Run one repetition and add its summary to the session; returns why the engine died,
        if it did. On cancellation, the partial repetition is summarized before re-raising."""
        records: list[RequestRecord] = []

        watch = _EngineWatch(engine)

        def sink(record: RequestRecord) -> None:
            records.append(record)
            writer.append_request(record)
            watch.saw(record)
            if not record.warmup:
                session.measured += 1
            progress.request_finished(record)

        stream = f"{scenario.name}/r{repetition}"
        spec = scenario.workload
        if not session.ignore_eos:
            spec = msgspec.structs.replace(spec, ignore_eos=False)
        workload = SyntheticWorkload(
            spec,
            seed=request.seed,
            stream=stream,
            tokens_per_word=session.tokens_per_word,
        )
        warmup = SyntheticWorkload(
            spec,
            seed=request.seed,
            stream=f"{stream}/warmup",
            tokens_per_word=session.tokens_per_word,
        )
        pool_size = max(scenario.load.pool_size(), scenario.load.warmup_requests, 1)
        progress.scenario_started(scenario.name, repetition, repetitions, scenario.load.requests)
        failure: str | None = None
        complete = False
        try:
            client = self._client_factory(
                base_url=engine.endpoint,
                model=request.model,
                pool_size=pool_size,
                request_timeout_s=scenario.request_timeout_s,
                api_key=request.api_key,
            )
            async with client:
                await client.open_connections(pool_size)
                load = LoadRun(
                    client,
                    scenario=scenario.name,
                    repetition=repetition,
                    load=scenario.load,
                    workload=workload,
                    warmup=warmup,
                    seed=derive_seed(request.seed, stream, "arrivals"),
                    sink=sink,
                )
                failure = await watch.run(load.run())
                complete = failure is None
        finally:
            session.add(
                scenario.name,
                summarize(records, repetition=repetition, slo=scenario.slo, complete=complete),
            )
            progress.scenario_finished(scenario.name, repetition)
        return failure


class _EngineWatch:
    """Watches the engine while a repetition runs: polls it every _WATCH_INTERVAL_S, and at
    once when a request fails the way a dead engine makes requests fail."""

    _SUSPICIOUS = frozenset({"connection", "truncated"})

    def __init__(self, engine: RunningEngine) -> None:
        self._engine = engine
        self._poke = asyncio.Event()

    def saw(self, record: RequestRecord) -> None:
        if record.error_kind in self._SUSPICIOUS:
            self._poke.set()

    async def _watch(self) -> str:
        while (failure := self._engine.failure()) is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), _WATCH_INTERVAL_S)
            self._poke.clear()
        return failure

    async def run(self, work: Awaitable[None]) -> str | None:
        """Run `work`; if the engine dies first (or is found dead when it ends), cancel the
        work and return why, else None."""
        task = asyncio.ensure_future(work)
        watcher = asyncio.ensure_future(self._watch())
        try:
            await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (task, watcher):
                if not pending.done():
                    pending.cancel()
            await asyncio.gather(task, watcher, return_exceptions=True)
        if watcher.done() and not watcher.cancelled():
            failure: str | None = watcher.result()
        else:
            # Requests to a dead engine fail fast; the work may end before a poll sees it.
            failure = self._engine.failure()
        if failure is not None:
            return f"the engine died during the run: {failure}"
        task.result()  # re-raise whatever broke the load
        return None


def _interrupt_reason(cause: object, session: _Session) -> str:
    what = cause if isinstance(cause, str) else (
        "SIGTERM" if isinstance(cause, Interrupted) else "Ctrl-C (SIGINT)"
    )
    return f"interrupted by {what}; the {session.measured} requests measured so far are kept"


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted()


@contextlib.contextmanager
def _sigterm_raises_interrupted() -> Iterator[None]:
    """Outside the event loop, SIGTERM unwinds like Ctrl-C so that the engine is stopped and
    the results are written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _sigterm_cancels(task: asyncio.Task[object] | None) -> Iterator[threading.Event]:
    """Inside the event loop, SIGTERM cancels the measuring task, as asyncio does for SIGINT."""
    terminated = threading.Event()
    loop = asyncio.get_running_loop()

    def on_sigterm() -> None:
        terminated.set()
        if task is not None:
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        installed = True
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
        installed = False
    try:
        yield terminated
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)
            # remove_signal_handler resets SIGTERM to its default; put kitt's handler back.
            signal.signal(signal.SIGTERM, _raise_interrupted)
