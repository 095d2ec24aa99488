"""Errors a user can act on.

Every expected failure is a `KittError` whose message says what failed, where (file, field, URL)
and what to do. The CLI turns them into one line on stderr and an exit code (kitt/cli/exit.py);
tracebacks are for unexpected failures only (or with KITT_DEBUG=1).
"""

from __future__ import annotations


class KittError(Exception):
    """Base class of every error kitt reports to a user without a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(KittError):
    """The command line asked for something that cannot be done (exit code 2)."""


class SuiteError(KittError):
    """A suite file is missing, malformed or inconsistent."""


class ResultFileError(KittError):
    """A result file is missing, malformed, or written by a newer kitt."""


class EngineError(KittError):
    """An engine could not be started, reached, or died."""


class BenchmarkFailed(KittError):
    """The benchmark ran but did not meet its pass criteria."""


class InstallationError(KittError):
    """kitt itself is installed wrongly (for example a foreign `adapters` package shadows ours)."""


class ForgeError(KittError):
    """A forge (GitHub, GitLab, Gitea) refused or failed a request.

    The message names the forge, the method and URL path (never the token or the query), the
    status, the forge's own reason and what to do. `status` is None when no answer came back.
    """

    def __init__(
        self,
        message: str,
        *,
        forge: str,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.forge = forge
        self.method = method
        self.path = path
        self.status = status
