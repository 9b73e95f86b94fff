"""What crosses the transport seam: a plain request description, a small response view, and the
transport protocol (the in-memory transport for tests is in ``_mock``).

Nothing here imports aiohttp: the layers above the transport see only these types.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

from .._errors import ProtocolError, RequestTimeoutError

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


__all__ = ["MAX_ERROR_BODY", "MIN_RATE", "AsyncTransport", "FormFile", "RequestSpec", "Response", "read_capped"]
