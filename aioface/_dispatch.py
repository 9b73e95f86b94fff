"""The dispatcher: take a slot from the provider's limiter, send through the transport, retry what is safe.

It sees requests as :class:`RequestSpec` and answers as the :class:`Response` view; which HTTP
library carries them is the transport's business (``_aiohttp``, or ``MockTransport`` in tests).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import anyio

from . import _otel
from ._errors import AiofaceError, APIError, RateLimitError, api_error_for_status
from ._gate import Gate
from ._net import check_http_url
from ._options import Settings
from ._retry import RetryPolicy, is_retryable, retry_delay
from .limits import Limiter, Rate, RateLimiter
from .limits._protocols import Slot
from .results._check import DEFAULT_MAX_BYTES
from .results._dest import Dest
from .results._stream import CHUNK, Saved, save_stream, sink_writer
from .transports._base import AsyncTransport, RequestSpec, Response

log = logging.getLogger("aioface")
T = TypeVar("T")

ErrorParser = Callable[[int, Mapping[str, str], bytes], APIError]


@dataclass(frozen=True)
class RequestTiming:
    """One HTTP exchange as seen by the client (for metrics and ``aioface bench``).

    Times are ``time.perf_counter()`` seconds: ``queued`` when the caller asked, ``sent`` when the
    rate limiter let it go, ``headers`` when the response headers arrived (None if none did), ``done``
    when the body was handled or the attempt failed.
    """

    provider: str
    method: str
    path: str
    queued: float
    sent: float
    headers: float | None
    done: float
    status: int | None
    error: str | None

    @property
    def total(self) -> float:
        """Seconds from send to done (limiter wait excluded)."""
        return self.done - self.sent

    @property
    def ttfb(self) -> float | None:
        """Seconds from send to response headers."""
        return None if self.headers is None else self.headers - self.sent


@dataclass(frozen=True)
class LimitWait:
    """A request is about to wait for a rate-limit slot longer than the client's ``limit_wait_notice``.

    ``limit`` is the provider's own rate that holds it back, as its docs write it (``"1/minute"``,
    whatever the client's ``time_scale``; None for a pause after a 429); ``tier`` names the limits in
    force (``"Anon"``; None for a provider without tiers); ``seconds`` is real time to the next slot.
    ``str(event)`` reads ``facestudio 1/minute (Anon): next slot in 59s``.
    """

    provider: str
    limit: str | None
    tier: str | None
    seconds: float

    def __str__(self) -> str:
        what = self.limit or "paused after HTTP 429"
        tier = f" ({self.tier})" if self.tier else ""
        return f"{self.provider} {what}{tier}: next slot in {_duration(self.seconds)}"


def _duration(seconds: float) -> str:
    """``4.2s``, ``59s``, ``12m 05s``, ``23h 04m``."""
    if seconds < 9.95:
        return f"{seconds:.1f}s"
    s = round(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


@dataclass
class Endpoint:
    """One provider as the core sees it: its name, its limiter, how to read its errors."""

    name: str
    limiter: Limiter
    parse_error: ErrorParser
    on_headers: Callable[[Mapping[str, str]], None] | None = None
    #: What the provider calls the limits in force (a tier), for :class:`LimitWait`.
    tier_label: Callable[[], str | None] | None = None
    #: Counters for reporting: requests sent, retries, 429s received.
    stats: dict[str, int] = field(default_factory=lambda: {"requests": 0, "retries": 0, "throttled": 0})
    #: At most as many requests of this provider past this point as the pool has connections, so
    #: that 50,000 polls falling due together do not each build a request and queue for a socket.
    gate: Gate | None = None
    #: ``on_wait`` for this endpoint's limiter waits (made once, not per request).
    announce: Callable[[float, Rate | None], None] | None = field(default=None, repr=False, compare=False)


def _once(fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """``fn`` awaited on the first call only (retries of one request do not repeat it)."""
    fired = False

    async def call() -> None:
        nonlocal fired
        if not fired:
            fired = True
            await fn()

    return call


def generic_error(status: int, headers: Mapping[str, str], body: bytes) -> APIError:
    """An error for hosts that are not a provider's API (result downloads)."""
    cls = api_error_for_status(status)
    return cls(f"download failed with HTTP {status}", provider="download", status=status, code=f"http_{status}")


