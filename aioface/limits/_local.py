"""Client-side rate limits: several sliding windows at once, exact against the servers' counting.

Each window ``N/T`` allows at most N requests in ANY span of length T, counted at send time, as
Django REST framework's throttle (Face Studio) counts them. The server stamps a request somewhere
between our send and its response headers, so a slot is held from the send until ``T + margin``
after the response headers arrive. A plain token bucket with burst N and rate N/T would let up to
2N-1 requests into one window; this does not, and still reaches the full rate N/(T + latency).

Waiters are served first in, first out; a waiter that is cancelled or times out takes nothing.
A 429 pauses the whole limiter (``cooldown``) so that other callers do not hit it too.

Here: :class:`RateLimiter` (the algorithm), its :class:`Permit`, and :class:`LocalStore` (the limiters
of this process, plus files for long windows and learned facts, ``_persist``). ``RedisStore``
(``aioface.limits.redis``) shares limits between every process and host using one key.
"""

from __future__ import annotations

import math
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .._errors import ConfigurationError, LimiterTimeoutError
from ._clock import Clock, MonotonicClock
from ._eta import grant_time
from ._persist import BudgetStore, budget_file
from ._rate import Rate
from ._waiters import WaiterQueue, WaitNotice

__all__ = ["LocalStore", "Permit", "RateLimiter", "check_limiter_args"]


class _Window:
    __slots__ = ("expiries", "rate")

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self.expiries: deque[float] = deque()  # done + period + margin, non-decreasing

    def prune(self, now: float) -> None:
        while self.expiries and self.expiries[0] <= now:
            self.expiries.popleft()

    def wait(self, now: float, in_flight: int, limit: int) -> float | None:
        """0 if free now, seconds until free, or None if only an in-flight answer can free it."""
        self.prune(now)
        over = in_flight + len(self.expiries) - limit + 1
        if over <= 0:
            return 0.0
        if over > len(self.expiries):
            return None
        return self.expiries[over - 1] - now


class Permit:
    """One granted slot. Call :meth:`responded` when response headers arrive (or let release do it)."""

    __slots__ = ("_counted", "_done", "_limiter")

    def __init__(self, limiter: RateLimiter, counted: bool) -> None:
        self._limiter = limiter
        self._counted = counted  # in flight until the answer (no stamp bound)
        self._done = False

    def responded(self) -> None:
        """Mark the answer as arrived: the slot is held for one more window length from now."""
        if not self._done:
            self._done = True
            if self._counted:
                self._limiter._complete()
            else:
                self._limiter._note_success()

    release = responded


def check_limiter_args(margin: float, stamp_bound: float | None) -> None:
    """Refuse a negative margin or stamp bound (every limiter, local or shared)."""
    if margin < 0:
        raise ConfigurationError("margin must be >= 0")
    if stamp_bound is not None and stamp_bound < 0:
        raise ConfigurationError("stamp_bound must be >= 0")


