"""What crosses the transport seam: a plain request description, a small response view, and the
transport protocol, with an in-memory transport for tests (like httpx's ``MockTransport``).

Nothing here imports aiohttp: the layers above the transport see only these types.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

from multidict import CIMultiDict, CIMultiDictProxy

from . import _json
from ._errors import ProtocolError, RequestTimeoutError

#: Error bodies are read up to this many bytes (they are never trusted to be small).
MAX_ERROR_BODY = 1 << 20


@dataclass(frozen=True)
class FormFile:
    """One file field of a multipart upload."""

    name: str
    data: bytes = field(repr=False)
    filename: str
    content_type: str


@dataclass(frozen=True)
class RequestSpec:
    """One HTTP request. Its repr never shows headers (they carry the key)."""

    method: str
    url: str
    headers: Mapping[str, str] = field(repr=False)
    params: Mapping[str, str] | None = None
    json: Any = None
    files: tuple[FormFile, ...] = ()
    #: True when sending it twice is harmless (GETs); POSTs that start paid work are not.
    idempotent: bool = True
    #: Seconds to wait for the answer (socket read), None for the client default.
    timeout: float | None = None

    @property
    def full_url(self) -> str:
        """The URL with its query string."""
        if not self.params:
            return self.url
        return f"{self.url}{'&' if '?' in self.url else '?'}{urlencode(self.params)}"


class Response(Protocol):
    """The response view handed to the layers above the transport."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Case-insensitive headers."""
        ...

    @property
    def url(self) -> str:
        """The final URL (after redirects)."""
        ...

    @property
    def content_length(self) -> int | None:
        """``Content-Length`` as sent, or None."""
        ...

    def iter_chunks(self, size: int) -> AsyncIterator[bytes]:
        """The body in pieces of at most ``size`` bytes."""
        ...

    async def read(self, cap: int = MAX_ERROR_BODY) -> bytes:
        """The whole body; :class:`ProtocolError` when it is larger than ``cap``."""
        ...


class AsyncTransport(Protocol):
    """Sends one request and yields its response (body not yet read). No retries, no limits."""

    def stream(
        self, spec: RequestSpec, *, timeout: float, connect_timeout: float
    ) -> AbstractAsyncContextManager[Response]: ...

    async def aclose(self) -> None: ...


#: A body must keep coming at this many bytes a second on average once ``grace`` seconds have
#: passed, so that a server trickling a byte at a time cannot hold an answer open for ever: N bytes
#: get at most ``grace + N / MIN_RATE`` seconds in all. 4 KiB/s is far below any working link.
MIN_RATE = 4096.0


async def read_capped(chunks: AsyncIterator[bytes], cap: int, *, grace: float | None = None) -> bytes:
    """Join ``chunks`` but stop with :class:`ProtocolError` past ``cap`` bytes, and with
    :class:`RequestTimeoutError` when, after ``grace`` seconds, they come slower than ``MIN_RATE``."""
    buf = bytearray()
    start = time.monotonic()
    async for chunk in chunks:
        buf += chunk
        if len(buf) > cap:
            raise ProtocolError(f"answer body larger than {cap} bytes")
        if grace is not None:
            elapsed = time.monotonic() - start
            if elapsed > grace + len(buf) / MIN_RATE:
                raise RequestTimeoutError(
                    f"answer body too slow: {len(buf)} bytes in {elapsed:.1f}s "
                    f"(under {MIN_RATE:g} bytes/s after {grace:g}s)"
                )
    return bytes(buf)


# ------------------------------------------------------------------------------ in-memory
@dataclass(frozen=True)
class MockRequest:
    """What a :class:`MockTransport` handler receives."""

    method: str
    url: str
    headers: CIMultiDictProxy[str] = field(repr=False)
    json: Any = None
    files: tuple[FormFile, ...] = ()


class MockResponse:
    """A canned answer: ``MockResponse(200, json={...})`` or ``MockResponse(200, content=b"...")``."""

    def __init__(
        self,
        status: int = 200,
        *,
        json: Any = None,
        content: bytes = b"",
        headers: Mapping[str, str] | None = None,
        url: str = "",
    ) -> None:
        self.status = status
        h: CIMultiDict[str] = CIMultiDict(headers or {})
        if json is not None:
            content = _json.dumps(json)
            h.setdefault("Content-Type", "application/json")
        self._content = content
        h.setdefault("Content-Length", str(len(content)))
        self.headers = CIMultiDictProxy(h)
        self.url = url

    @property
    def content_length(self) -> int | None:
        v = self.headers.get("Content-Length")
        return int(v) if v is not None and v.isdigit() else None

    async def iter_chunks(self, size: int) -> AsyncIterator[bytes]:
        for i in range(0, len(self._content), size):
            yield self._content[i : i + size]

    async def read(self, cap: int = MAX_ERROR_BODY) -> bytes:
        if len(self._content) > cap:
            raise ProtocolError(f"answer body larger than {cap} bytes")
        return self._content


MockHandler = Callable[[MockRequest], "MockResponse | Awaitable[MockResponse]"]


class MockTransport:
    """An in-memory transport: every request goes to ``handler(request) -> MockResponse``.

    >>> def handler(request):
    ...     return aioface.MockResponse(200, content=JPEG_BYTES, headers={"X-User-Class": "Basic"})
    >>> aioface.Client(transport=aioface.MockTransport(handler))      # doctest: +SKIP

    Limits, retries, validation and atomic files all run as usual; only the network is replaced.
    """

    def __init__(self, handler: MockHandler) -> None:
        self.handler = handler
        #: Every request seen, in order.
        self.requests: list[MockRequest] = []

    @asynccontextmanager
    async def _stream(self, spec: RequestSpec) -> AsyncIterator[Response]:
        req = MockRequest(
            spec.method, spec.full_url, CIMultiDictProxy(CIMultiDict(spec.headers)), spec.json, spec.files
        )
        self.requests.append(req)
        answer = self.handler(req)
        if inspect.isawaitable(answer):
            answer = await answer
        assert isinstance(answer, MockResponse)
        if not answer.url:
            answer.url = spec.full_url
        yield answer

    def stream(
        self, spec: RequestSpec, *, timeout: float, connect_timeout: float
    ) -> AbstractAsyncContextManager[Response]:
        return self._stream(spec)

    async def aclose(self) -> None:
        return None


__all__ = [
    "AsyncTransport",
    "FormFile",
    "MockRequest",
    "MockResponse",
    "MockTransport",
    "RequestSpec",
    "Response",
    "read_capped",
]
