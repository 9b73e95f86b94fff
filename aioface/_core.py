"""The core: take a slot from the provider's limiter, send through the transport, retry what is safe.

It sees requests as :class:`RequestSpec` and answers as the :class:`Response` view; which HTTP
library carries them is the transport's business (``_aiohttp``, or ``MockTransport`` in tests).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import anyio

from ._download import CHUNK, DEFAULT_MAX_BYTES, Saved, stream_to_file
from ._errors import AiofaceError, APIError, RateLimitError, api_error_for_status
from ._http import AsyncTransport, RequestSpec, Response
from ._limits import RateLimiter
from ._net import check_http_url
from ._retry import RetryPolicy, is_retryable, retry_delay

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


@dataclass
class Endpoint:
    """One provider as the core sees it: its name, its limiter, how to read its errors."""

    name: str
    limiter: RateLimiter
    parse_error: ErrorParser
    on_headers: Callable[[Mapping[str, str]], None] | None = None
    #: Counters for reporting: requests sent, retries, 429s received.
    stats: dict[str, int] = field(default_factory=lambda: {"requests": 0, "retries": 0, "throttled": 0})
    #: At most as many requests of this provider past this point as the pool has connections, so
    #: that 50,000 polls falling due together do not each build a request and queue for a socket.
    gate: asyncio.Semaphore | None = None


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
    ) -> None:
        self.transport = transport
        self.connections = connections
        self.retry = retry
        self.default_timeout = default_timeout
        self.connect_timeout = connect_timeout
        self.acquire_timeout = acquire_timeout
        self.rng = rng or random.Random()
        self.on_request = on_request

    async def call(self, spec: RequestSpec, endpoint: Endpoint, handle: Callable[[Response], Awaitable[T]]) -> T:
        """Send ``spec`` and pass a 2xx response to ``handle``; retry what is safe to retry."""
        attempt = 0
        while True:
            try:
                return await self._once(spec, endpoint, handle)
            except AiofaceError as exc:
                if isinstance(exc, RateLimitError):
                    endpoint.stats["throttled"] += 1
                if attempt >= self.retry.max_retries or not is_retryable(exc, idempotent=spec.idempotent):
                    raise
                delay = retry_delay(exc, attempt, self.retry, self.rng)
                if delay is None:
                    raise
                attempt += 1
                endpoint.stats["retries"] += 1
                log.info("%s %s: %s; retry %d in %.2fs", endpoint.name, spec.method, exc.code, attempt, delay)
                if isinstance(exc, RateLimitError):
                    endpoint.limiter.cooldown(delay)  # everyone on this key waits, not just us
                else:
                    await anyio.sleep(delay)

    async def _once(self, spec: RequestSpec, endpoint: Endpoint, handle: Callable[[Response], Awaitable[T]]) -> T:
        gate = endpoint.gate
        if gate is None:
            gate = endpoint.gate = asyncio.Semaphore(self.connections)
        async with gate:  # asyncio's: no loop turn when a place is free
            return await self._send(spec, endpoint, handle)

    async def _send(self, spec: RequestSpec, endpoint: Endpoint, handle: Callable[[Response], Awaitable[T]]) -> T:
        queued = time.perf_counter()
        permit = await endpoint.limiter.acquire(timeout=self.acquire_timeout)
        sent = time.perf_counter()
        headers_at: float | None = None
        status: int | None = None
        error: str | None = None
        timeout = spec.timeout if spec.timeout is not None else self.default_timeout
        try:
            endpoint.stats["requests"] += 1
            async with self.transport.stream(spec, timeout=timeout, connect_timeout=self.connect_timeout) as resp:
                permit.responded()
                headers_at, status = time.perf_counter(), resp.status
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
            if self.on_request is not None:
                self.on_request(
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

    async def download(
        self,
        url: str,
        dest: Path,
        endpoint: Endpoint,
        *,
        expected_size: int | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        headers: Mapping[str, str] | None = None,
    ) -> Saved:
        """GET ``url`` (http/https only, redirects kept to http/https) and stream it into ``dest``.

        Asks for the image as is (``Accept-Encoding: identity``: images gain nothing from gzip); a
        server that compresses anyway is still accepted (see :func:`stream_to_file`).
        """
        check_http_url(url, param="result url")
        spec = RequestSpec("GET", url, {"Accept-Encoding": "identity", **(headers or {})})

        async def handle(resp: Response) -> Saved:
            return await stream_to_file(
                resp.iter_chunks(CHUNK),
                dest,
                content_length=resp.content_length,
                content_encoding=resp.headers.get("Content-Encoding"),
                expected_size=expected_size,
                max_bytes=max_bytes,
            )

        return await self.call(spec, endpoint, handle)


__all__ = ["Dispatch", "Endpoint", "ErrorParser", "RequestTiming", "generic_error"]
