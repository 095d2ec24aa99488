"""The hexagon's walls (DESIGN §1): the pure core imports no framework and no adapter."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"click", "httpx", "docker", "pynvml", "jinja2", "dependency_injector", "adapters",
             "aiohttp", "httpx_aiohttp", "rich"}
# The domain is stdlib + msgspec only.
DOMAIN_THIRD_PARTY_ALLOWED = {"msgspec"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def core_files(package: str) -> list[Path]:
    return sorted((ROOT / "kitt" / package).rglob("*.py"))


@pytest.mark.parametrize("package", ["domain", "services"])
def test_core_imports_no_framework_and_no_adapter(package):
    files = core_files(package)
    assert files, f"no files found in kitt/{package}"
    offenders = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in imported_modules(path) & FORBIDDEN
    }
    assert not offenders


def test_domain_uses_only_the_standard_library_and_msgspec():
    import sys

    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    offenders = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in core_files("domain")
        for name in imported_modules(path) - stdlib - DOMAIN_THIRD_PARTY_ALLOWED - {"kitt"}
    }
    assert not offenders


def test_only_the_composition_root_imports_adapters():
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "kitt").rglob("*.py"))
        if "adapters" in imported_modules(path) and path.name != "container.py"
    ]
    assert offenders == []


def test_the_checker_catches_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import httpx\nfrom adapters.engine import x\n")
    assert imported_modules(bad) & FORBIDDEN == {"httpx", "adapters"}
