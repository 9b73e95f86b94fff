"""The FIFO queue of callers waiting for a rate-limit slot, shared by the local and the Redis limiter."""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable

import anyio

from ._rate import Rate

__all__ = ["WaitNotice", "Waiter", "WaiterQueue"]


class Waiter:
    """One caller in a :class:`WaiterQueue`; its event is set when it should look again."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = anyio.Event()

    def rearm(self) -> anyio.Event:
        """A fresh event to wait on: call it before looking, so a wake-up while looking is not lost."""
        self.event = anyio.Event()
        return self.event


class WaiterQueue:
    """Callers waiting for a slot, first in, first out.

    Only the head may take a slot. Whoever may have freed one (an answer, new rates) calls
    :meth:`wake_head`; a waiter that leaves (granted, cancelled, timed out) calls :meth:`leave`,
    which wakes the next one if it was at the head, so a cancelled waiter takes nothing.
    """

    __slots__ = ("_queue",)

    def __init__(self) -> None:
        self._queue: deque[Waiter] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def join(self) -> Waiter:
        """Queue a new waiter at the back."""
        me = Waiter()
        self._queue.append(me)
        return me

    def is_head(self, me: Waiter) -> bool:
        """Whether ``me`` is first in line."""
        return bool(self._queue) and self._queue[0] is me

    def wake_head(self) -> None:
        """Let the first waiter look again."""
        if self._queue:
            self._queue[0].event.set()

    def leave(self, me: Waiter) -> None:
        """Take ``me`` out of the queue (a no-op if already out); the next in line looks again if ``me`` was first."""
        was_head = self.is_head(me)
        with contextlib.suppress(ValueError):
            self._queue.remove(me)
        if was_head:
            self.wake_head()


class WaitNotice:
    """Calls ``on_wait(seconds, rate)`` once: the first time a known wait is longer than ``notice`` seconds.

    ``rate`` is the window holding the caller back longest (None: a 429 pause). A wait only an
    answer in flight can end (``seconds`` None) is not reported until that answer says how long it is.
    """

    __slots__ = ("_notice", "_on_wait")

    def __init__(self, on_wait: Callable[[float, Rate | None], None] | None, notice: float) -> None:
        self._on_wait = on_wait
        self._notice = notice

    def __call__(self, seconds: float | None, rate: Rate | None) -> None:
        if self._on_wait is not None and seconds is not None and seconds > self._notice:
            on_wait, self._on_wait = self._on_wait, None
            on_wait(seconds, rate)
