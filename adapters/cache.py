"""kitt's cache directory: fetched models, records of engines kitt started, engine set-ups."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """KITT_CACHE_DIR, else $XDG_CACHE_HOME/kitt, else ~/.cache/kitt (not created here)."""
    env = os.environ if env is None else env
    if explicit := env.get("KITT_CACHE_DIR"):
        return Path(explicit).expanduser()
    # The XDG spec says to ignore a relative XDG_CACHE_HOME.
    xdg = env.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "kitt"
