"""Reading the engine catalogue shipped in the wheel (kitt/engines.toml)."""

from __future__ import annotations

from functools import cache
from importlib import resources

import msgspec

from kitt.domain.catalogue import Catalogue
from kitt.domain.errors import InstallationError


@cache
def load_catalogue() -> Catalogue:
    data = (resources.files("kitt") / "engines.toml").read_bytes()
    try:
        return msgspec.toml.decode(data, type=Catalogue)
    except msgspec.MsgspecError as exc:  # a broken wheel, not a user error
        raise InstallationError(f"kitt's engine catalogue (kitt/engines.toml) is invalid: "
                                f"{exc}") from None
