"""Client-side rate limits: several sliding windows at once, exact against the servers' counting.

Each window ``N/T`` allows at most N requests in ANY span of length T, counted at send time, as
Django REST framework's throttle (Face Studio) counts them. The server stamps a request somewhere
between our send and its response headers, so a slot is held from the send until ``T + margin``
after the response headers arrive. A plain token bucket with burst N and rate N/T would let up to
2N-1 requests into one window; this does not, and still reaches the full rate N/(T + latency).

Waiters are served first in, first out; a waiter that is cancelled or times out takes nothing.
A 429 pauses the whole limiter (``cooldown``) so that other callers do not hit it too.

Limiters come from a :class:`LimitsStore`: :class:`LocalStore` (this process, plus files for long
windows and learned facts) or ``RedisStore`` (``aioface.limits.redis._store``: every process and host
sharing one key).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import math
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio
import anyio.lowlevel

from .. import _json
from .._errors import ConfigurationError, LimiterTimeoutError

log = logging.getLogger("aioface")

__all__ = [
    "Clock",
    "FakeClock",
    "Limiter",
    "LimitsStore",
    "LocalStore",
    "MonotonicClock",
    "Permit",
    "Rate",
    "RateLimiter",
    "Slot",
    "key_digest",
    "parse_limits",
]

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


class _BudgetStore:
    """Send times of one (provider, key) on disk, so long windows survive restarts, and what that
    key's tier was last learned to be (so a rerun does not start from a lower assumed tier).

    Send times: one float (wall-clock seconds) a line; every access holds ``flock`` so processes can
    share it. The tier: a small JSON file beside it (``<budget>.tier``), replaced atomically.
    A folder that cannot hold the file at start is a :class:`ConfigurationError`; a write that
    fails later (disk full, turned read-only) never reaches the limiter: saving then stops, with
    one warning, and the limits go on in memory.
    """

    def __init__(self, path: Path, keep: float) -> None:
        self.path = path
        self.keep = keep
        #: Why persisting stopped (None while it works).
        self.failed: str | None = None
        try:  # the file itself is made on first use; here only whether it could be
            path.parent.mkdir(parents=True, exist_ok=True)
            if os.path.lexists(path):
                os.close(os.open(path, os.O_RDWR))  # a folder in the way, a read-only disk...
            elif os.statvfs(path.parent).f_flag & os.ST_RDONLY:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS))
            elif not os.access(path.parent, os.W_OK | os.X_OK):
                raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        except OSError as exc:
            raise ConfigurationError(
                f"rate-limit budgets cannot be kept in {path.parent}: {exc.strerror or exc} "
                "(point AIOFACE_CACHE_DIR or state_dir at a writable folder, or pass persist_limits=False)"
            ) from None

    @property
    def tier_path(self) -> Path:
        """The small JSON file beside the budget holding what was learned about the key (its tier)."""
        return self.path.with_name(self.path.name + ".tier")

    def load_meta(self) -> dict[str, str]:
        """Small facts learned about this (provider, key), as :meth:`save_meta` was given them; {} if none.

        Hints, not facts: the provider may have changed the plan since. A damaged file is no facts.
        """
        try:
            data = _json.loads(self.tier_path.read_bytes())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str) and v}

    def save_meta(self, values: Mapping[str, str]) -> None:
        """Remember ``values`` beside those already kept (only writes when something changed).

        Never raises: a disk that refuses it stops saving, with the store's one warning."""
        if self.failed is not None:
            return
        meta = self.load_meta()
        if all(meta.get(k) == v for k, v in values.items()):
            return
        meta.update(values)
        tmp = self.tier_path.with_name(f".{self.tier_path.name}.{os.getpid()}.part")
        try:
            tmp.write_bytes(_json.dumps({**meta, "learned_at": round(time.time(), 3)}))
            os.replace(tmp, self.tier_path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            self._give_up(exc)

    def load_tier(self) -> str | None:
        """The tier last learned for this (provider, key) (as :meth:`save_tier` was given it), or None.

        A hint, not a fact: the provider may have changed the plan since. Use it for the limits
        before the first answer, and never let it hold back the request that would confirm it
        (:meth:`RateLimiter.allow_probe`).
        """
        return self.load_meta().get("tier")

    def save_tier(self, tier: str) -> None:
        """Remember the tier an answer named (call it when the tier changes, not on every answer)."""
        self.save_meta({"tier": tier})

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)

    def _give_up(self, exc: OSError) -> None:
        self.failed = exc.strerror or str(exc)
        log.warning(
            "rate-limit budget %s cannot be saved in %s (%s): limits go on in memory only, so a rerun "
            "may overspend what this run sends",
            self.path.stem,
            self.path.parent,
            self.failed,
        )

    def load(self, now: float) -> list[float]:
        """Stamps newer than ``keep`` seconds; compacts the file while holding the lock (when it can)."""
        try:
            with self._locked() as fd:
                raw = b""
                while chunk := os.read(fd, 1 << 16):
                    raw += chunk
                stamps: list[float] = []
                for line in raw.split(b"\n"):
                    with contextlib.suppress(ValueError):
                        t = float(line)
                        if now - self.keep < t <= now + 60:
                            stamps.append(t)
                kept = b"".join(b"%.3f\n" % t for t in stamps)
                try:
                    # Over the old lines, then cut: never more space than the file had (a full
                    # disk cannot lose the budget between a truncate and a write).
                    if len(kept) <= len(raw):
                        os.pwrite(fd, kept, 0)
                        os.ftruncate(fd, len(kept))
                except OSError as exc:
                    self._give_up(exc)  # read, but cannot be written: spent budget still counts
                return sorted(stamps)
        except OSError as exc:
            raise ConfigurationError(
                f"rate-limit budgets cannot be read from {self.path.parent}: {exc.strerror or exc} "
                "(point AIOFACE_CACHE_DIR or state_dir at a usable folder, or pass persist_limits=False)"
            ) from None

    def append(self, stamp: float) -> None:
        """Save one stamp; never raises (after a failure, saving stops with one warning)."""
        if self.failed is not None:
            return
        try:
            with self._locked() as fd:
                os.lseek(fd, 0, os.SEEK_END)
                data = b"%.3f\n" % stamp
                if os.write(fd, data) != len(data):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            self._give_up(exc)


