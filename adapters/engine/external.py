"""An engine kitt does not start: any OpenAI-compatible server at `--endpoint URL`.

kitt only checks that the server answers and serves the model asked for; it does not own the
process, so it cannot tell why it went away (failure() is None) and does not stop it.
"""

from __future__ import annotations

import os
import time
from urllib.parse import urlsplit

import httpx
import msgspec

from adapters.engine.process import attempt_timeout, backoff, sleep_until_next
from kitt.domain.engine import EngineLaunch, redact_url
from kitt.domain.errors import EngineError
from kitt.domain.results import EngineInfo


class _Model(msgspec.Struct):
    id: str


class _ModelList(msgspec.Struct):
    data: list[_Model]


class _Version(msgspec.Struct):
    version: str


class ExternalRunningEngine:
    """A reachable external server. `endpoint` is the URL as given (credentials included, for
    the client); `info.endpoint` has them redacted."""

    def __init__(self, endpoint: str, info: EngineInfo) -> None:
        self._endpoint = endpoint
        self._info = info

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def info(self) -> EngineInfo:
        return self._info

    def failure(self) -> str | None:
        """kitt does not own the process: failed requests are all it can see."""
        return None

    def stop(self) -> None:
        """Nothing to stop: the server belongs to whoever started it."""

    def detach(self) -> str:
        return f"the external engine at {self._info.endpoint} was never kitt's to stop"


class ExternalEngine:
    """Reaches a running OpenAI-compatible server (Engine port, `--endpoint URL`).

    The API key, when the server wants one, is sent as a Bearer token; by default it is read
    from KITT_API_KEY or OPENAI_API_KEY, like the inference client's.
    """

    def __init__(self, *, api_key: str | None = None, request_timeout_s: float = 5.0) -> None:
        self._api_key = api_key or os.environ.get("KITT_API_KEY") or os.environ.get(
            "OPENAI_API_KEY"
        )
        self._request_timeout_s = request_timeout_s

    def start(self, launch: EngineLaunch) -> ExternalRunningEngine:
        if not launch.endpoint:
            raise EngineError(
                "the external engine needs the URL of a running OpenAI-compatible server: "
                "pass --endpoint URL (for example --endpoint http://127.0.0.1:8000)"
            )
        base = base_url(launch.endpoint)
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        # trust_env=False: a proxy from the environment must not sit between kitt and a server
        # it measures (and usually cannot reach 127.0.0.1 anyway).
        with httpx.Client(timeout=self._request_timeout_s, headers=headers,
                          trust_env=False) as client:
            served = self._served_models(client, base, launch.startup_timeout_s)
            if launch.model not in served:
                raise EngineError(
                    f"model '{launch.model}' is not served at {redact_url(base)}; it offers: "
                    f"{', '.join(served) or '(nothing)'}. Pass one of them with -m."
                )
            version = self._version(client, base)
        info = EngineInfo(name=launch.engine, mode="external", endpoint=redact_url(base),
                          version=version)
        return ExternalRunningEngine(base, info)

    def _served_models(self, client: httpx.Client, base: str, timeout_s: float) -> list[str]:
        """GET /v1/models, retried with backoff while the server is unreachable or not ready."""
        url = f"{base}/v1/models"
        shown = redact_url(url)
        deadline = time.monotonic() + timeout_s
        delays = backoff(initial_s=0.1, maximum_s=2.0)
        tries = 0
        while True:
            tries += 1
            try:
                response = client.get(
                    url, timeout=attempt_timeout(deadline, self._request_timeout_s)
                )
            except httpx.HTTPError as e:
                last = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            else:
                if response.status_code == 200:
                    try:
                        listing = msgspec.json.decode(response.content, type=_ModelList)
                    except msgspec.DecodeError as e:
                        raise EngineError(f"GET {shown} did not return an OpenAI model list "
                                          f"({e}): is {redact_url(base)} an OpenAI-compatible "
                                          "server?") from None
                    return [m.id for m in listing.data]
                if response.status_code in (401, 403):
                    raise EngineError(
                        f"GET {shown} was refused with HTTP {response.status_code}: the server "
                        "wants an API key; set KITT_API_KEY (or OPENAI_API_KEY)"
                    )
                if response.status_code == 404:
                    raise EngineError(f"GET {shown} gave HTTP 404: {redact_url(base)} does not "
                                      "look like an OpenAI-compatible server")
                last = f"HTTP {response.status_code}"  # 5xx: often still loading the model
            if not sleep_until_next(delays, deadline):
                raise EngineError(
                    f"could not reach the external engine at {redact_url(base)} within "
                    f"{timeout_s:g} s: tried GET {shown} {tries} time{'s' * (tries != 1)}, "
                    f"last {last}. Is the server running, and is --endpoint right?"
                )

    def _version(self, client: httpx.Client, base: str) -> str | None:
        """The server's version where it tells (vLLM: GET /version); None otherwise."""
        try:
            response = client.get(f"{base}/version")
            if response.status_code != 200:
                return None
            return msgspec.json.decode(response.content, type=_Version).version
        except (httpx.HTTPError, msgspec.DecodeError):
            return None  # best effort: many servers have no such endpoint


def base_url(endpoint: str) -> str:
    """The server's root URL: whitespace and trailing slashes trimmed, a trailing /v1 removed."""
    url = endpoint.strip().rstrip("/").removesuffix("/v1").rstrip("/")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EngineError(f"--endpoint {redact_url(endpoint)!r} is not an http(s) URL; "
                          "pass e.g. --endpoint http://127.0.0.1:8000")
    return url
