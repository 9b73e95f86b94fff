"""Limits shared by every process and host that uses a key: a Redis-backed limits store.

Same rule as the local limiter: a slot is held from the send until a window length (+ margin) after
the answer (or until send + stamp bound + window), for every window at once. Each acquire, release,
cooldown and lease renewal is one atomic Lua script timed by Redis's own clock (``TIME``), so hosts
whose clocks disagree still count the same windows. Per (provider, hashed key), under
``aioface:{provider:hash}:`` (one hash slot), every key expiring when idle:

- ``s``  sorted set of stamps: member a permit id, score when the server may count it (µs)
- ``l``  sorted set of leases of requests in flight: score the lease's end, renewed while the
  request runs; an expired lease (its process died) becomes a stamp at its end, so a killed
  process's slots come back at worst lease + window later
- ``q``, ``qe``  the waiting queue (score: ticket number) and each waiter's lease
- ``h``  hash: cooldown end, adaptive limit and streak, ticket counter, longest window kept, and
  an epoch: if Redis loses the state (restarted empty), each process that sees a new epoch puts
  back its own recent stamps and leases and holds every grant for a short grace meanwhile
- ``m``  hash: small shared facts (``meta``), such as a learned tier

Fairness: each process queues one ticket per key; the waiter at position p is granted as soon as
p + 1 slots are free, so no process starves, and grants need no hand-over. The script tells a
waiter how long until that can be; it sleeps that long (plus a little jitter), or re-asks gently
when only answers still in flight can free a slot. No request is sent without a slot: if Redis
cannot be reached, acquire fails with :class:`LimiterTimeoutError` naming the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import re
import secrets
import time
import weakref
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import anyio

from ..._errors import ConfigurationError, LimiterTimeoutError
from .._local import Rate, check_limiter_args

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["KeyState", "RedisStore"]

log = logging.getLogger("aioface")

#: Shared facts (a learned tier) outlive the windows: kept this long after their last use.
META_TTL_MS = 30 * 86400 * 1000

# KEYS: s l q qe h m. ARGV: permit id, waiter id, lease, margin, stamp bound (-1: none), adaptive,
# the epoch the caller last saw ('' if none), probe (1: through the windows once if nothing is in
# flight), meta ttl (ms), window count, then limit and period per window. Times in integer µs.
# Replies: {1, limit, meta, epoch} granted; {0, wait, unknown, position, limit, epoch, window
# holding it back longest (0: a 429 pause or none)}; {3, epoch} the state is newer than the
# caller's (Redis lost it): restore first.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function f(x) return string.format('%.0f', x) end
local pid, wid = ARGV[1], ARGV[2]
local lease, margin, bound = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local n = tonumber(ARGV[10])
local limits, periods, longest = {}, {}, 0
for i = 1, n do
  limits[i] = tonumber(ARGV[9 + 2 * i])
  periods[i] = tonumber(ARGV[10 + 2 * i])
  longest = math.max(longest, periods[i])
end
-- leases that ran out (their process died or stalled) become stamps at their end
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', f(now), 'WITHSCORES')
for i = 1, #dead, 2 do redis.call('ZADD', KEYS[1], dead[i + 1], dead[i]) end
if #dead > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', f(now)) end
-- forget stamps no window can see any more (the longest window any caller asked for)
local h = redis.call('HMGET', KEYS[5], 'keep', 'pause', 'alimit', 'epoch', 'grace')
local keep = math.max(tonumber(h[1] or '0'), longest + margin)
redis.call('HSET', KEYS[5], 'keep', f(keep))
local epoch = h[4]
if not epoch then
  epoch = f(now)
  redis.call('HSET', KEYS[5], 'epoch', epoch)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', f(now - keep))
-- waiters that stopped asking
local gone = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', f(now))
for i = 1, #gone do redis.call('ZREM', KEYS[3], gone[i]) end
if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', f(now)) end
local pause = math.max(tonumber(h[2] or '0'), tonumber(h[5] or '0'))
if ARGV[6] == '1' then limits[1] = math.min(limits[1], tonumber(h[3] or limits[1])) end
local ttl = math.ceil((keep + lease) / 1000) + 60000
local function expire()
  for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ttl) end
end
if ARGV[7] ~= '' and ARGV[7] ~= epoch then
  expire()
  return {3, epoch}
end
local inflight = redis.call('ZCARD', KEYS[2])
local pos = redis.call('ZRANK', KEYS[3], wid)
if not pos then pos = redis.call('ZCARD', KEYS[3]) end
local counts, free = {}, nil
for i = 1, n do
  counts[i] = redis.call('ZCOUNT', KEYS[1], '(' .. f(now - periods[i] - margin), '+inf')
  local room = limits[i] - counts[i] - inflight
  if free == nil or room < free then free = room end
end
if ARGV[8] == '1' and inflight == 0 then free = math.max(free, pos + 1) end
if now >= pause and pos < free then
  if bound >= 0 then
    redis.call('ZADD', KEYS[1], f(now + bound), pid)
  else
    redis.call('ZADD', KEYS[2], f(now + lease), pid)
  end
  redis.call('ZREM', KEYS[3], wid)
  redis.call('ZREM', KEYS[4], wid)
  expire()
  redis.call('PEXPIRE', KEYS[6], ARGV[9])
  return {1, limits[1], redis.call('HGETALL', KEYS[6]), epoch}
end
-- wait: keep (or take) a place in the queue; how long until pos + 1 slots are free?
if not redis.call('ZSCORE', KEYS[3], wid) then
  redis.call('ZADD', KEYS[3], redis.call('HINCRBY', KEYS[5], 'seq', 1), wid)
end
redis.call('ZADD', KEYS[4], f(now + lease), wid)
local wait, unknown, blocker = math.max(0, pause - now), 0, 0
for i = 1, n do
  local over = counts[i] + inflight - limits[i] + 1 + pos
  if over > counts[i] then
    unknown = 1  -- only answers still in flight can free this window
  elseif over > 0 then
    local e = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. f(now - periods[i] - margin), '+inf',
                         'WITHSCORES', 'LIMIT', over - 1, 1)
    local w = tonumber(e[2]) + periods[i] + margin - now
    if w > wait then wait, blocker = w, i end
  end
end
expire()
return {0, wait, unknown, pos, limits[1], epoch, blocker}
"""