class RateLimiter:
    """Several windows at once (``5/minute`` AND ``120/day``), FIFO, cancellation-safe.

    >>> limiter = RateLimiter(parse_limits("5/minute,120/day"))
    >>> permit = await limiter.acquire(timeout=30)   # doctest: +SKIP
    ... send the request; permit.responded() when headers arrive
    """

    def __init__(
        self,
        rates: Sequence[Rate],
        *,
        margin: float = 0.05,
        clock: Clock | None = None,
        store: BudgetStore | None = None,
        adaptive: bool = False,
        stamp_bound: float | None = None,
    ) -> None:
        check_limiter_args(margin, stamp_bound)
        self.margin = margin
        #: None: a slot is held until T after the answer (exact whatever the server does).
        #: A number: the server is trusted to count a request within that many seconds of its
        #: send, so the slot is held until send + stamp_bound + T, however slow the answer.
        self.stamp_bound = stamp_bound
        self._clock: Clock = clock or MonotonicClock()
        self._store = store
        self._adaptive = adaptive
        self._in_flight = 0
        self._history: deque[float] = deque()  # done times (clock), for rebuilding windows
        self._waiters = WaiterQueue()
        self._paused_until = -math.inf
        self._probe = False
        self._streak = 0
        self.granted = 0
        self.throttled = 0
        self._windows: list[_Window] = []
        self._limits: list[int] = []
        self.set_rates(rates)
        if store is not None:
            offset = time.time() - self._clock.now()
            for stamp in store.load(time.time()):
                self._history.append(stamp - offset)
            self._rebuild()

    # -- configuration -------------------------------------------------------------------
    @property
    def rates(self) -> tuple[Rate, ...]:
        """The windows in force, shortest first."""
        return tuple(w.rate for w in self._windows)

    @property
    def effective_limits(self) -> tuple[int, ...]:
        """Per-window limits in force now (lower than configured after 429s when adaptive)."""
        return tuple(self._limits)

    def set_rates(self, rates: Sequence[Rate]) -> None:
        """Change the windows live; history already spent still counts against the new ones."""
        if not rates:
            raise ConfigurationError("a limiter needs at least one rate")
        self._windows = [_Window(r) for r in sorted(rates, key=lambda r: r.period)]
        self._limits = [w.rate.limit for w in self._windows]
        self._probe = False  # rates from an answer are confirmed: no probing any more
        self._rebuild()
        self._wake_head()

    def probe_first(self, on_facts: Callable[[Mapping[str, str]], None] | None = None) -> None:
        """The rates in force are not confirmed yet (a tier assumed, or remembered from an earlier
        run): until :meth:`set_rates` applies the rates an answer named, only one request is in
        flight at a time, and never over the windows in force. The first answer then sets the
        limits for the rest, so a tier that is no longer true cannot send a burst over the real one.
        (``on_facts``: for shared limiters, which read what other processes confirmed; unused here.)
        """
        self._probe = True
        self._wake_head()

    def _rebuild(self) -> None:
        now = self._clock.now()
        longest = max(w.rate.period for w in self._windows) + self.margin
        while self._history and self._history[0] + longest <= now:
            self._history.popleft()
        for w in self._windows:
            w.expiries = deque(
                d + w.rate.period + self.margin for d in self._history if d + w.rate.period + self.margin > now
            )

    # -- feedback from answers -------------------------------------------------------------
    def cooldown(self, seconds: float) -> None:
        """Pause every caller of this limiter for ``seconds`` (after a 429)."""
        self.throttled += 1
        self._paused_until = max(self._paused_until, self._clock.now() + max(0.0, seconds))
        if self._adaptive and self._limits:
            self._limits[0] = max(1, self._limits[0] // 2)
            self._streak = 0

    def _note_success(self) -> None:
        if not self._adaptive or not self._limits:
            return
        self._streak += 1
        if self._streak >= self._limits[0] and self._limits[0] < self._windows[0].rate.limit:
            self._limits[0] += 1
            self._streak = 0

    # -- acquire/release -------------------------------------------------------------------
    def _time_until_free(self, now: float) -> float | None:
        return self._until_free(now)[0]

    def _until_free(self, now: float) -> tuple[float | None, Rate | None]:
        """Seconds until every window has a slot (None: only an answer in flight can free one), and
        the window holding it back longest (None when that is a 429 pause, or nothing holds it)."""
        worst: float = max(0.0, self._paused_until - now)
        blocker: Rate | None = None
        if self._probe and self._in_flight > 0:  # unconfirmed rates: one at a time, its answer tells
            return (None, None) if worst == 0.0 else (worst, None)
        for w, limit in zip(self._windows, self._limits, strict=True):
            t = w.wait(now, self._in_flight, limit)
            if t is None:
                return (None, w.rate) if worst == 0.0 else (worst, blocker)
            if t > worst:
                worst, blocker = t, w.rate
        return worst, blocker

    def _grant(self) -> Permit:
        self.granted += 1
        if self.stamp_bound is None or self._probe:  # a probe is in flight until its answer
            self._in_flight += 1
            return Permit(self, counted=True)
        now = self._clock.now()
        self._record(now + self.stamp_bound, now)
        return Permit(self, counted=False)

    def _record(self, stamp: float, now: float) -> None:
        """The server counted (or may count) a request at ``stamp``: hold a slot until stamp + T."""
        self._history.append(stamp)
        longest = self._windows[-1].rate.period + self.margin
        while self._history and self._history[0] + longest <= now:
            self._history.popleft()
        for w in self._windows:
            w.expiries.append(stamp + w.rate.period + self.margin)
        if self._store is not None:
            self._store.append(time.time() + (stamp - now))

    def _complete(self) -> None:
        self._in_flight -= 1
        try:
            now = self._clock.now()
            self._record(now, now)
            if self._adaptive:
                self._note_success()
        finally:
            self._wake_head()  # whatever happened above, the next waiter re-checks

    def _wake_head(self) -> None:
        self._waiters.wake_head()

    def try_acquire(self) -> Permit | None:
        """A permit now, or None; never waits and never jumps the queue."""
        if self._waiters:
            return None
        # What _until_free(now) == 0.0 says, without building its answer: not paused, no probe
        # in flight, and a slot free in every window.
        now = self._clock.now()
        in_flight = self._in_flight
        if self._paused_until > now or (self._probe and in_flight > 0):
            return None
        for w, limit in zip(self._windows, self._limits, strict=True):
            # ``w.wait(now, in_flight, limit) == 0.0``, inline: the expired stamps dropped, then a
            # slot is free when those in flight and those still held leave one under the limit.
            expiries = w.expiries
            if expiries and expiries[0] <= now:
                w.prune(now)
            if in_flight + len(expiries) >= limit:
                return None
        return self._grant()

    async def acquire(
        self,
        timeout: float | None = None,
        *,
        on_wait: Callable[[float, Rate | None], None] | None = None,
        notice: float = 0.0,
    ) -> Permit:
        """Wait (FIFO) for a slot free in every window; :class:`LimiterTimeoutError` after ``timeout``.

        ``on_wait(seconds, rate)`` is called at most once, when this caller is at the head of the
        queue and its slot is more than ``notice`` seconds away: ``rate`` is the window holding it
        back longest (None: a 429 pause). A wait only an answer in flight can end is not reported
        until that answer says how long it is.
        """
        permit = self.try_acquire()
        if permit is not None:
            # No extra checkpoint: the caller's request that follows is one.
            return permit
        deadline = None if timeout is None else self._clock.now() + timeout
        tell = WaitNotice(on_wait, notice)
        me = self._waiters.join()
        try:
            while True:
                event = me.rearm()
                now = self._clock.now()
                wait: float | None = None
                if self._waiters.is_head(me):
                    wait, blocker = self._until_free(now)
                    if wait == 0.0:
                        self._waiters.leave(me)  # the next in line looks again
                        return self._grant()
                    tell(wait, blocker)
                if deadline is not None:
                    remaining = deadline - now
                    if remaining <= 0:
                        raise LimiterTimeoutError(
                            f"no rate-limit slot within {timeout:g}s (limits {', '.join(map(str, self.rates))})"
                        )
                    wait = remaining if wait is None else min(wait, remaining)
                await self._clock.wait(event, wait)
        finally:
            self._waiters.leave(me)  # cancelled or timed out: takes nothing (granted: already left)

    def seconds_until_free(self) -> float | None:
        """Seconds until every window has a slot, read only (0: free now; None: only an answer in
        flight can free one). A router's estimate: the queue in front is not counted."""
        return self._time_until_free(self._clock.now())

    @property
    def waiting(self) -> int:
        """How many callers are queued."""
        return len(self._waiters)

    @property
    def in_flight(self) -> int:
        """Requests sent whose answers have not arrived."""
        return self._in_flight

    def time_for(self, n: int) -> float:
        """Seconds until ``n`` more requests could all be granted here, the slots taken now counted
        (a lower bound: each answer taken as instant). ``50`` at a full ``30/minute`` is about 100."""
        now = self._clock.now()
        windows = [
            (limit, w.rate.period + self.margin, w.expiries)
            for w, limit in zip(self._windows, self._limits, strict=True)
        ]
        return grant_time(n, windows, now=now, in_flight=self._in_flight, pause=self._paused_until - now)


class LocalStore:
    """Limits of this process: memory, plus files per key in ``state_dir`` (long windows, a learned tier)."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self.state_dir = state_dir
        self._facts_files: dict[Path, BudgetStore] = {}
        #: One limiter per (provider, hashed key or account) and settings: clients that share this
        #: store (keys of one account, say) share its windows, cooldown and rates.
        self._limiters: weakref.WeakValueDictionary[tuple[object, ...], RateLimiter] = weakref.WeakValueDictionary()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.state_dir) if self.state_dir else 'memory'})"

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
    ) -> RateLimiter:
        ident = (provider, key_hash, margin, adaptive, stamp_bound, persist)
        found = self._limiters.get(ident)
        if found is not None:
            return found
        store = None
        if persist and self.state_dir is not None:
            keep = max(r.period for r in rates) + margin
            store = self._facts(provider, key_hash)  # one store per file: a refusing disk warns once
            assert store is not None
            store.keep = max(store.keep, keep)
        made = RateLimiter(rates, margin=margin, store=store, adaptive=adaptive, stamp_bound=stamp_bound)
        self._limiters[ident] = made
        return made

    def _facts(self, provider: str, key_hash: str) -> BudgetStore | None:
        if self.state_dir is None:
            return None
        path = budget_file(self.state_dir, provider, key_hash)
        facts = self._facts_files.get(path)
        if facts is None:  # one per (provider, key): a disk that refuses it warns once
            facts = self._facts_files[path] = BudgetStore(path, keep=0.0)
        return facts

    def load_meta(self, provider: str, key_hash: str) -> dict[str, str]:
        """What an earlier client learned about (provider, key), from beside its budget; {} if none."""
        facts = self._facts(provider, key_hash)
        return facts.load_meta() if facts is not None else {}

    def save_meta(self, provider: str, key_hash: str, values: Mapping[str, str]) -> None:
        """Keep ``values`` for the next client (nothing without a state_dir)."""
        facts = self._facts(provider, key_hash)
        if facts is not None:
            facts.save_meta(values)

    async def open(self, keys: Sequence[tuple[str, str]] = ()) -> None:
        return None

    async def aclose(self) -> None:
        return None
