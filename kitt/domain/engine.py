"""What a service asks of an engine adapter: start this, give me an endpoint."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import msgspec

from kitt.domain.results import EngineMode


class EngineLaunch(msgspec.Struct, frozen=True, kw_only=True):
    """A request to make an engine serve `model` and answer on an OpenAI-compatible endpoint."""

    engine: str
    model: str
    mode: EngineMode
    run_id: str
    # Where the engine's own log goes (native and simulated modes).
    log_dir: Path
    # Seconds to wait for the engine to become healthy.
    startup_timeout_s: float = 600.0
    # external mode: the URL of the running server.
    endpoint: str | None = None
    image: str | None = None
    engine_args: tuple[str, ...] = ()


def redact_url(url: str) -> str:
    """`url` with any user:password@ replaced by ***@, fit for messages and result files."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    _, at, host_port = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc="***@" + host_port)) if at else url