def check_budget_dir(state_dir: Path) -> None:
    """:class:`ConfigurationError` unless rate-limit budgets can be kept under ``state_dir``
    (made when missing): for a clear message at start instead of one failure per call."""
    folder = state_dir / "limits"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        st = os.statvfs(folder)
        why = (
            "read-only file system"
            if st.f_flag & os.ST_RDONLY
            else None
            if os.access(folder, os.W_OK | os.X_OK)
            else "not writable"
        )
    except OSError as exc:
        why = exc.strerror or str(exc)
    if why is not None:
        raise ConfigurationError(
            f"rate-limit budgets cannot be kept in {folder}: {why} "
            "(point AIOFACE_CACHE_DIR or state_dir at a writable folder, or pass persist_limits=False)"
        )


def key_digest(key: str | None) -> str:
    """The name a key is kept under (files, Redis): a hash, never the key itself."""
    return hashlib.sha256((key or "anonymous").encode()).hexdigest()[:16]


def budget_path(state_dir: Path, provider: str, key: str | None) -> Path:
    """Where the budget of (provider, key) lives; the key only ever appears hashed."""
    return _budget_file(state_dir, provider, key_digest(key))


def _budget_file(state_dir: Path, provider: str, key_hash: str) -> Path:
    return state_dir / "limits" / f"{provider}-{key_hash}.log"


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


