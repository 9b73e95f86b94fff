"""The connection gate: at most N requests hold a connection; waiters FIFO, timed ones in a heap of due times."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque


class Gate:
    """At most ``capacity`` holders; waiters are let in first come, first served, and a waiter may
    ask to come in no earlier than a time (``acquire(at=)``, ``loop.time()`` seconds).

    A timed waiter is a future in a heap of due times, woken once, when it is due *and* holds a
    place: 100,000 polls falling due together cost one timer and, as places free up, one wake
    each, instead of 100,000 timers each waking a task that builds its request only to queue here.
    A due timed waiter counts from its due time and an untimed one from when it asked: whichever
    is earlier goes first. Cancelling a waiter (a deadline) removes it; a place handed to a waiter
    cancelled before it ran is passed on.
    """

    __slots__ = ("_free", "_loop", "_seq", "_timed", "_timer", "_waiters", "capacity")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._free = capacity
        self._waiters: deque[tuple[float, asyncio.Future[None]]] = deque()  # (asked at, future)
        self._timed: list[tuple[float, int, asyncio.Future[None]]] = []  # heap of (due, seq, future)
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def free(self) -> int:
        """Places free right now."""
        return self._free

    @property
    def waiting(self) -> int:
        """Waiters, timed ones included (a cancelled one may count until its turn)."""
        return len(self._waiters) + len(self._timed)

    def try_acquire(self) -> bool:
        """Take a place now if one is free and nobody waits (timed waiters included); never waits."""
        if self._free > 0 and not self._waiters and not self._timed:
            self._free -= 1
            return True
        return False

    async def acquire(self, at: float | None = None) -> None:
        """Take a place, no earlier than ``at`` (``loop.time()``) when given. No loop turn when a
        place is free, the time has come and nobody is ahead."""
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        now = loop.time()
        if at is None or at <= now:
            if self._free > 0 and not self._waiters and not (self._timed and self._timed[0][0] <= now):
                self._free -= 1
                return
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append((now, fut))
        else:
            fut = loop.create_future()
            heapq.heappush(self._timed, (at, next(self._seq), fut))
            if self._free > 0:
                self._arm()
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # handed a place, then cancelled before it ran: pass it on
            raise

    def release(self) -> None:
        """Give a place back: to the first waiter in line, or free."""
        self._free += 1
        if self._waiters or self._timed:
            self._grant()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def _grant(self) -> None:
        waiters, timed = self._waiters, self._timed
        now = self._loop.time() if self._loop is not None else 0.0
        while self._free > 0:
            while waiters and waiters[0][1].done():
                waiters.popleft()
            while timed and timed[0][2].done():
                heapq.heappop(timed)
            due = timed and timed[0][0] <= now
            if waiters and (not due or waiters[0][0] <= timed[0][0]):
                fut = waiters.popleft()[1]
            elif due:
                fut = heapq.heappop(timed)[2]
            else:
                break
            self._free -= 1
            fut.set_result(None)
        if self._free > 0 and timed:
            self._arm()

    def _arm(self) -> None:
        """A timer for the earliest timed waiter (the one armed is kept if it is not later)."""
        assert self._loop is not None
        at = self._timed[0][0]
        if self._timer is not None:
            if self._timer.when() <= at:
                return
            self._timer.cancel()
        self._timer = self._loop.call_at(at, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._grant()


__all__ = ["Gate"]
