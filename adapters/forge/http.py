"""The HTTP plumbing the forge adapters share: one request helper with bounded retries, and
errors a user can act on.

Retried: 5xx (except 501), 429, GitHub's rate limits (a 403 saying "rate limit", or carrying
Retry-After or `x-ratelimit-remaining: 0`) and lost connections. The wait is the forge's own
(Retry-After in seconds or as an HTTP date; else the rate-limit reset time; else one minute for a
GitHub secondary limit, as GitHub asks), otherwise exponential backoff with jitter. kitt never
sleeps past `RetryPolicy.max_wait_s` in one go nor `total_s` in all: when the forge asks for
longer, kitt gives up at once and says when to try again, instead of sleeping into a known failure.

A POST that failed without a clear refusal (5xx, a dropped connection) may still have taken
effect: GitHub is known to create the comment and answer 502. Before repeating such a POST the
caller's `already_done` check runs, so a retry never duplicates a comment.

Tokens live only in the request headers: never in a URL, a message, a log line or a repr.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import msgspec

from kitt import __version__
from kitt.domain.errors import ForgeError

USER_AGENT = f"kitt-bench/{__version__} (LLM benchmark reports; python-httpx)"
_log = logging.getLogger("kitt.forge")
T = TypeVar("T")

Page = tuple[str, "Mapping[str, str | int] | None"]
"""A page to GET: a target (path or absolute URL) and its query parameters."""
Advice = Callable[[int, str], "str | None"]
"""(status, the forge's reason) -> what the user should do, or None for the generic advice."""


class ForgeComment(msgspec.Struct, frozen=True):
    """A comment (GitHub, Gitea) or note (GitLab) kitt posted: the PostedComment of the port."""

    id: str
    url: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """How long kitt keeps trying one request."""

    attempts: int = 5
    base_delay_s: float = 1.0
    # The longest single wait kitt accepts; a forge asking for more gets a clear error instead.
    max_wait_s: float = 60.0
    # All waits of one request together.
    total_s: float = 180.0


_GENERIC_ADVICE = {
    400: "the forge rejected the request (for a comment: the body may be too long)",
    401: "the token was rejected: it is invalid, expired or revoked",
    403: "the token is not allowed to do this",
    404: "the repository or pull request does not exist, or the token cannot see it",
    409: "the forge reported a conflict; re-run the job",
    422: "the forge rejected the comment (for example a body over its length limit)",
    429: "the forge is rate limiting kitt; re-run the job later",
}


class ForgeHttp:
    """Requests to one forge's API: base URL, headers, retries, error messages.

    `auth` holds the authentication header(s); `secrets` are strings scrubbed from anything the
    forge echoes back. `client` may be shared; one made here is closed by close().
    """

    def __init__(
        self,
        *,
        forge: str,
        api_url: str,
        auth: Mapping[str, str],
        secrets: Sequence[str],
        headers: Mapping[str, str] | None = None,
        advice: Advice | None = None,
        client: httpx.Client | None = None,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        policy: RetryPolicy | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.forge = forge
        self.api_url = api_url.rstrip("/")
        origin = urlsplit(self.api_url)
        if origin.scheme not in ("http", "https") or not origin.netloc:
            raise ForgeError(
                f"{forge}: the API URL {self.api_url!r} is not an http(s) URL; pass --api-url "
                "like https://api.github.com, https://gitlab.example.com/api/v4 or "
                "https://gitea.example.com/api/v1",
                forge=forge,
            )
        self._origin = (origin.scheme, origin.netloc)
        # Headers go with each request, not into the client: httpx's repr of a client's
        # headers masks only Authorization, not GitLab's PRIVATE-TOKEN.
        self._headers = {"User-Agent": USER_AGENT, **(headers or {}), **auth}
        self._secrets = [s for s in secrets if s]
        self._advice = advice or (lambda status, reason: None)
        self._own_client = client is None
        # trust_env stays on: CI runners reach forges through the proxies they configure.
        self._client = client or httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0))
        self._sleep = sleep
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._jitter = jitter

    def __repr__(self) -> str:
        return f"ForgeHttp(forge={self.forge!r}, api_url={self.api_url!r})"

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def request(
        self,
        method: str,
        target: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        tolerate: Sequence[int] = (),
    ) -> httpx.Response:
        """Send `method` to `target` (a path below the API URL, or an absolute URL on the same
        origin, e.g. a pagination link) with retries. Returns a 2xx response or one whose status
        is in `tolerate`; raises ForgeError otherwise."""
        response = self._exchange(method, target, params, json, tolerate, already_done=None)
        assert response is not None  # only `already_done` can end an exchange without one
        return response

    def create(
        self,
        target: str,
        json: Any,
        *,
        parse: Callable[[httpx.Response], T],
        already_done: Callable[[], T | None],
    ) -> T:
        """POST something that must not be created twice. After an ambiguous failure (5xx,
        dropped connection) `already_done()` looks for what the POST would have made; when it
        finds it, that is returned instead of POSTing again."""
        found: list[T] = []

        def check() -> bool:
            hit = already_done()
            if hit is not None:
                found.append(hit)
            return hit is not None

        response = self._exchange("POST", target, None, json, (), already_done=check)
        return found[0] if response is None else parse(response)

    def pages(
        self,
        target: str,
        params: Mapping[str, str | int] | None,
        follow: Callable[[httpx.Response], Page | None] | None = None,
    ) -> Iterator[httpx.Response]:
        """GET every page of a list: the next one is `follow(response)` (target, params), by
        default the Link header's rel="next". A page seen twice ends the walk, so a server
        that links in a circle cannot keep kitt busy forever."""
        seen: set[tuple[str, str]] = set()
        page: Page | None = (target, params)
        while page is not None:
            key = (page[0], repr(sorted((page[1] or {}).items())))
            if key in seen:
                return
            seen.add(key)
            response = self.request("GET", page[0], params=page[1])
            yield response
            if follow is not None:
                page = follow(response)
            else:
                link = self.next_link(response)
                page = None if link is None else (link, None)

    def next_link(self, response: httpx.Response) -> str | None:
        """The Link header's rel="next" URL, if it stays on the API's origin (the token must
        never travel elsewhere)."""
        url = response.links.get("next", {}).get("url")
        if not url:
            return None
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != self._origin:
            raise ForgeError(
                f"{self.forge}: the next page link points to another host ({parts.netloc}); "
                "kitt does not send the token there. Check --api-url.",
                forge=self.forge, path=parts.path,
            )
        return url

    def decode(self, response: httpx.Response, type_: type[T]) -> T:
        """The JSON body as `type_`, or a ForgeError naming the request."""
        try:
            return msgspec.json.decode(response.content, type=type_)
        except msgspec.DecodeError as exc:
            method, path = response.request.method, response.request.url.path
            raise ForgeError(
                f"{self.forge}: {method} {path} answered {response.status_code} with a body kitt "
                f"does not understand ({self._scrub(str(exc))}); is --api-url the forge's API "
                "root?",
                forge=self.forge, method=method, path=path, status=response.status_code,
            ) from None

    # --- internals ------------------------------------------------------------------------

    def _url(self, target: str) -> str:
        if target.startswith(("http://", "https://")):
            return target
        return self.api_url + target

    def _exchange(
        self,
        method: str,
        target: str,
        params: Mapping[str, str | int] | None,
        json: Any,
        tolerate: Sequence[int],
        already_done: Callable[[], bool] | None,
    ) -> httpx.Response | None:
        url = self._url(target)
        path = urlsplit(url).path  # messages name the path only: a query may carry anything
        policy, waited = self._policy, 0.0
        for attempt in range(1, policy.attempts + 1):
            response: httpx.Response | None = None
            try:
                response = self._client.request(
                    method, url, params=params, json=json, headers=self._headers
                )
            except httpx.TransportError as exc:
                failure = f"got no answer ({type(exc).__name__}: {self._scrub(str(exc)) or '-'})"
                # A request that never connected cannot have taken effect.
                ambiguous = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                wait = self._backoff(attempt)
            else:
                if response.is_success:
                    return response
                # A rate limit is retried even where its status (a 403) is otherwise tolerated.
                told = self._retry_wait(response, attempt)
                if told is None:
                    if response.status_code in tolerate:
                        return response
                    raise self._error(method, path, response)
                wait, ambiguous = told, response.status_code >= 500
                failure = f"answered {response.status_code}"
            if attempt == policy.attempts:
                raise self._gave_up(method, path, response, failure, f"after {attempt} attempts")
            if wait > policy.max_wait_s or waited + wait > policy.total_s:
                raise self._gave_up(
                    method, path, response, failure,
                    f"and asks to wait {wait:.0f} s, longer than kitt waits "
                    f"({policy.max_wait_s:.0f} s at a time, {policy.total_s:.0f} s in all)",
                )
            _log.warning(
                "%s: %s %s %s; retrying in %.1f s (attempt %d of %d)",
                self.forge, method, path, failure, wait, attempt + 1, policy.attempts,
            )
            self._sleep(wait)
            waited += wait
            if ambiguous and method == "POST" and already_done is not None and already_done():
                return None
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _retry_wait(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None when the failure is not worth a retry."""
        status, headers = response.status_code, response.headers
        if status == 403:
            text = response.text.lower()
            secondary = "secondary rate limit" in text
            if not (secondary or "rate limit" in text or "retry-after" in headers
                    or headers.get("x-ratelimit-remaining") == "0"):
                return None
            told = self._server_wait(headers)
            if told is not None:
                return told
            # GitHub: "wait for at least one minute" when it names no time.
            return 60.0 if secondary else self._backoff(attempt)
        if status == 429 or (status >= 500 and status != 501):
            told = self._server_wait(headers)
            return self._backoff(attempt) if told is None else told
        return None

    def _server_wait(self, headers: httpx.Headers) -> float | None:
        """The forge's own answer to "how long": Retry-After, else the rate-limit reset."""
        retry_after = headers.get("retry-after")
        if retry_after:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                try:
                    when = email.utils.parsedate_to_datetime(retry_after)
                except (TypeError, ValueError):
                    when = None
                if when is not None and when.tzinfo is not None:
                    return max(0.0, when.timestamp() - time.time())
        remaining = headers.get("x-ratelimit-remaining", headers.get("ratelimit-remaining"))
        reset = headers.get("x-ratelimit-reset", headers.get("ratelimit-reset"))
        if remaining == "0" and reset and reset.isdigit():
            return max(0.0, int(reset) - time.time())
        return None

    def _backoff(self, attempt: int) -> float:
        # "Equal jitter": half fixed, half random, so concurrent matrix jobs spread out.
        delay = min(self._policy.max_wait_s, self._policy.base_delay_s * 2 ** (attempt - 1))
        return delay / 2 + self._jitter() * delay / 2

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _reason(self, response: httpx.Response) -> str:
        """The forge's own error message: `message` plus any `errors` (GitHub, GitLab, Gitea
        all answer JSON like that); else a short text body; never an HTML error page."""
        try:
            data = response.json()
        except ValueError:
            text = " ".join(response.text.split())
            reason = text[:300] if text and not text.startswith("<") else response.reason_phrase
        else:
            parts: list[str] = []
            if isinstance(data, dict):
                if data.get("message"):
                    parts.append(str(data["message"]))
                for error in data.get("errors") or []:
                    if isinstance(error, dict):
                        detail = error.get("message") or " ".join(
                            str(error[k]) for k in ("field", "code") if error.get(k)
                        )
                        if detail:
                            parts.append(str(detail))
                    elif error:
                        parts.append(str(error))
                if not parts and data.get("error"):  # GitLab's OAuth-style errors
                    parts.append(str(data["error"]))
            reason = "; ".join(parts) or response.reason_phrase
        return self._scrub(reason)

    def _error(self, method: str, path: str, response: httpx.Response) -> ForgeError:
        status, reason = response.status_code, self._reason(response)
        advice = self._advice(status, reason) or _GENERIC_ADVICE.get(status) or (
            "the forge failed; re-run the job later" if status >= 500
            else "see the forge's message above"
        )
        return ForgeError(
            f"{self.forge} API: {method} {path} answered {status} ({reason}): {advice}",
            forge=self.forge, method=method, path=path, status=status,
        )

    def _gave_up(
        self, method: str, path: str, response: httpx.Response | None, failure: str, why: str
    ) -> ForgeError:
        status = response.status_code if response is not None else None
        reason = f" ({self._reason(response)})" if response is not None else ""
        advice = (
            "check --api-url and the runner's network" if response is None
            else "the forge is rate limiting kitt; re-run the job later" if status in (403, 429)
            else "the forge is failing; re-run the job later"
        )
        return ForgeError(
            f"{self.forge} API: {method} {path} {failure}{reason} {why}; {advice}",
            forge=self.forge, method=method, path=path, status=status,
        )