# KEYS: s l h. ARGV: permit id, counted (in flight until the answer), adaptive, first limit, ttl (ms),
# µs between the answer and this call as the client measured it (monotonic: no clock skew).
_RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if ARGV[2] == '1' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  local at = now - math.max(0, tonumber(ARGV[6]))
  local was = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
  redis.call('ZADD', KEYS[1], string.format('%.0f', math.max(at, was)), ARGV[1])
end
if ARGV[3] == '1' then
  local limit = tonumber(ARGV[4])
  local a = tonumber(redis.call('HGET', KEYS[3], 'alimit') or limit)
  if a < limit then
    if redis.call('HINCRBY', KEYS[3], 'streak', 1) >= a then
      redis.call('HSET', KEYS[3], 'alimit', a + 1, 'streak', 0)
    end
  end
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
return 1
"""

# KEYS: h. ARGV: seconds (µs), adaptive, first limit, ttl (ms). Several 429s from one burst halve once.
_COOLDOWN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local untl = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('HGET', KEYS[1], 'pause') or '0')
if untl > cur then redis.call('HSET', KEYS[1], 'pause', string.format('%.0f', untl)) end
if ARGV[2] == '1' and now >= cur then
  local a = tonumber(redis.call('HGET', KEYS[1], 'alimit') or ARGV[3])
  redis.call('HSET', KEYS[1], 'alimit', math.max(1, math.floor(a / 2)), 'streak', 0)
end
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[4]), math.ceil(tonumber(ARGV[1]) / 1000) + tonumber(ARGV[4])))
return 1
"""

# KEYS: l h. ARGV: lease (µs), ttl (ms), then permit ids still in flight. Leases already given up stay so.
# Returns the state's epoch ('' if there is none: Redis lost it).
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local exp = string.format('%.0f', now + tonumber(ARGV[1]))
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], 'XX', exp, ARGV[i]) end
for i = 1, 2 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return redis.call('HGET', KEYS[2], 'epoch') or ''
"""

# KEYS: s l h. ARGV: grace (µs), lease (µs), ttl (ms), k, then k pairs (age in µs, permit id) of this
# process's stamps, then its permit ids in flight. Puts them back (what is there stays) and holds
# every grant for the grace, so that the other processes can put theirs back too. Returns the epoch.
_RESTORE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function f(x) return string.format('%.0f', x) end
local k = tonumber(ARGV[4])
for i = 0, k - 1 do
  redis.call('ZADD', KEYS[1], 'NX', f(now - tonumber(ARGV[5 + 2 * i])), ARGV[6 + 2 * i])
end
for i = 5 + 2 * k, #ARGV do redis.call('ZADD', KEYS[2], 'NX', f(now + tonumber(ARGV[2])), ARGV[i]) end
local g = now + tonumber(ARGV[1])
if g > tonumber(redis.call('HGET', KEYS[3], 'grace') or '0') then redis.call('HSET', KEYS[3], 'grace', f(g)) end
local epoch = redis.call('HGET', KEYS[3], 'epoch')
if not epoch then
  epoch = f(now)
  redis.call('HSET', KEYS[3], 'epoch', epoch)
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return epoch
"""


