"""All network I/O: limiter, one aiohttp session, retries, and the map from aiohttp errors to ours."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import aiohttp
import anyio

from . import _json
from ._download import CHUNK, DEFAULT_MAX_BYTES, Saved, check_http_url, stream_to_file
from ._errors import (
    AiofaceError,
    APIError,
    ConnectError,
    DownloadError,
    ProtocolError,
    RateLimitError,
    RequestTimeoutError,
    TransportError,
)
from ._limits import RateLimiter
from ._providers._base import RequestSpec
from ._retry import RetryPolicy, is_retryable, retry_delay

log = logging.getLogger("aioface")
T = TypeVar("T")

MAX_ERROR_BODY = 1 << 20
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
class Provider:
    """One provider as the core sees it: where, which limiter, how to read its errors."""

    name: str
    base_url: str
    limiter: RateLimiter
    parse_error: ErrorParser
    on_headers: Callable[[Mapping[str, str]], None] | None = None
    #: Counters for reporting: requests sent, retries, 429s received.
    stats: dict[str, int] = field(default_factory=lambda: {"requests": 0, "retries": 0, "throttled": 0})


def map_transport_error(exc: BaseException, what: str) -> TransportError:
    """The one place aiohttp and timeout exceptions become aioface exceptions."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(f"could not connect for {what}: {exc.os_error.strerror or exc.os_error}")
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return RequestTimeoutError(f"{what} timed out")
    if isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ContentTypeError)):
        return ProtocolError(f"{what}: the answer was cut or malformed ({type(exc).__name__})")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return ProtocolError(f"{what}: the server closed the connection")
    return TransportError(f"{what} failed: {type(exc).__name__}")


async def read_capped(resp: aiohttp.ClientResponse, cap: int = MAX_ERROR_BODY) -> bytes:
    """Read at most ``cap`` bytes of a body (error bodies are never trusted to be small)."""
    buf = bytearray()
    async for chunk in resp.content.iter_chunked(1 << 16):
        buf += chunk
        if len(buf) > cap:
            raise ProtocolError(f"answer body larger than {cap} bytes")
    return bytes(buf)


class Transport:
    """Sends :class:`RequestSpec` through one session with limits and retries."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        retry: RetryPolicy,
        default_timeout: float = 60.0,
        connect_timeout: float = 10.0,
        acquire_timeout: float | None = None,
        rng: random.Random | None = None,
        on_request: Callable[[RequestTiming], None] | None = None,
    ) -> None:
        self.session = session
        self.retry = retry
        self.default_timeout = default_timeout
        self.connect_timeout = connect_timeout
        self.acquire_timeout = acquire_timeout
        self.rng = rng or random.Random()
        self.on_request = on_request

    def _timeout(self, spec_timeout: float | None) -> aiohttp.ClientTimeout:
        read = spec_timeout if spec_timeout is not None else self.default_timeout
        return aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout, sock_read=read)

    async def call(
        self,
        spec: RequestSpec,
        provider: Provider,
        handle: Callable[[aiohttp.ClientResponse], Awaitable[T]],
    ) -> T:
        """Send ``spec`` and pass a 2xx response to ``handle``; retry what is safe to retry."""
        attempt = 0
        while True:
            try:
                return await self._once(spec, provider, handle)
            except AiofaceError as exc:
                if isinstance(exc, RateLimitError):
                    provider.stats["throttled"] += 1
                if attempt >= self.retry.max_retries or not is_retryable(exc, idempotent=spec.idempotent):
                    raise
                delay = retry_delay(exc, attempt, self.retry, self.rng)
                if delay is None:
                    raise
                attempt += 1
                provider.stats["retries"] += 1
                log.info("%s %s: %s; retry %d in %.2fs", provider.name, spec.method, exc.code, attempt, delay)
                if isinstance(exc, RateLimitError):
                    provider.limiter.cooldown(delay)  # everyone on this key waits, not just us
                else:
                    await anyio.sleep(delay)

    async def _once(
        self,
        spec: RequestSpec,
        provider: Provider,
        handle: Callable[[aiohttp.ClientResponse], Awaitable[T]],
    ) -> T:
        queued = time.perf_counter()
        permit = await provider.limiter.acquire(timeout=self.acquire_timeout)
        sent = time.perf_counter()
        path = spec.url.split("?")[0]
        what = f"{provider.name} {spec.method} {path}"
        headers_at: float | None = None
        status: int | None = None
        error: str | None = None
        try:
            data: aiohttp.FormData | bytes | None = None
            headers = dict(spec.headers)
            if spec.files:
                form = aiohttp.FormData()
                for f in spec.files:
                    form.add_field(f.name, f.data, filename=f.filename, content_type=f.content_type)
                data = form
            elif spec.json is not None:
                data = _json.dumps(spec.json)
                headers.setdefault("content-type", "application/json")
            provider.stats["requests"] += 1
            async with self.session.request(
                spec.method,
                spec.url,
                params=spec.params,
                data=data,
                headers=headers,
                timeout=self._timeout(spec.timeout),
                allow_redirects=spec.method == "GET",
            ) as resp:
                permit.responded()
                headers_at, status = time.perf_counter(), resp.status
                log.debug("%s -> HTTP %d", what, resp.status)
                if provider.on_headers is not None:
                    provider.on_headers(resp.headers)
                if resp.status >= 400:
                    body = await read_capped(resp)
                    raise provider.parse_error(resp.status, resp.headers, body)
                return await handle(resp)
        except AiofaceError as exc:
            error = str(exc.code)
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            mapped = map_transport_error(exc, what)
            error = mapped.code
            raise mapped from None
        finally:
            permit.release()
            if self.on_request is not None:
                self.on_request(
                    RequestTiming(
                        provider.name, spec.method, path, queued, sent, headers_at, time.perf_counter(), status, error
                    )
                )

    async def read_json(self, resp: aiohttp.ClientResponse) -> bytes:
        """A small JSON body, capped."""
        return await read_capped(resp)

    async def download(
        self,
        url: str,
        dest: Path,
        provider: Provider,
        *,
        expected_size: int | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        headers: Mapping[str, str] | None = None,
    ) -> Saved:
        """GET ``url`` (http/https only, redirects kept to http/https) and stream it into ``dest``."""
        check_http_url(url, param="result url")
        spec = RequestSpec("GET", url, dict(headers or {}))

        async def handle(resp: aiohttp.ClientResponse) -> Saved:
            if resp.url.scheme not in ("http", "https"):
                raise DownloadError(f"result redirected to a {resp.url.scheme!r} URL")
            return await stream_to_file(
                resp.content.iter_chunked(CHUNK),
                dest,
                content_length=resp.content_length,
                expected_size=expected_size,
                max_bytes=max_bytes,
            )

        return await self.call(spec, provider, handle)
