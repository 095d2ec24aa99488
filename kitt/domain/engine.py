"""What a service asks of an engine adapter: start this, give me an endpoint."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import msgspec

from kitt.domain.catalogue import EngineSpec
from kitt.domain.results import EngineMode


class ResolvedModel(msgspec.Struct, frozen=True, kw_only=True):
    """What `-m` named, made concrete: a local file or directory, or a Hugging Face id."""

    # -m as the user gave it; also the name requests use (the engine serves it under it).
    name: str
    # A local file or directory holding the weights (an alias is resolved to one), or None
    # for a Hugging Face id that the engine downloads itself (through the mounted HF cache).
    path: Path | None = None
    hub_id: str | None = None

    @property
    def reference(self) -> str:
        """What the engine's command line loads."""
        return str(self.path) if self.path is not None else (self.hub_id or self.name)


class EngineLaunch(msgspec.Struct, frozen=True, kw_only=True):
    """A request to make an engine serve `model` and answer on an OpenAI-compatible endpoint."""

    engine: str
    # The name requests use (kitt's -m as given).
    model: str
    mode: EngineMode
    run_id: str
    # Where the engine's own log goes (native and simulated modes).
    log_dir: Path
    # Seconds to wait for the engine to become healthy.
    startup_timeout_s: float = 600.0
    # external mode: the URL of the running server.
    endpoint: str | None = None
    # docker mode: overrides the catalogue's pinned image.
    image: str | None = None
    engine_args: tuple[str, ...] = ()
    # docker and native modes: the catalogue entry and the model to load.
    spec: EngineSpec | None = None
    resolved_model: ResolvedModel | None = None
    # docker mode: GPUs to request: None = all visible ones (none on a CPU-only host),
    # "all", or a comma-separated list of device indices/UUIDs.
    gpus: str | None = None
    # False (--no-teardown): leave the engine running after the run, and say how to stop it.
    teardown: bool = True


def redact_url(url: str) -> str:
    """`url` with any user:password@ replaced by ***@, fit for messages and result files."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    _, at, host_port = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc="***@" + host_port)) if at else url
