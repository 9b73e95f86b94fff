"""The Redis store's limiter: :class:`RedisLimiter` (windows, cooldown and queue shared in Redis) and its permit."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import secrets
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..._errors import ConfigurationError, LimiterTimeoutError
from .._clock import MonotonicClock
from .._eta import grant_time
from .._local import check_limiter_args
from .._rate import Rate
from .._waiters import WaiterQueue, WaitNotice
from ._scripts import META_TTL_MS, us

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisLimiter", "StoreLink"]

log = logging.getLogger("aioface")


class StoreLink(Protocol):
    """What a :class:`RedisLimiter` uses of its store (``RedisStore``; package-internal)."""

    lease: float
    grace: float
    live_key: str
    safe_url: str
    failures: tuple[type[BaseException], ...]

    def keys(self, provider: str, key_hash: str) -> dict[str, str]: ...

    def client(self) -> Redis: ...

    async def run(self, script: str, keys: Sequence[str], args: Sequence[str | int | float]) -> Any: ...

    def spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None: ...

    def note_failure(self, exc: BaseException) -> float: ...

    def note_reachable(self) -> None: ...

    def given_up(self) -> LimiterTimeoutError | None: ...

    @property
    def down_error(self) -> BaseException | None: ...

    @property
    def down_seen(self) -> float: ...

    def remember_meta(self, provider: str, key_hash: str, facts: dict[str, str]) -> None: ...

    def start_heartbeat(self) -> None: ...


class _RedisPermit:
    """One slot taken from Redis; :meth:`responded` when the answer's headers arrive."""

    __slots__ = ("_counted", "_done", "_limiter", "_pid")

    def __init__(self, limiter: RedisLimiter, pid: str, counted: bool) -> None:
        self._limiter = limiter
        self._pid = pid
        self._counted = counted
        self._done = False

    def responded(self) -> None:
        """The answer arrived: the slot is held one more window length from now (Redis time)."""
        if not self._done:
            self._done = True
            self._limiter._finish(self._pid, self._counted)

    release = responded


