"""The Lua scripts of the Redis store (``scripts/*.lua``, package data) and the units they count in."""

from __future__ import annotations

import functools
import math
from importlib import resources

__all__ = ["META_TTL_MS", "SCRIPT_NAMES", "lua", "us"]

#: Shared facts (a learned tier) outlive the windows: kept this long after their last use.
META_TTL_MS = 30 * 86400 * 1000

#: Every script the store registers: acquire, release, cooldown, lease renewal, putting lost state back.
SCRIPT_NAMES = ("acquire", "release", "cooldown", "renew", "restore")


@functools.cache
def lua(name: str) -> str:
    """The source of ``scripts/<name>.lua`` (what each takes and returns is at its top)."""
    return resources.files(__package__ or __name__).joinpath("scripts", f"{name}.lua").read_text(encoding="utf-8")


def us(seconds: float) -> int:
    """``seconds`` in whole microseconds, rounded up (the scripts' unit of time)."""
    return math.ceil(seconds * 1_000_000)
