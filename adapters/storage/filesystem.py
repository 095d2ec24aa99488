"""Result files in a local directory (DESIGN §5): the ResultStore and RunWriter ports.

Layout of one run's directory (`kitt run -o DIR` writes straight into DIR):
  requests.jsonl   one RequestRecord per line, appended and flushed as the run goes
  config.json, hardware.json, summary.md, metrics.json   written at the end, atomically,
                   metrics.json last: a reader that finds it can trust the others are complete.
Readers decode straight to the domain types, tolerate unknown fields, refuse a schema_version
newer than this kitt knows, and turn every problem into a one-line ResultFileError.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import IO, TypeVar

import jinja2
import msgspec

from adapters.markdown import format_number, md_escape
from kitt.domain.errors import ResultFileError
from kitt.domain.hardware import HARDWARE_SCHEMA_VERSION, GpuInfo, HardwareInfo
from kitt.domain.metrics import AggregateValue
from kitt.domain.records import RequestRecord
from kitt.domain.results import (
    CONFIG_SCHEMA_VERSION,
    METRICS_SCHEMA_VERSION,
    RunConfig,
    RunMetrics,
)
from kitt.domain.stats import Stats

METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.json"
HARDWARE_FILE = "hardware.json"
SUMMARY_FILE = "summary.md"
REQUESTS_FILE = "requests.jsonl"
# The order write_results writes them in; metrics.json last (see the module docstring).
_FINAL_FILES = (CONFIG_FILE, HARDWARE_FILE, SUMMARY_FILE, METRICS_FILE)

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


class FilesystemRunWriter:
    """Writes one run's files into its directory. Made by FilesystemStore.create_run.

    Usable as a context manager (closes requests.jsonl on exit). Not thread-safe: the benchmark
    calls it from its event loop only.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._encoder = msgspec.json.Encoder()
        self._line = bytearray()
        path = directory / REQUESTS_FILE
        try:
            # "wb" truncates an earlier run's log, whose lines would otherwise mix with ours.
            self._requests: IO[bytes] | None = path.open("wb")
        except OSError as exc:
            raise _io_error("cannot write", path, exc) from exc

    @property
    def directory(self) -> Path:
        return self._directory

    def append_request(self, record: RequestRecord) -> None:
        """Append one line to requests.jsonl and hand it to the OS at once, so that a crash of
        kitt loses no finished request. No fsync per line: this runs on the benchmark's event
        loop, and surviving a power loss is not worth stalling it."""
        if self._requests is None:
            raise RuntimeError("append_request() after close()")
        self._encoder.encode_into(record, self._line)
        self._line += b"\n"
        try:
            self._requests.write(self._line)
            self._requests.flush()
        except OSError as exc:
            raise _io_error("cannot write", self._directory / REQUESTS_FILE, exc) from exc

    def write_results(self, metrics: RunMetrics, config: RunConfig, hardware: HardwareInfo) -> None:
        """Atomically write config.json, hardware.json, summary.md and, last, metrics.json.
        May be called again (say, after an interruption) to replace them."""
        # Render everything before touching the disk: a failing template leaves no partial set.
        contents = {
            CONFIG_FILE: _pretty_json(config),
            HARDWARE_FILE: _pretty_json(hardware),
            SUMMARY_FILE: render_summary(metrics, config, hardware).encode(),
            METRICS_FILE: _pretty_json(metrics),
        }
        # requests.jsonl is durable before metrics.json says the run is there.
        self._sync_requests()
        for name in _FINAL_FILES:
            _write_atomically(self._directory / name, contents[name])
        _sync_directory(self._directory)

    def close(self) -> None:
        """Flush and close requests.jsonl. Safe to call twice."""
        if self._requests is None:
            return
        try:
            self._sync_requests()
        finally:
            self._requests.close()
            self._requests = None

    def __enter__(self) -> FilesystemRunWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _sync_requests(self) -> None:
        if self._requests is None:
            return
        try:
            self._requests.flush()
            os.fsync(self._requests.fileno())
        except OSError as exc:
            raise _io_error("cannot write", self._directory / REQUESTS_FILE, exc) from exc


