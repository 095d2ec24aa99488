"""Finding and reading suites: built-in ones shipped in the wheel, or a user's TOML file."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import msgspec

from kitt.domain.errors import SuiteError
from kitt.domain.suite import Suite

_BUILTIN_PACKAGE = "kitt.suites"


def parse_suite(data: bytes, source: str) -> Suite:
    """Decode and validate a suite; errors name the source and the offending key or field."""
    try:
        return msgspec.toml.decode(data, type=Suite)
    except msgspec.ValidationError as exc:
        raise SuiteError(f"suite file {source}: {_readable(str(exc))}") from None
    except msgspec.DecodeError as exc:
        raise SuiteError(f"suite file {source}: not valid TOML: {exc}") from None


def _readable(message: str) -> str:
    # msgspec says "Object contains unknown field `x` - at `$.scenarios[0].load`"; say "key"
    # (the word of TOML) and drop the JSON-path dollar.
    message = message.replace("Object contains unknown field", "unknown key")
    message = message.replace("Object missing required field", "missing key")
    return re.sub(r" - at `\$\.?([^`]*)`", lambda m: f" (at `{m[1]}`)" if m[1] else "", message)


class SuiteCatalog:
    """Built-in suites by name, or any suite file by path."""

    def names(self) -> list[str]:
        files = resources.files(_BUILTIN_PACKAGE).iterdir()
        return sorted(f.name.removesuffix(".toml") for f in files if f.name.endswith(".toml"))

    def load(self, name_or_path: str) -> Suite:
        data, source = self._read(name_or_path)
        return parse_suite(data, source)

    def text(self, name_or_path: str) -> str:
        """The suite file itself, comments included (a starting point for one's own)."""
        self.load(name_or_path)  # only show what kitt would accept
        return self._read(name_or_path)[0].decode()

    def _read(self, name_or_path: str) -> tuple[bytes, str]:
        if name_or_path in self.names():
            resource = resources.files(_BUILTIN_PACKAGE) / f"{name_or_path}.toml"
            return resource.read_bytes(), f"{name_or_path}.toml (built-in)"
        path = Path(name_or_path)
        if not path.suffix and not path.exists():
            raise SuiteError(
                f"no suite named {name_or_path!r}: built-in suites are "
                f"{', '.join(self.names())}; or pass the path of a suite file (.toml)"
            )
        try:
            return path.read_bytes(), str(path)
        except OSError as exc:
            raise SuiteError(f"cannot read suite file {path}: {exc.strerror}") from None