class RedisLimiter:
    """A limiter whose windows, cooldown and adaptive limit live in Redis (made by :class:`RedisStore`).

    Same surface as :class:`aioface.RateLimiter`; ``in_flight``, ``waiting``, ``granted`` and
    ``throttled`` count this process only.
    """

    def __init__(
        self,
        store: StoreLink,
        provider: str,
        key_hash: str,
        rates: Sequence[Rate],
        *,
        margin: float = 0.05,
        adaptive: bool = False,
        stamp_bound: float | None = None,
    ) -> None:
        check_limiter_args(margin, stamp_bound)
        self._store = store
        self.provider = provider
        self.key_hash = key_hash
        self.margin = margin
        self.stamp_bound = stamp_bound
        self._adaptive = adaptive
        self._keys = store.keys(provider, key_hash)
        self._id = secrets.token_hex(6)
        self._seq = 0
        self._flight: set[str] = set()
        #: This process's stamps still inside a window: (monotonic time, permit id), to put back
        #: if Redis loses the state; and the state's epoch last seen.
        self._history: deque[tuple[float, str]] = deque()
        self._epoch: str | None = None
        self._waiters = WaiterQueue()
        self._ticket = False  # this process may hold a place in the Redis queue
        self._paused_until = -math.inf
        self._rng = random.Random()
        self._clock = MonotonicClock()
        self._probe = False
        self._on_facts: Callable[[Mapping[str, str]], None] | None = None
        self.granted = 0
        self.throttled = 0
        self._rates: tuple[Rate, ...] = ()
        self._limits: list[int] = []
        self.set_rates(rates)

    def __repr__(self) -> str:
        return f"RedisLimiter({self.provider!r}, {', '.join(map(str, self._rates))}, {self._store.safe_url!r})"

    # -- configuration -------------------------------------------------------------------
    @property
    def rates(self) -> tuple[Rate, ...]:
        return self._rates

    @property
    def effective_limits(self) -> tuple[int, ...]:
        """Per-window limits in force at the last grant (the first is shared and adaptive)."""
        return tuple(self._limits)

    def seconds_until_free(self) -> float | None:
        """This process's read-only estimate of the seconds until a slot: the pause after a 429 (the
        windows live in Redis and are not asked: 0 when no pause is known)."""
        return max(0.0, self._paused_until - time.monotonic())

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def in_flight(self) -> int:
        return len(self._flight)

    def time_for(self, n: int) -> float:
        """Seconds until ``n`` more requests could all be granted, counting only what this process
        knows without asking Redis (its requests in flight, a 429 pause): a lower bound."""
        pause = self._paused_until - time.monotonic()
        windows = [(limit, r.period + self.margin, ()) for r, limit in zip(self._rates, self._limits, strict=True)]
        return grant_time(n, windows, in_flight=self.in_flight, pause=pause)

    def set_rates(self, rates: Sequence[Rate]) -> None:
        """Change the windows live; history already spent (by any process) counts against them."""
        if not rates:
            raise ConfigurationError("a limiter needs at least one rate")
        self._rates = tuple(sorted(rates, key=lambda r: r.period))
        self._limits = [r.limit for r in self._rates]
        self._windows = [x for r in self._rates for x in (r.limit, us(r.period))]
        # Poll this often when only answers in flight can free a slot (their stamps come later).
        self._poll = min(max(self._rates[0].period / 10, 0.005), self._store.lease / 3, 0.5)
        self._probe = False  # rates from an answer: confirmed
        self._wake_head()

    def probe_first(self, on_facts: Callable[[Mapping[str, str]], None] | None = None) -> None:
        """The rates are not confirmed (a tier assumed or remembered): until :meth:`set_rates`, a
        request is granted only when none of this key is in flight in any process, within the
        windows, and it holds its slot until its answer (which names the real rates). While it
        waits, ``on_facts`` is given the facts the processes share (a confirmation another
        process wrote may end the probing: it then calls :meth:`set_rates`)."""
        self._probe = True
        self._on_facts = on_facts
        self._wake_head()

    # -- feedback --------------------------------------------------------------------------
    def cooldown(self, seconds: float) -> None:
        """Pause every caller of this key, in every process, for ``seconds`` (after a 429)."""
        self.throttled += 1
        seconds = max(0.0, seconds)
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)
        if self._adaptive:
            self._limits[0] = max(1, self._limits[0] // 2)
        args = [us(seconds), int(self._adaptive), self._rates[0].limit, self._ttl_ms()]
        self._store.spawn(self._store.run("cooldown", [self._keys["h"]], args), "cooldown")

    def _remember(self, stamp: float, pid: str) -> None:
        self._history.append((stamp, pid))
        self.busy()

    def busy(self) -> bool:
        """Whether this limiter has requests in flight or stamps still inside a window (its store's
        heartbeat renews leases and watches for lost state while one is busy)."""
        old = time.monotonic() - self._rates[-1].period - self.margin
        while self._history and self._history[0][0] <= old:
            self._history.popleft()
        return bool(self._flight or self._history)

    async def renew(self) -> None:
        """Renew the leases of this process's requests in flight (the store's heartbeat calls it);
        if Redis lost the state meanwhile (a new epoch), put back this process's stamps and leases."""
        keys = [self._keys["l"], self._keys["h"]]
        epoch = await self._store.run("renew", keys, [us(self._store.lease), self._ttl_ms(), *self._flight])
        if self._epoch is not None and epoch != self._epoch:
            await self._restore()

    async def _restore(self) -> None:
        """Redis lost the state (a new epoch): put back this process's stamps and leases."""
        now = time.monotonic()
        stamps = [x for stamp, pid in self._history for x in (int((now - stamp) * 1e6), pid)]
        args = [
            us(self._store.grace),
            us(self._store.lease),
            self._ttl_ms(),
            len(self._history),
            *stamps,
            *self._flight,
        ]
        keys = [self._keys["s"], self._keys["l"], self._keys["h"]]
        self._epoch = str(await self._store.run("restore", keys, args))
        log.warning("limits store %s: state of %s was lost; put back %d stamps", self._store.safe_url,
                    self.provider, len(self._history) + len(self._flight))  # fmt: skip

    def _ttl_ms(self) -> int:
        return math.ceil((self._rates[-1].period + self.margin + self._store.lease) * 1000) + 60_000

    def _finish(self, pid: str, counted: bool) -> None:
        if counted:
            self._flight.discard(pid)
            self._remember(time.monotonic(), pid)
        elif not self._adaptive:
            return  # stamp-bound: the stamp was placed at the grant
        keys = [self._keys["s"], self._keys["l"], self._keys["h"]]
        args: list[str | int | float] = [pid, int(counted), int(self._adaptive), self._rates[0].limit, self._ttl_ms()]
        answered = time.monotonic()

        async def release() -> None:
            # The stamp is the answer's time: Redis's now less the delay measured here (transit
            # not subtracted, so never too early).
            await self._store.run("release", keys, [*args, int((time.monotonic() - answered) * 1e6)])

        self._store.spawn(release(), "release")

    # -- acquire ---------------------------------------------------------------------------
    def _wake_head(self) -> None:
        self._waiters.wake_head()

    async def _ask(self, pid: str, timeout: float | None = None) -> list[Any]:
        """One acquire script, given at most ``timeout``; a grant that lands after we were cancelled
        (or gave up) is handed back, and so is a place in the queue no local waiter still needs."""
        bound = -1 if self.stamp_bound is None else us(self.stamp_bound)
        args: list[str | int | float] = [
            pid,
            f"{self._id}:w",
            us(self._store.lease),
            us(self.margin),
            bound,
            int(self._adaptive),
            self._epoch or "",
            int(self._probe),
            META_TTL_MS,
            len(self._rates),
            *self._windows,
            us(self._store.grace),
        ]
        keys = [*(self._keys[r] for r in ("s", "l", "q", "qe", "h", "m")), self._store.live_key]
        task = asyncio.ensure_future(self._store.run("acquire", keys, args))
        try:
            return list(await asyncio.wait_for(asyncio.shield(task), timeout))
        except asyncio.CancelledError:
            task.add_done_callback(lambda t: self._unclaim(t, pid))
            raise
        except TimeoutError:
            if task.done():  # redis-py's own timeout (a RedisError): as it is
                raise
            task.add_done_callback(lambda t: self._unclaim(t, pid))
            raise TimeoutError(f"no answer within {timeout:.2g}s") from None

    def _unclaim(self, task: asyncio.Future[Any], pid: str) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        if task.result()[0] == 0:  # it took (or kept) a place in the Redis queue
            if self._waiters:
                self._ticket = True  # the next local head uses it, and leaves it when done
            else:
                self._ticket = False
                self._store.spawn(self._leave_queue(), "leave queue")
            return
        if task.result()[0] != 1:
            return
        r = self._store.client()

        async def drop() -> None:  # never sent: take nothing
            await r.zrem(self._keys["l"], pid)
            await r.zrem(self._keys["s"], pid)

        self._store.spawn(drop(), "unclaim")

    async def acquire(
        self,
        timeout: float | None = None,
        *,
        on_wait: Callable[[float, Rate | None], None] | None = None,
        notice: float = 0.0,
    ) -> _RedisPermit:
        """Wait (fair across processes, FIFO within this one) for a slot free in every window.

        :class:`LimiterTimeoutError` after ``timeout``, or when Redis stays unreachable for
        the store's ``give_up_after`` seconds: no request is ever sent without a slot.
        ``on_wait(seconds, rate)``: as :meth:`aioface.RateLimiter.acquire` (once, from the head of
        this process's queue, for a wait longer than ``notice`` that is known).
        """
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        tell = WaitNotice(on_wait, notice)
        me = self._waiters.join()
        try:
            while True:
                event = me.rearm()
                now = time.monotonic()
                wait: float | None = None
                if self._waiters.is_head(me):
                    down = self._store.given_up()
                    if down is not None and now - self._store.down_seen < 0.5:
                        raise down  # fail fast; someone probes again within half a second
                    if now < self._paused_until:
                        wait = self._paused_until - now
                    else:
                        self._seq += 1
                        pid = f"{self._id}:{self._seq}"
                        try:
                            budget = None if deadline is None else max(deadline - now, 0.05)
                            reply = await self._ask(pid, budget)
                            if reply[0] == 3:  # Redis lost the state since we last saw it
                                if self.busy():
                                    await self._restore()
                                else:
                                    self._epoch = str(reply[1])
                                continue
                        except self._store.failures as exc:
                            self._store.note_failure(exc)
                            down = self._store.given_up()
                            if down is not None:
                                raise down from None
                            wait = self._rng.uniform(0.05, 0.15)
                        else:
                            self._store.note_reachable()
                            if reply[0]:
                                self._limits[0] = int(reply[1])
                                self._epoch = str(reply[3])
                                flat = reply[2]
                                facts = {
                                    k: v for k, v in zip(flat[::2], flat[1::2], strict=True) if not k.startswith("_")
                                }
                                self._store.remember_meta(self.provider, self.key_hash, facts)
                                self._waiters.leave(me)  # the next in line looks again
                                self._ticket = False
                                return self._grant(pid)
                            self._ticket = True
                            self._limits[0] = int(reply[4])
                            self._epoch = str(reply[5])
                            wait = int(reply[1]) / 1e6
                            blocker = int(reply[6])
                            if self._probe and len(reply) > 7:
                                self._shared(reply[7])
                            tell(None if reply[2] else wait, self._rates[blocker - 1] if blocker else None)
                            if reply[2]:
                                wait = max(wait, self._poll * self._rng.uniform(0.8, 1.2))
                            else:
                                wait += self._rng.uniform(0.0, min(0.002, 0.01 * wait))
                            wait = min(wait, self._store.lease / 3)
                            log.debug("%s: place %d in the queue, asking again in %.3fs%s", self.provider,
                                      int(reply[3]), wait, " (answers in flight)" if reply[2] else "")  # fmt: skip
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        err = self._store.down_error
                        why = f": limits store {self._store.safe_url} unreachable ({err})" if err else ""
                        raise LimiterTimeoutError(
                            f"no rate-limit slot within {timeout:g}s "
                            f"(limits {', '.join(map(str, self._rates))}, shared in Redis){why}"
                        )
                    wait = remaining if wait is None else min(wait, remaining)
                await self._clock.wait(event, wait)
        finally:
            self._waiters.leave(me)  # cancelled or timed out: takes nothing (granted: already left)
            if not self._waiters and self._ticket:
                self._ticket = False
                self._store.spawn(self._leave_queue(), "leave queue")

    def _shared(self, flat: Sequence[str]) -> None:
        """Facts read while probing: kept for the store, and told (they may confirm the rates)."""
        facts = dict(zip(flat[::2], flat[1::2], strict=True))
        self._store.remember_meta(self.provider, self.key_hash, facts)
        if self._on_facts is not None:
            self._on_facts(facts)

    async def _leave_queue(self) -> None:
        wid = f"{self._id}:w"
        async with self._store.client().pipeline(transaction=True) as p:
            p.zrem(self._keys["q"], wid)
            p.zrem(self._keys["qe"], wid)
            await p.execute()

    def _grant(self, pid: str) -> _RedisPermit:
        self.granted += 1
        self._store.start_heartbeat()
        if self.stamp_bound is not None and not self._probe:  # a probe is in flight until its answer
            self._remember(time.monotonic() + self.stamp_bound, pid)
            return _RedisPermit(self, pid, counted=False)
        self._flight.add(pid)
        return _RedisPermit(self, pid, counted=True)