class FilesystemStore:
    """Result directories on the local filesystem: writes runs, reads and finds them."""

    def create_run(self, directory: Path) -> FilesystemRunWriter:
        """Create `directory` if needed and remove an earlier run's files there, metrics.json
        first, so that nothing of the old run can pass for the new one's results."""
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for name in reversed(_FINAL_FILES):
                (directory / name).unlink(missing_ok=True)
                # Temp files of a writer that crashed between creating and renaming them.
                for leftover in directory.glob(f".{name}.*.tmp"):
                    leftover.unlink(missing_ok=True)
        except OSError as exc:
            raise _io_error("cannot prepare results directory", directory, exc) from exc
        return FilesystemRunWriter(directory)

    def load_metrics(self, directory: Path) -> RunMetrics:
        """Read and validate DIR/metrics.json."""
        return _load_json(directory / METRICS_FILE, _METRICS_DECODER, METRICS_SCHEMA_VERSION)

    def load_config(self, directory: Path) -> RunConfig:
        """Read and validate DIR/config.json."""
        return _load_json(directory / CONFIG_FILE, _CONFIG_DECODER, CONFIG_SCHEMA_VERSION)

    def load_hardware(self, directory: Path) -> HardwareInfo:
        """Read and validate DIR/hardware.json."""
        return _load_json(directory / HARDWARE_FILE, _HARDWARE_DECODER, HARDWARE_SCHEMA_VERSION)

    def load_requests(
        self, directory: Path, *, on_warning: Callable[[str], None] | None = None
    ) -> Iterator[RequestRecord]:
        """The records of DIR/requests.jsonl, streamed (the file can be large), also while the
        run is still writing it.

        A missing file raises at once. A malformed line raises ResultFileError with its line
        number, except an incomplete last line (kitt stopped while writing it, or is writing it
        now): that one is skipped and reported through `on_warning` (default: logged).
        """
        path = directory / REQUESTS_FILE
        try:
            file = path.open("rb")
        except OSError as exc:
            raise _read_error(path, exc) from exc
        return _iter_requests(path, file, on_warning or _log.warning)

    def find_runs(self, directory: Path) -> list[Path]:
        """Every directory at or below `directory` holding a metrics.json, sorted; [] when
        `directory` does not exist (callers decide whether that is an error). Symlinked
        directories are not followed, so a link loop cannot hang the search."""
        if not directory.is_dir():
            return []
        return sorted(Path(root) for root, _, files in os.walk(directory) if METRICS_FILE in files)


# --- writing ------------------------------------------------------------------------------------


def _pretty_json(value: msgspec.Struct) -> bytes:
    return msgspec.json.format(msgspec.json.encode(value), indent=2) + b"\n"


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temp file in the same directory (same filesystem, so the rename is atomic),
    fsync it, then rename it over `path`: readers see the old file or the new one, never half."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        # Not tempfile.mkstemp: its 0600 mode would make result files unreadable to others
        # (CI artifact uploaders, other users); 0666 lets the umask decide, as for any file.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        temp.replace(path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise _io_error("cannot write", path, exc) from exc


