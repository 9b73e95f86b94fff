"""Rates and their grammar: :class:`Rate`, :func:`parse_limits` (``"5/minute,120/day"``), and how keys are named."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

from .._errors import ConfigurationError

__all__ = ["Rate", "account_digest", "key_digest", "parse_limits"]

_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
}
_SPEC_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*([a-z]*)\s*$")


@dataclass(frozen=True, order=True)
class Rate:
    """At most ``limit`` requests in any ``period`` seconds."""

    limit: int
    period: float

    def __post_init__(self) -> None:
        if self.limit < 1 or not self.period > 0 or not math.isfinite(self.period):
            raise ConfigurationError(f"a rate needs limit >= 1 and a period > 0, got {self}")

    def __str__(self) -> str:
        return f"{self.limit}/{self.period:g}s"

    def label(self) -> str:
        """The rate as people write it: ``1/minute``, ``120/day``, ``30/2s`` (``parse_limits`` reads it back)."""
        for name, short, seconds in (("day", "d", 86400.0), ("hour", "h", 3600.0), ("minute", "m", 60.0)):
            n = self.period / seconds
            if n >= 1 and math.isclose(n, round(n), rel_tol=1e-9):
                return f"{self.limit}/{name}" if round(n) == 1 else f"{self.limit}/{round(n)}{short}"
        return f"{self.limit}/second" if math.isclose(self.period, 1.0) else f"{self.limit}/{self.period:.6g}s"

    def scaled(self, time_scale: float) -> Rate:
        """The same rate on a clock that runs ``time_scale`` times faster."""
        return Rate(self.limit, self.period / time_scale)


def parse_limits(spec: str) -> tuple[Rate, ...]:
    """Parse ``"5/minute,120/day"``, ``"30/2s"`` or ``"10/s"`` into rates.

    Raises :class:`ConfigurationError` naming the bad part.
    """
    rates: list[Rate] = []
    for part in spec.split(","):
        if not part.strip():
            continue
        m = _SPEC_RE.match(part.lower())
        unit = m.group(3) if m else ""
        if unit.endswith("s") and unit not in _UNITS:
            unit = unit[:-1]
        if not m or unit not in _UNITS:
            raise ConfigurationError(
                f"bad limit {part.strip()!r}: expected N/PERIOD such as '5/minute', '120/day' or '30/2s'"
            )
        count = float(m.group(2)) if m.group(2) else 1.0
        if count <= 0:
            raise ConfigurationError(f"bad limit {part.strip()!r}: the period must be > 0")
        rates.append(Rate(int(m.group(1)), count * _UNITS[unit]))
    if not rates:
        raise ConfigurationError(f"bad limit {spec!r}: no rate given")
    return tuple(sorted(rates, key=lambda r: r.period))


def key_digest(key: str | None) -> str:
    """The name a key is kept under (files, Redis): a hash, never the key itself."""
    return hashlib.sha256((key or "anonymous").encode()).hexdigest()[:16]


def account_digest(label: str) -> str:
    """The name an account's shared limits are kept under: a hash of its label (never a key's hash)."""
    return hashlib.sha256(b"\0account\0" + label.encode()).hexdigest()[:16]