def _us(seconds: float) -> int:
    return math.ceil(seconds * 1_000_000)


def safe_url(url: str) -> str:
    """``url`` without user, password or query (for messages)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class KeyState:
    """One (provider, hashed key) as Redis holds it (for ``aioface limits``)."""

    provider: str
    key_hash: str
    #: Shared facts, such as the learned ``tier``.
    meta: dict[str, str]
    #: Seconds since each send was stamped, oldest first (negative: counted from a moment to come).
    ages: tuple[float, ...]
    #: Requests sent and not yet answered (each holds a slot in every window).
    in_flight: int
    #: Seconds left of a pause after a 429.
    paused_for: float


class RedisStore:
    """Limits in Redis, shared by every process and host using the same key.

    >>> store = RedisStore("redis://127.0.0.1:6379/0")          # doctest: +SKIP
    >>> async with aioface.Client(limits_store=store) as client: ...

    ``lease``: seconds an in-flight slot is held without a sign of life from its process (renewed
    every third of it while the request runs); a killed process's slots come back within
    ``lease`` + window. ``give_up_after``: seconds of failed calls to Redis before acquire gives
    up with :class:`LimiterTimeoutError` (sooner if the acquire timeout ends first).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "aioface",
        lease: float = 15.0,
        give_up_after: float = 10.0,
        connect_timeout: float = 2.0,
        socket_timeout: float = 5.0,
    ) -> None:
        if lease <= 0 or give_up_after < 0:
            raise ConfigurationError("lease must be > 0 and give_up_after >= 0")
        try:
            from redis.exceptions import RedisError
        except ImportError as exc:
            raise ConfigurationError(
                f"the Redis limits store needs redis-py: pip install 'aioface[redis]' ({exc})"
            ) from None
        try:
            _ = urlsplit(url).port  # a port that is not a number raises here, not deep inside redis-py
        except ValueError:
            raise ConfigurationError(f"bad limits store URL {safe_url(url)!r}: the port is not a number") from None
        #: What a lost or refused connection raises.
        self.failures: tuple[type[BaseException], ...] = (RedisError, OSError)
        self.url = url
        self.safe_url = safe_url(url)
        self.prefix = prefix
        self.lease = lease
        self.give_up_after = give_up_after
        self._connect_timeout = connect_timeout
        self._socket_timeout = socket_timeout
        self._redis: Redis | None = None
        self._scripts: dict[str, Any] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._heartbeat: asyncio.Task[None] | None = None
        self._limiters: weakref.WeakSet[RedisLimiter] = weakref.WeakSet()
        self._meta: dict[tuple[str, str], dict[str, str]] = {}
        #: Since when calls to Redis fail (monotonic), the last failure and when it was seen.
        self._down_since: float | None = None
        self._down_error: BaseException | None = None
        self._down_seen = 0.0

    def __repr__(self) -> str:
        return f"RedisStore({self.safe_url!r})"

    # -- connection ----------------------------------------------------------------------
    def _client(self) -> Redis:
        if self._redis is None:
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import ExponentialBackoff

            r = self._redis = Redis.from_url(
                self.url,
                decode_responses=True,
                socket_connect_timeout=self._connect_timeout,
                socket_timeout=self._socket_timeout,
                retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
            )
            self._scripts = {
                name: r.register_script(src)
                for name, src in (
                    ("acquire", _ACQUIRE),
                    ("release", _RELEASE),
                    ("cooldown", _COOLDOWN),
                    ("renew", _RENEW),
                    ("restore", _RESTORE),
                )
            }
        return self._redis

    async def _run(self, script: str, keys: Sequence[str], args: Sequence[str | int | float]) -> Any:
        self._client()
        return await self._scripts[script](keys=list(keys), args=list(args))

    async def open(self, keys: Sequence[tuple[str, str]] = ()) -> None:
        """Check that Redis answers (:class:`ConfigurationError` naming the URL if not) and fetch
        the facts kept for ``keys`` ((provider, key hash) pairs), so :meth:`load_meta` has them."""
        try:
            await self._client().ping()
            for provider, key_hash in keys:
                await self.fetch_meta(provider, key_hash)
        except self.failures as exc:
            raise ConfigurationError(f"cannot reach the limits store at {self.safe_url}: {exc}") from None

    async def flush(self) -> None:
        """Wait until the releases, cooldowns and facts sent in the background have reached Redis."""
        while self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self._socket_timeout)

    async def aclose(self) -> None:
        """Send the releases still pending, stop renewing leases, close the connections."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self._socket_timeout)
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.cancel()
            # Bounded: closing never hangs on a renewal, whatever the Redis client does with a cancel.
            await asyncio.wait({heartbeat}, timeout=self._socket_timeout)
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    # -- the budget view (``aioface limits``) ------------------------------------------
    async def states(self) -> list[KeyState]:
        """What Redis holds for every (provider, hashed key) under this prefix, timed by Redis's clock."""
        r = self._client()
        try:
            sec, usec = await r.time()
            now = sec * 1_000_000 + usec
            pattern = re.compile(rf"^{re.escape(self.prefix)}:\{{([a-z][a-z0-9_]*):([0-9a-f]+)\}}:[a-z]+$")
            pairs: set[tuple[str, str]] = set()
            async for name in r.scan_iter(match=f"{self.prefix}:{{*", count=500):
                m = pattern.match(str(name))
                if m is not None:
                    pairs.add((m[1], m[2]))
            out = []
            for provider, key_hash in sorted(pairs):
                k = self.keys(provider, key_hash)
                stamps: list[Any] = list(await r.zrange(k["s"], 0, -1, withscores=True))
                pause = float(await r.hget(k["h"], "pause") or 0)
                out.append(
                    KeyState(
                        provider,
                        key_hash,
                        {str(a): str(b) for a, b in (await r.hgetall(k["m"])).items()},
                        tuple(sorted(((now - float(item[1])) / 1e6 for item in stamps), reverse=True)),
                        int(await r.zcard(k["l"])),
                        max(0.0, (pause - now) / 1e6),
                    )
                )
            return out
        except self.failures as exc:
            raise ConfigurationError(f"cannot reach the limits store at {self.safe_url}: {exc}") from None

    async def forget(self, provider: str, key_hash: str) -> int:
        """Remove everything Redis keeps for (provider, key): every process starts afresh. Keys removed."""
        try:
            return int(await self._client().delete(*self.keys(provider, key_hash).values()))
        except self.failures as exc:
            raise ConfigurationError(f"cannot reach the limits store at {self.safe_url}: {exc}") from None

    # -- keys and shared facts -----------------------------------------------------------
    def keys(self, provider: str, key_hash: str) -> dict[str, str]:
        """The Redis keys of (provider, hashed key), by role."""
        base = f"{self.prefix}:{{{provider}:{key_hash}}}:"
        return {role: base + role for role in ("s", "l", "q", "qe", "h", "m")}

    async def fetch_meta(self, provider: str, key_hash: str) -> dict[str, str]:
        """The facts Redis keeps about (provider, key) (also what :meth:`load_meta` gives from now on)."""
        got = await self._client().hgetall(self.keys(provider, key_hash)["m"])
        facts = self._meta[(provider, key_hash)] = {str(k): str(v) for k, v in got.items()}
        return dict(facts)

    def load_meta(self, provider: str, key_hash: str) -> dict[str, str]:
        """The facts about (provider, key) as last seen: at :meth:`open`, or at a grant of its limiter."""
        return dict(self._meta.get((provider, key_hash), {}))

    def save_meta(self, provider: str, key_hash: str, values: Mapping[str, str]) -> None:
        """Share ``values`` with every process using this key (written in the background)."""
        facts = self._meta.setdefault((provider, key_hash), {})
        if not values or all(facts.get(k) == v for k, v in values.items()):
            return
        facts.update(values)
        key = self.keys(provider, key_hash)["m"]

        async def write() -> None:
            async with self._client().pipeline(transaction=True) as p:
                p.hset(key, mapping={k: v for k, v in values.items()})
                p.pexpire(key, META_TTL_MS)
                await p.execute()

        self._spawn(write(), "save_meta")

    # -- limiters ------------------------------------------------------------------------
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
    ) -> RedisLimiter:
        lim = RedisLimiter(self, provider, key_hash, rates, margin=margin, adaptive=adaptive, stamp_bound=stamp_bound)
        self._limiters.add(lim)
        return lim

    def _failed(self, exc: BaseException) -> float:
        """Note a failed call; seconds Redis has been failing."""
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
        self._down_error, self._down_seen = exc, now
        return now - self._down_since

    def _given_up(self) -> LimiterTimeoutError | None:
        """The error every acquire raises while Redis has been failing for ``give_up_after``."""
        if self._down_since is None:
            return None
        down = self._down_seen - self._down_since
        if down < self.give_up_after:
            return None
        return LimiterTimeoutError(
            f"limits store {self.safe_url} unreachable for {down:.1f}s ({self._down_error}); no request was sent"
        )

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        """Run ``coro`` in the background (a release, a cooldown); failures are logged."""

        async def guarded() -> None:
            try:
                await coro
            except self.failures as exc:
                log.warning("limits store %s: %s failed (%s)", self.safe_url, what, exc)

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _renewing(self) -> None:
        """Renew leases of requests in flight, and watch for lost state while any limiter has history."""
        if self._heartbeat is None:
            self._heartbeat = asyncio.get_running_loop().create_task(self._renew_loop())

    async def _renew_loop(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        try:
            while not me.cancelling():
                await asyncio.sleep(self.lease / 3)
                busy = [lim for lim in self._limiters if lim._busy()]
                if not busy:
                    break
                for lim in busy:
                    try:
                        keys = [lim._keys["l"], lim._keys["h"]]
                        epoch = await self._run("renew", keys, [_us(self.lease), lim._ttl_ms(), *lim._flight])
                        if lim._epoch is not None and epoch != lim._epoch:
                            await lim._restore()
                    except self.failures as exc:
                        if me.cancelling():  # the client turned our cancellation into an error: stop
                            raise asyncio.CancelledError from exc
                        log.warning("limits store %s: lease renewal failed (%s)", self.safe_url, exc)
        finally:
            if self._heartbeat is me:
                self._heartbeat = None


class _Waiter:
    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = anyio.Event()


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
        store: RedisStore,
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
        self._waiters: deque[_Waiter] = deque()
        self._ticket = False  # this process may hold a place in the Redis queue
        self._paused_until = -math.inf
        self._rng = random.Random()
        self._probe = False
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

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def in_flight(self) -> int:
        return len(self._flight)

    def set_rates(self, rates: Sequence[Rate]) -> None:
        """Change the windows live; history already spent (by any process) counts against them."""
        if not rates:
            raise ConfigurationError("a limiter needs at least one rate")
        self._rates = tuple(sorted(rates, key=lambda r: r.period))
        self._limits = [r.limit for r in self._rates]
        self._windows = [x for r in self._rates for x in (r.limit, _us(r.period))]
        # Poll this often when only answers in flight can free a slot (their stamps come later).
        self._poll = min(max(self._rates[0].period / 10, 0.005), self._store.lease / 3, 0.5)
        self._probe = False  # rates from an answer: confirmed
        self._wake_head()

    def allow_probe(self) -> None:
        """Let the next request through the windows once, if no request of this key is in flight in
        any process (rates only assumed: the answer that tells the real ones must not wait)."""
        self._probe = True
        self._wake_head()

    # -- feedback --------------------------------------------------------------------------
    def cooldown(self, seconds: float) -> None:
        """Pause every caller of this key, in every process, for ``seconds`` (after a 429)."""
        self.throttled += 1
        seconds = max(0.0, seconds)
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)
        if self._adaptive:
            self._limits[0] = max(1, self._limits[0] // 2)
        args = [_us(seconds), int(self._adaptive), self._rates[0].limit, self._ttl_ms()]
        self._store._spawn(self._store._run("cooldown", [self._keys["h"]], args), "cooldown")

    def _remember(self, stamp: float, pid: str) -> None:
        self._history.append((stamp, pid))
        self._busy()

    def _busy(self) -> bool:
        """Whether this limiter has requests in flight or stamps still inside a window."""
        old = time.monotonic() - self._rates[-1].period - self.margin
        while self._history and self._history[0][0] <= old:
            self._history.popleft()
        return bool(self._flight or self._history)

    async def _restore(self) -> None:
        """Redis lost the state (a new epoch): put back this process's stamps and leases."""
        now = time.monotonic()
        stamps = [x for stamp, pid in self._history for x in (int((now - stamp) * 1e6), pid)]
        grace = self._store.lease / 3 + 0.5
        args = [_us(grace), _us(self._store.lease), self._ttl_ms(), len(self._history), *stamps, *self._flight]
        keys = [self._keys["s"], self._keys["l"], self._keys["h"]]
        self._epoch = str(await self._store._run("restore", keys, args))
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
            await self._store._run("release", keys, [*args, int((time.monotonic() - answered) * 1e6)])

        self._store._spawn(release(), "release")

    # -- acquire ---------------------------------------------------------------------------
    def _wake_head(self) -> None:
        if self._waiters:
            self._waiters[0].event.set()

    async def _ask(self, pid: str, timeout: float | None = None) -> list[Any]:
        """One acquire script, given at most ``timeout``; a grant that lands after we were cancelled
        (or gave up) is handed back, and so is a place in the queue no local waiter still needs."""
        bound = -1 if self.stamp_bound is None else _us(self.stamp_bound)
        args: list[str | int | float] = [
            pid,
            f"{self._id}:w",
            _us(self._store.lease),
            _us(self.margin),
            bound,
            int(self._adaptive),
            self._epoch or "",
            int(self._probe),
            META_TTL_MS,
            len(self._rates),
            *self._windows,
        ]
        keys = [self._keys[r] for r in ("s", "l", "q", "qe", "h", "m")]
        task = asyncio.ensure_future(self._store._run("acquire", keys, args))
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
                self._store._spawn(self._leave_queue(), "leave queue")
            return
        if task.result()[0] != 1:
            return
        r = self._store._client()

        async def drop() -> None:  # never sent: take nothing
            await r.zrem(self._keys["l"], pid)
            await r.zrem(self._keys["s"], pid)

        self._store._spawn(drop(), "unclaim")

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
        me = _Waiter()
        self._waiters.append(me)
        granted = False
        told = on_wait is None
        try:
            while True:
                me.event = anyio.Event()
                now = time.monotonic()
                wait: float | None = None
                if self._waiters[0] is me:
                    down = self._store._given_up()
                    if down is not None and now - self._store._down_seen < 0.5:
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
                                if self._busy():
                                    await self._restore()
                                else:
                                    self._epoch = str(reply[1])
                                continue
                        except self._store.failures as exc:
                            self._store._failed(exc)
                            down = self._store._given_up()
                            if down is not None:
                                raise down from None
                            wait = self._rng.uniform(0.05, 0.15)
                        else:
                            self._store._down_since = self._store._down_error = None
                            if reply[0]:
                                self._limits[0] = int(reply[1])
                                self._epoch = str(reply[3])
                                flat = reply[2]
                                facts = dict(zip(flat[::2], flat[1::2], strict=True))
                                self._store._meta[(self.provider, self.key_hash)] = facts
                                self._waiters.popleft()
                                granted = True
                                self._ticket = False
                                self._wake_head()
                                return self._grant(pid)
                            self._ticket = True
                            self._limits[0] = int(reply[4])
                            self._epoch = str(reply[5])
                            wait = int(reply[1]) / 1e6
                            if not told and not reply[2] and wait > notice:
                                told = True
                                assert on_wait is not None
                                blocker = int(reply[6])
                                on_wait(wait, self._rates[blocker - 1] if blocker else None)
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
                        err = self._store._down_error
                        why = f": limits store {self._store.safe_url} unreachable ({err})" if err else ""
                        raise LimiterTimeoutError(
                            f"no rate-limit slot within {timeout:g}s "
                            f"(limits {', '.join(map(str, self._rates))}, shared in Redis){why}"
                        )
                    wait = remaining if wait is None else min(wait, remaining)
                if wait is None:
                    await me.event.wait()
                else:
                    with anyio.move_on_after(wait):
                        await me.event.wait()
        finally:
            if not granted:
                was_head = bool(self._waiters) and self._waiters[0] is me
                with contextlib.suppress(ValueError):
                    self._waiters.remove(me)
                if was_head:
                    self._wake_head()
                if not self._waiters and self._ticket:
                    self._ticket = False
                    self._store._spawn(self._leave_queue(), "leave queue")

    async def _leave_queue(self) -> None:
        wid = f"{self._id}:w"
        async with self._store._client().pipeline(transaction=True) as p:
            p.zrem(self._keys["q"], wid)
            p.zrem(self._keys["qe"], wid)
            await p.execute()

    def _grant(self, pid: str) -> _RedisPermit:
        self.granted += 1
        self._probe = False
        self._store._renewing()
        if self.stamp_bound is not None:
            self._remember(time.monotonic() + self.stamp_bound, pid)
            return _RedisPermit(self, pid, counted=False)
        self._flight.add(pid)
        return _RedisPermit(self, pid, counted=True)