def _sync_directory(directory: Path) -> None:
    """Make the renames durable. POSIX only: Windows cannot open a directory for fsync."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise _io_error("cannot write", directory, exc) from exc


def _io_error(action: str, path: Path, exc: OSError) -> ResultFileError:
    return ResultFileError(f"{action} {path}: {exc.strerror or exc}")


# --- reading ------------------------------------------------------------------------------------


class _Versioned(msgspec.Struct):
    """Decoded first, so that a newer file is refused by its version rather than by whatever
    field happens to differ."""

    schema_version: int


_VERSION_DECODER = msgspec.json.Decoder(_Versioned)
_METRICS_DECODER = msgspec.json.Decoder(RunMetrics)
_CONFIG_DECODER = msgspec.json.Decoder(RunConfig)
_HARDWARE_DECODER = msgspec.json.Decoder(HardwareInfo)
_REQUEST_DECODER = msgspec.json.Decoder(RequestRecord)


def _load_json(path: Path, decoder: msgspec.json.Decoder[_T], known_version: int) -> _T:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _read_error(path, exc) from exc
    try:
        version = _VERSION_DECODER.decode(data).schema_version
        if version > known_version:
            raise ResultFileError(
                f"{path} was written by a newer kitt (schema_version {version}; this kitt "
                f"reads up to {known_version}): upgrade kitt"
            )
        if version < 1:
            raise ResultFileError(f"{path}: schema_version {version} is not valid (>= 1)")
        return decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise _decode_error(str(path), exc) from exc


def _iter_requests(
    path: Path, file: IO[bytes], warn: Callable[[str], None]
) -> Iterator[RequestRecord]:
    with file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                yield _REQUEST_DECODER.decode(line)
            except msgspec.DecodeError as exc:
                # Only the last line can lack its newline: one cut off mid-write.
                if not line.endswith(b"\n"):
                    warn(
                        f"{path}: skipped incomplete line {number} (the run stopped, or was "
                        "still running, while it was being written)"
                    )
                    return
                raise _decode_error(f"{path}, line {number}", exc) from exc


def _read_error(path: Path, exc: OSError) -> ResultFileError:
    if isinstance(exc, FileNotFoundError):
        where = "" if path.parent.is_dir() else f"; {path.parent} does not exist"
        return ResultFileError(
            f"{path} not found{where} (`kitt run -o DIR` writes {path.name} into DIR)"
        )
    return _io_error("cannot read", path, exc)


def _decode_error(where: str, exc: msgspec.DecodeError) -> ResultFileError:
    """One line: `<file>: <what>, at <field path>`. msgspec says `<What> - at `$.a[0].b``,
    and nothing after the message for the top-level object."""
    text = " ".join(str(exc).split())
    if isinstance(exc, msgspec.ValidationError):
        what, found, field = text.rpartition(" - at `")
        if not found:
            what, field = text, "$"
        return ResultFileError(f"{where}: {_lower_first(what)}, at {field.rstrip('`')}")
    return ResultFileError(f"{where}: not valid JSON ({_lower_first(text)})")


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


# --- summary.md -------------------------------------------------------------------------------


def _finalize(value: object) -> str:
    """Applied to every `{{ }}` of the template: values from the files cannot forget escaping."""
    return "–" if value is None else md_escape(value)


def _p50_p99(stats: Stats | None) -> str:
    return "–" if stats is None else f"{format_number(stats.p50)} / {format_number(stats.p99)}"


def _agg_median(aggregate: Mapping[str, AggregateValue], metric: str) -> str:
    value = aggregate.get(metric)
    return "–" if value is None else format_number(value.median)


def _agg_interval(aggregate: Mapping[str, AggregateValue], metric: str) -> str:
    value = aggregate.get(metric)
    if value is None or value.ci95_low is None or value.ci95_high is None:
        return "–"
    return f"{format_number(value.ci95_low)}–{format_number(value.ci95_high)}"


def _gpu_groups(gpus: list[GpuInfo]) -> list[tuple[int, str, float]]:
    """(count, name, GiB) per model, in index order of first appearance."""
    groups: dict[tuple[str, int], int] = {}
    for gpu in gpus:
        key = (gpu.name, gpu.memory_bytes)
        groups[key] = groups.get(key, 0) + 1
    return [(count, name, memory / 2**30) for (name, memory), count in groups.items()]


def _duration_s(metrics: RunMetrics) -> float | None:
    try:
        start = datetime.fromisoformat(metrics.started_at)
        end = datetime.fromisoformat(metrics.finished_at)
        return (end - start).total_seconds()
    except (ValueError, TypeError):  # unparsable or naive/aware mix: show the times only
        return None


@cache
def _summary_template() -> jinja2.Template:
    env = jinja2.Environment(
        # PackageLoader finds the template inside an installed wheel as well as in a checkout.
        loader=jinja2.PackageLoader("kitt", "templates"),
        autoescape=False,  # Markdown, not HTML: _finalize escapes for Markdown and HTML both
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(num=format_number, p50_p99=_p50_p99)
    env.globals.update(agg_median=_agg_median, agg_interval=_agg_interval, gpu_groups=_gpu_groups)
    return env.get_template("summary.md.j2")


def render_summary(metrics: RunMetrics, config: RunConfig, hardware: HardwareInfo) -> str:
    """summary.md: the run in Markdown, every value from the results escaped."""
    return _summary_template().render(
        m=metrics, config=config, hw=hardware, duration_s=_duration_s(metrics)
    )
