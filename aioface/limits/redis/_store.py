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
  an epoch: if Redis loses the state (flushed, restarted empty), each process that sees a new
  epoch puts back its own recent stamps and leases, and every grant waits a grace meanwhile
  (one heartbeat and a little): no process, a new one included, is granted a slot the lost
  stamps still hold. ``{prefix}:live`` (one store-wide key, written at each grant) tells a key
  that is new or idle (no grace) from a store that lost its state (a flush takes it too)
- ``m``  hash: small shared facts (``meta``), such as a learned tier

Fairness: each process queues one ticket per key; the waiter at position p is granted as soon as
p + 1 slots are free, so no process starves, and grants need no hand-over. The script tells a
waiter how long until that can be; it sleeps that long (plus a little jitter), or re-asks gently
when only answers still in flight can free a slot. No request is sent without a slot: if Redis
cannot be reached, acquire fails with :class:`LimiterTimeoutError` naming the store.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import weakref
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from ..._errors import ConfigurationError, LimiterTimeoutError
from .._rate import Rate
from ._limiter import RedisLimiter
from ._scripts import META_TTL_MS, SCRIPT_NAMES, lua

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["KeyState", "RedisStore", "safe_url"]

log = logging.getLogger("aioface")


def safe_url(url: str) -> str:
    """``url`` without user, password or query (for messages), even when it does not parse."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:  # a broken IPv6 host...: cut by hand, never showing what precedes the last '@'
        scheme, sep, rest = url.partition("://")
        rest = re.split(r"[?#]", rest.rpartition("@")[2], maxsplit=1)[0]
        return f"{scheme}{sep}{rest}"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _redacted(message: str, url: str) -> str:
    """``message`` with the password of ``url`` (as written, and decoded) replaced by ``***``."""
    userinfo = url.partition("://")[2].rpartition("@")[0]
    hidden = {userinfo, userinfo.partition(":")[2]}
    for secret in sorted(hidden | {unquote(x) for x in hidden}, key=len, reverse=True):
        if secret:
            message = message.replace(secret, "***")
    return message


def _check_url(url: str, options: dict[str, Any]) -> None:
    """:class:`ConfigurationError` naming the store (password hidden) if redis-py cannot use ``url``:
    a query value it cannot read (``?db=abc``), an option its connection refuses, a broken host.
    Builds a connection without opening it: nothing is sent."""
    from redis.asyncio import ConnectionPool
    from redis.exceptions import RedisError

    try:
        ConnectionPool.from_url(url, **options).make_connection()  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, RedisError) as exc:
        raise ConfigurationError(f"bad limits store URL {safe_url(url)!r}: {_redacted(str(exc), url)}") from None


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

    ``lease``: seconds an in-flight slot is held without a sign of life from its process; a killed
    process's slots come back within ``lease`` + window. Leases are renewed, and lost state looked
    for, every ``min(lease / 3, 1)`` seconds (the heartbeat). ``give_up_after``: seconds of failed
    calls to Redis before acquire gives up with :class:`LimiterTimeoutError` (sooner if the acquire timeout ends first).
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
        except ValueError as exc:
            why = "the port is not a number" if "Port" in str(exc) else _redacted(str(exc), url)
            raise ConfigurationError(f"bad limits store URL {safe_url(url)!r}: {why}") from None
        self._connect_timeout = connect_timeout
        self._socket_timeout = socket_timeout
        _check_url(url, self._options())
        #: What a lost or refused connection raises.
        self.failures: tuple[type[BaseException], ...] = (RedisError, OSError)
        self.url = url
        self.safe_url = safe_url(url)
        self.prefix = prefix
        #: Exists while Redis has not lost the store's state (written at each grant): a key found
        #: without state while it exists is new or idle, never lost, and costs no grace.
        self.live_key = f"{prefix}:live"
        self.lease = lease
        #: How often live processes renew leases and look for lost state (seconds).
        self.heartbeat = min(lease / 3, 1.0)
        #: How long a lost state holds every grant: one heartbeat and a little, so that the live
        #: processes can put back the stamps of the windows still open.
        self.grace = self.heartbeat + 0.5
        self.give_up_after = give_up_after
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

    # -- connection (``client``, ``run``: package-internal, for its limiters and the budget view) --
    def _options(self) -> dict[str, Any]:
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff

        return {
            "decode_responses": True,
            "socket_connect_timeout": self._connect_timeout,
            "socket_timeout": self._socket_timeout,
            "retry": Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
        }

    def client(self) -> Redis:
        """The Redis client (made on first use), with the store's scripts registered."""
        if self._redis is None:
            from redis.asyncio import Redis

            r = self._redis = Redis.from_url(self.url, **self._options())
            self._scripts = {name: r.register_script(lua(name)) for name in SCRIPT_NAMES}
        return self._redis

    async def run(self, script: str, keys: Sequence[str], args: Sequence[str | int | float]) -> Any:
        """Run one of the store's Lua scripts (``scripts/<script>.lua``)."""
        self.client()
        return await self._scripts[script](keys=list(keys), args=list(args))

    async def open(self, keys: Sequence[tuple[str, str]] = ()) -> None:
        """Check that Redis answers (:class:`ConfigurationError` naming the URL if not) and fetch
        the facts kept for ``keys`` ((provider, key hash) pairs), so :meth:`load_meta` has them."""
        try:
            await self.client().ping()
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
        r = self.client()
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
            return int(await self.client().delete(*self.keys(provider, key_hash).values()))
        except self.failures as exc:
            raise ConfigurationError(f"cannot reach the limits store at {self.safe_url}: {exc}") from None

    # -- keys and shared facts -----------------------------------------------------------
    def keys(self, provider: str, key_hash: str) -> dict[str, str]:
        """The Redis keys of (provider, hashed key), by role."""
        base = f"{self.prefix}:{{{provider}:{key_hash}}}:"
        return {role: base + role for role in ("s", "l", "q", "qe", "h", "m")}

    async def fetch_meta(self, provider: str, key_hash: str) -> dict[str, str]:
        """The facts Redis keeps about (provider, key) (also what :meth:`load_meta` gives from now on)."""
        got = await self.client().hgetall(self.keys(provider, key_hash)["m"])
        facts = self._meta[(provider, key_hash)] = {str(k): str(v) for k, v in got.items()}
        return dict(facts)

    def remember_meta(self, provider: str, key_hash: str, facts: dict[str, str]) -> None:
        """The facts about (provider, key) as a grant just read them (package-internal: its limiters)."""
        self._meta[(provider, key_hash)] = facts

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
            async with self.client().pipeline(transaction=True) as p:
                p.hset(key, mapping={k: v for k, v in values.items()})
                p.pexpire(key, META_TTL_MS)
                await p.execute()

        self.spawn(write(), "save_meta")

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

    # -- package-internal: what its limiters tell the store, and ask of it ----------------
    def note_failure(self, exc: BaseException) -> float:
        """Note a failed call; seconds Redis has been failing."""
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
        self._down_error, self._down_seen = exc, now
        return now - self._down_since

    def note_reachable(self) -> None:
        """A call to Redis succeeded: it is not failing (any more)."""
        self._down_since = self._down_error = None

    @property
    def down_error(self) -> BaseException | None:
        """The last failure while calls to Redis fail (None while they succeed)."""
        return self._down_error

    @property
    def down_seen(self) -> float:
        """When (monotonic) a call to Redis last failed."""
        return self._down_seen

    def given_up(self) -> LimiterTimeoutError | None:
        """The error every acquire raises while Redis has been failing for ``give_up_after``."""
        if self._down_since is None:
            return None
        down = self._down_seen - self._down_since
        if down < self.give_up_after:
            return None
        return LimiterTimeoutError(
            f"limits store {self.safe_url} unreachable for {down:.1f}s ({self._down_error}); no request was sent"
        )

    def spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        """Run ``coro`` in the background (a release, a cooldown); failures are logged."""

        async def guarded() -> None:
            try:
                await coro
            except self.failures as exc:
                log.warning("limits store %s: %s failed (%s)", self.safe_url, what, exc)

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def start_heartbeat(self) -> None:
        """Renew leases of requests in flight, and watch for lost state while any limiter has history."""
        if self._heartbeat is None:
            self._heartbeat = asyncio.get_running_loop().create_task(self._renew_loop())

    async def _renew_loop(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        try:
            while not me.cancelling():
                await asyncio.sleep(self.heartbeat)
                busy = [lim for lim in self._limiters if lim.busy()]
                if not busy:
                    break
                for lim in busy:
                    try:
                        await lim.renew()
                    except self.failures as exc:
                        if me.cancelling():  # the client turned our cancellation into an error: stop
                            raise asyncio.CancelledError from exc
                        log.warning("limits store %s: lease renewal failed (%s)", self.safe_url, exc)
        finally:
            if self._heartbeat is me:
                self._heartbeat = None
