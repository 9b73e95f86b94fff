"""The protocols limiters and limits stores follow: :class:`Limiter`, :class:`Slot`, :class:`LimitsStore`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from ._rate import Rate

__all__ = ["Limiter", "LimitsStore", "Slot"]


class Slot(Protocol):
    """What :meth:`Limiter.acquire` hands out (:class:`Permit` locally)."""

    def responded(self) -> None: ...

    def release(self) -> None: ...


class Limiter(Protocol):
    """The surface the core and the providers use; :class:`RateLimiter` is the local one."""

    granted: int
    throttled: int

    @property
    def rates(self) -> tuple[Rate, ...]: ...

    @property
    def effective_limits(self) -> tuple[int, ...]: ...

    @property
    def waiting(self) -> int: ...

    @property
    def in_flight(self) -> int: ...

    def set_rates(self, rates: Sequence[Rate]) -> None: ...

    def probe_first(self, on_facts: Callable[[Mapping[str, str]], None] | None = None) -> None: ...

    def cooldown(self, seconds: float) -> None: ...

    async def acquire(
        self,
        timeout: float | None = None,
        *,
        on_wait: Callable[[float, Rate | None], None] | None = None,
        notice: float = 0.0,
    ) -> Slot: ...


class LimitsStore(Protocol):
    """Where limits live: one limiter per (provider, hashed key), and small facts about each key.

    ``rates`` are the windows in force (already scaled); ``persist`` asks a local store to keep them
    on disk. ``load_meta``/``save_meta`` are what was learned about a key (its tier): a read from
    what the store holds at hand, a write that may complete in the background. ``open`` checks the
    store and fetches the facts of ``keys`` ((provider, key hash) pairs); ``aclose`` flushes, closes.
    """

    def limiter(
        self,
        provider: str,
        key_hash: str,
        rates: Sequence[Rate],
        *,
        margin: float,
        adaptive: bool,
        stamp_bound: float | None,
        persist: bool = False,
    ) -> Limiter: ...

    def load_meta(self, provider: str, key_hash: str) -> dict[str, str]: ...

    def save_meta(self, provider: str, key_hash: str, values: Mapping[str, str]) -> None: ...

    async def open(self, keys: Sequence[tuple[str, str]] = ()) -> None: ...

    async def aclose(self) -> None: ...
