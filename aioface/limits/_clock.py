"""Clocks of the limiter: :class:`MonotonicClock` (real time) and :class:`FakeClock` (moves when told, for tests)."""

from __future__ import annotations

import time
from typing import Protocol

import anyio
import anyio.lowlevel

__all__ = ["Clock", "FakeClock", "MonotonicClock"]


class Clock(Protocol):
    """Time source and timed wait used by the limiter (swap in :class:`FakeClock` in tests)."""

    def now(self) -> float: ...

    async def wait(self, event: anyio.Event, timeout: float | None) -> None: ...


class MonotonicClock:
    """The real clock: ``time.monotonic`` and anyio timeouts."""

    def now(self) -> float:
        return time.monotonic()

    async def wait(self, event: anyio.Event, timeout: float | None) -> None:
        if timeout is None:
            await event.wait()
            return
        with anyio.move_on_after(max(0.0, timeout)):
            await event.wait()


class FakeClock:
    """A clock that moves only when told to: deterministic limiter tests."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, anyio.Event]] = []

    def now(self) -> float:
        return self._now

    async def wait(self, event: anyio.Event, timeout: float | None) -> None:
        if timeout is not None:
            if timeout <= 0:
                return
            self._sleepers.append((self._now + timeout, event))
        await event.wait()

    async def sleep(self, seconds: float) -> None:
        """Sleep on this clock (woken by :meth:`advance`)."""
        await self.wait(anyio.Event(), seconds)

    async def advance(self, seconds: float) -> None:
        """Let ready tasks run, move time forward, wake the sleepers that are due and let them run."""
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        self._now += seconds
        due = [s for s in self._sleepers if s[0] <= self._now]
        self._sleepers = [s for s in self._sleepers if s[0] > self._now]
        for _, ev in due:
            ev.set()
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
