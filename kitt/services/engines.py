"""`kitt engines`: what each engine of the catalogue needs, setting it up, and what kitt left
running."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kitt.domain.catalogue import Catalogue, EngineSpec, Mode
from kitt.domain.errors import KittError, UsageError
from kitt.ports import EngineAdmin, EngineInstance


@dataclass(frozen=True)
class EngineRow:
    """One line of `kitt engines list`."""

    spec: EngineSpec
    # What makes each mode usable here, None when it is not set up, or why it cannot be told
    # (e.g. Docker not running), per mode the engine has.
    availability: dict[Mode, str | None]
    problems: dict[Mode, str]


class EngineService:
    def __init__(self, *, catalogue: Catalogue, admins: Mapping[Mode, EngineAdmin]) -> None:
        self._catalogue = catalogue
        self._admins = admins

    def spec(self, name: str) -> EngineSpec:
        spec = self._catalogue.get(name)
        if spec is None:
            raise UsageError(f"unknown engine {name!r}: the catalogue has "
                             f"{', '.join(self._catalogue.names)}")
        return spec

    def rows(self) -> list[EngineRow]:
        rows = []
        for spec in self._catalogue.engines:
            available: dict[Mode, str | None] = {}
            problems: dict[Mode, str] = {}
            for mode in spec.modes:
                try:
                    available[mode] = self._admins[mode].availability(spec)
                except KittError as exc:  # e.g. Docker is not running: say so in the row
                    available[mode] = None
                    problems[mode] = str(exc)
            rows.append(EngineRow(spec=spec, availability=available, problems=problems))
        return rows

    def setup(
        self, name: str, *, mode: Mode | None, image: str | None, progress: Callable[[str], None]
    ) -> str:
        spec = self.spec(name)
        chosen = mode or spec.default_mode
        if chosen not in spec.modes:
            raise UsageError(f"engine {name!r} has no {chosen} mode (it has: "
                             f"{', '.join(spec.modes)})")
        if image is not None and chosen != "docker":
            raise UsageError("--image applies to docker mode")
        return self._admins[chosen].setup(spec, image=image, progress=progress)

    def instances(
        self, engine: str | None = None
    ) -> tuple[list[tuple[Mode, EngineInstance]], dict[Mode, str]]:
        """The instances of every mode, and why a mode could not be asked (Docker down)."""
        if engine is not None:
            self.spec(engine)
        found: list[tuple[Mode, EngineInstance]] = []
        problems: dict[Mode, str] = {}
        for mode, admin in self._admins.items():
            try:
                found += [(mode, i) for i in admin.instances() if engine in (None, i.engine)]
            except KittError as exc:  # one mode down must not hide the other's leftovers
                problems[mode] = str(exc)
        return found, problems

    def cleanup(self) -> tuple[list[str], dict[Mode, str]]:
        """What was removed in every mode, and why a mode could not be cleaned up."""
        removed: list[str] = []
        problems: dict[Mode, str] = {}
        for mode, admin in self._admins.items():
            try:
                removed += admin.cleanup()
            except KittError as exc:
                problems[mode] = str(exc)
        return removed, problems