class _Waiter:
    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = anyio.Event()


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
        store: _BudgetStore | None = None,
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
        self._waiters: deque[_Waiter] = deque()
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
        self._probe = False  # rates from an answer are confirmed: no probe needed any more
        self._rebuild()
        self._wake_head()

    def allow_probe(self) -> None:
        """Let the next request through the windows once, before any answer confirmed these rates.

        For rates that are only assumed (a tier guessed, or remembered from an earlier run): the
        request that would reveal the real tier must not wait for a window the real tier may not
        have. Only when nothing is in flight (an answer on its way will tell), never through a 429
        pause; the permission ends when granted or when :meth:`set_rates` applies learned rates.
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
        if self._probe and self._in_flight == 0:
            return worst, None
        for w, limit in zip(self._windows, self._limits, strict=True):
            t = w.wait(now, self._in_flight, limit)
            if t is None:
                return (None, w.rate) if worst == 0.0 else (worst, blocker)
            if t > worst:
                worst, blocker = t, w.rate
        return worst, blocker

    def _grant(self) -> Permit:
        self.granted += 1
        self._probe = False
        if self.stamp_bound is None:
            self._in_flight += 1
            return Permit(self, counted=True)
        self._record(self._clock.now() + self.stamp_bound)
        return Permit(self, counted=False)

    def _record(self, stamp: float) -> None:
        """The server counted (or may count) a request at ``stamp``: hold a slot until stamp + T."""
        now = self._clock.now()
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
            self._record(self._clock.now())
            self._note_success()
        finally:
            self._wake_head()  # whatever happened above, the next waiter re-checks

    def _wake_head(self) -> None:
        if self._waiters:
            self._waiters[0].event.set()

    def try_acquire(self) -> Permit | None:
        """A permit now, or None; never waits and never jumps the queue."""
        if self._waiters or self._time_until_free(self._clock.now()) != 0.0:
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
        me = _Waiter()
        self._waiters.append(me)
        granted = False
        told = on_wait is None
        try:
            while True:
                me.event = anyio.Event()
                now = self._clock.now()
                wait: float | None = None
                if self._waiters[0] is me:
                    wait, blocker = self._until_free(now)
                    if wait == 0.0:
                        self._waiters.popleft()
                        granted = True
                        try:
                            return self._grant()
                        finally:
                            self._wake_head()
                    if not told and wait is not None and wait > notice:
                        told = True
                        assert on_wait is not None
                        on_wait(wait, blocker)
                if deadline is not None:
                    remaining = deadline - now
                    if remaining <= 0:
                        raise LimiterTimeoutError(
                            f"no rate-limit slot within {timeout:g}s (limits {', '.join(map(str, self.rates))})"
                        )
                    wait = remaining if wait is None else min(wait, remaining)
                await self._clock.wait(me.event, wait)
        finally:
            if not granted:
                was_head = bool(self._waiters) and self._waiters[0] is me
                with contextlib.suppress(ValueError):
                    self._waiters.remove(me)
                if was_head:
                    self._wake_head()

    @property
    def waiting(self) -> int:
        """How many callers are queued."""
        return len(self._waiters)

    @property
    def in_flight(self) -> int:
        """Requests sent whose answers have not arrived."""
        return self._in_flight


# ------------------------------------------------------------------------------- stores
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

    def allow_probe(self) -> None: ...

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


class LocalStore:
    """Limits of this process: memory, plus files per key in ``state_dir`` (long windows, a learned tier)."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self.state_dir = state_dir
        self._facts_files: dict[Path, _BudgetStore] = {}

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
        store = None
        if persist and self.state_dir is not None:
            keep = max(r.period for r in rates) + margin
            store = self._facts(provider, key_hash)  # one store per file: a refusing disk warns once
            assert store is not None
            store.keep = max(store.keep, keep)
        return RateLimiter(rates, margin=margin, store=store, adaptive=adaptive, stamp_bound=stamp_bound)

    def _facts(self, provider: str, key_hash: str) -> _BudgetStore | None:
        if self.state_dir is None:
            return None
        path = _budget_file(self.state_dir, provider, key_hash)
        facts = self._facts_files.get(path)
        if facts is None:  # one per (provider, key): a disk that refuses it warns once
            facts = self._facts_files[path] = _BudgetStore(path, keep=0.0)
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