class Dispatch:
    """Sends :class:`RequestSpec` through a transport with limits and retries."""

    def __init__(
        self,
        transport: AsyncTransport,
        *,
        retry: RetryPolicy,
        default_timeout: float = 60.0,
        connect_timeout: float = 10.0,
        acquire_timeout: float | None = None,
        rng: random.Random | None = None,
        on_request: Callable[[RequestTiming], None] | None = None,
        connections: int = 100,
        on_limit_wait: Callable[[LimitWait], None] | None = None,
        limit_wait_notice: float = 3.0,
        time_scale: float = 1.0,
    ) -> None:
        self.transport = transport
        self.connections = connections
        self.retry = retry
        self.default_timeout = default_timeout
        self.connect_timeout = connect_timeout
        self.acquire_timeout = acquire_timeout
        self.rng = rng or random.Random()
        self.on_request = on_request
        self.on_limit_wait = on_limit_wait
        #: Waits longer than this many seconds are announced (INFO log and ``on_limit_wait``).
        self.limit_wait_notice = limit_wait_notice
        #: The limiters run this much faster than the providers' documented rates.
        self.time_scale = time_scale
        #: What a call given no settings runs with.
        self.defaults = Settings(timeout=default_timeout, retry=retry, acquire_timeout=acquire_timeout)

    async def call(
        self,
        spec: RequestSpec,
        endpoint: Endpoint,
        handle: Callable[[Response], Awaitable[T]],
        *,
        on_sent: Callable[[], Awaitable[None]] | None = None,
        admitted: bool = False,
        settings: Settings | None = None,
    ) -> T:
        """Send ``spec`` and pass a 2xx response to ``handle``; retry what is safe to retry.

        ``on_sent`` is awaited once, when the first attempt has its rate-limit slot (so a task's
        ``processing`` starts when the request leaves, not while it waits for the limiter).
        ``admitted``: the caller holds a place in the endpoint's gate (``await
        dispatch.gate(endpoint).acquire(at=due)``, for a poll: it wakes once, when its time has come
        and a connection is free); the first attempt uses it and gives it back, whatever happens.
        ``settings``: the call's (resolved once by the caller: timeout, retry, slot wait, a view's
        own limiters); the dispatcher's defaults when None."""
        attempt = 0
        if on_sent is not None:
            on_sent = _once(on_sent)
        opts = self.defaults if settings is None else settings
        retry = opts.retry
        gate = endpoint.gate
        if gate is None:
            gate = self.gate(endpoint)
        while True:
            try:
                # The gate: the first attempt uses the caller's place when it took one (``admitted``).
                if admitted:
                    admitted = False
                elif not gate.try_acquire():  # a free place taken at once: no coroutine, no loop turn
                    await gate.acquire()
                try:
                    return await self._send(spec, endpoint, handle, on_sent, opts)
                finally:
                    gate.release()
            except AiofaceError as exc:
                if isinstance(exc, RateLimitError):
                    endpoint.stats["throttled"] += 1
                if attempt >= retry.max_retries or not is_retryable(exc, idempotent=spec.idempotent):
                    raise
                delay = retry_delay(exc, attempt, retry, self.rng)
                if delay is None:
                    raise
                attempt += 1
                endpoint.stats["retries"] += 1
                log.info("%s %s: %s; retry %d in %.2fs", endpoint.name, spec.method, exc.code, attempt, delay)
                if _otel.ENABLED:
                    _otel.event(
                        "aioface.retry",
                        {
                            "aioface.provider": endpoint.name,
                            "aioface.error": str(exc.code),
                            "aioface.attempt": attempt,
                            "aioface.delay_seconds": delay,
                        },
                    )
                if isinstance(exc, RateLimitError):
                    endpoint.limiter.cooldown(delay)  # everyone on this key waits, not just us
                else:
                    await anyio.sleep(delay)

    def gate(self, endpoint: Endpoint) -> Gate:
        """``endpoint``'s gate: at most as many of its requests past it as the pool has connections."""
        gate = endpoint.gate
        if gate is None:
            gate = endpoint.gate = Gate(self.connections)
        return gate

    async def _acquire(self, endpoint: Endpoint, own: tuple[Limiter, ...], opts: Settings) -> tuple[Slot, list[Slot]]:
        """The slots of one attempt: a view's own limiters first (a view of a view adds its own),
        then the shared one; nothing kept when any wait fails."""
        announce = endpoint.announce
        if announce is None:
            announce = endpoint.announce = partial(self._announce_wait, endpoint)
        own_permits: list[Slot] = []
        try:
            for lim in own:
                own_permits.append(
                    await lim.acquire(timeout=opts.acquire_timeout, on_wait=announce, notice=self.limit_wait_notice)
                )
            permit = await endpoint.limiter.acquire(
                timeout=opts.acquire_timeout, on_wait=announce, notice=self.limit_wait_notice
            )
        except BaseException:
            for p in own_permits:
                p.release()
            raise
        return permit, own_permits

    async def _send(
        self,
        spec: RequestSpec,
        endpoint: Endpoint,
        handle: Callable[[Response], Awaitable[T]],
        on_sent: Callable[[], Awaitable[None]] | None,
        opts: Settings,
    ) -> T:
        """One attempt; ``opts``: the call's settings (read once per call by :meth:`call`)."""
        # Timestamps only for someone who reads them (``on_request``, OpenTelemetry listening).
        traced = _otel.ENABLED and _otel.listening()
        on_request = self.on_request
        timed = traced or on_request is not None
        queued = time.perf_counter() if timed else 0.0
        own = opts.limiters.get(endpoint.name, ()) if opts.limiters else ()
        own_permits: list[Slot] | tuple[()] = ()
        if own:
            permit, own_permits = await self._acquire(endpoint, own, opts)
        else:
            limiter = endpoint.limiter
            # The local limiter's free slot taken at once (no coroutine); else the FIFO wait.
            free = limiter.try_acquire() if type(limiter) is RateLimiter else None
            permit = free if free is not None else (await self._acquire(endpoint, own, opts))[0]
        sent = time.perf_counter() if timed else 0.0
        headers_at: float | None = None
        status: int | None = None
        error: str | None = None
        timeout = spec.timeout if spec.timeout is not None else opts.timeout
        try:
            if on_sent is not None:
                await on_sent()
            endpoint.stats["requests"] += 1
            async with self.transport.stream(spec, timeout=timeout, connect_timeout=self.connect_timeout) as resp:
                permit.responded()
                for p in own_permits:
                    p.responded()
                status = resp.status
                if timed:
                    headers_at = time.perf_counter()
                if endpoint.on_headers is not None:
                    endpoint.on_headers(resp.headers)
                if status >= 400:
                    raise endpoint.parse_error(status, resp.headers, await resp.read())
                return await handle(resp)
        except AiofaceError as exc:
            error = str(exc.code)
            raise
        finally:
            permit.release()
            for p in own_permits:
                p.release()
            if traced:
                _otel.attempt(endpoint.name, spec.url.split("?")[0], sent - queued, status, error)
            if on_request is not None:
                on_request(
                    RequestTiming(
                        endpoint.name,
                        spec.method,
                        spec.url.split("?")[0],
                        queued,
                        sent,
                        headers_at,
                        time.perf_counter(),
                        status,
                        error,
                    )
                )

    def _announce_wait(self, endpoint: Endpoint, seconds: float, rate: Rate | None) -> None:
        """The limiter says a request will wait ``seconds`` for ``rate`` (scaled): log it, tell the caller."""
        event = LimitWait(
            endpoint.name,
            None if rate is None else rate.scaled(1 / self.time_scale).label(),
            endpoint.tier_label() if endpoint.tier_label is not None else None,
            seconds,
        )
        log.info("%s", event)
        if self.on_limit_wait is not None:
            try:
                self.on_limit_wait(event)
            except Exception:  # the caller's display must never fail the request
                log.exception("on_limit_wait callback failed for %s", event)

    async def download(
        self,
        url: str,
        dest: Dest,
        endpoint: Endpoint,
        *,
        expected_size: int | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        headers: Mapping[str, str] | None = None,
        name: str | None = None,
        settings: Settings | None = None,
    ) -> Saved:
        """GET ``url`` (http/https only, redirects kept to http/https) and stream it into ``dest``.

        Asks for the image as is (``Accept-Encoding: identity``: images gain nothing from gzip); a
        server that compresses anyway is still accepted (see :func:`stream_to_file`). ``dest`` is any
        :data:`~aioface.results._dest.Dest`; ``name`` names the file when it is a folder. A file
        object or sink is never written twice: a retry rewinds a seekable one, and any other that
        has received bytes ends the call with a :class:`DownloadError`.
        """
        check_http_url(url, param="result url")
        dest = sink_writer(dest)  # one for every attempt
        spec = RequestSpec("GET", url, {"Accept-Encoding": "identity", **(headers or {})})
        grace = (self.defaults if settings is None else settings).timeout

        async def handle(resp: Response) -> Saved:
            return await save_stream(
                resp.iter_chunks(CHUNK),
                dest,
                name=name,
                content_length=resp.content_length,
                content_encoding=resp.headers.get("Content-Encoding"),
                expected_size=expected_size,
                max_bytes=max_bytes,
                timeout=grace,  # the call's own timeout (with_options) before the minimum rate counts
            )

        return await self.call(spec, endpoint, handle, settings=settings)


__all__ = ["Dispatch", "Endpoint", "ErrorParser", "LimitWait", "RequestTiming", "generic_error"]
