"""An in-memory transport for tests (like httpx's ``MockTransport``): handlers answer requests."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from .. import _json
from .._errors import ProtocolError
from ._base import MAX_ERROR_BODY, FormFile, RequestSpec, Response


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


__all__ = ["MockRequest", "MockResponse", "MockTransport"]
