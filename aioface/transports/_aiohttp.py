"""The aiohttp transport: the only aiohttp client import, and the one place its errors become ours.

Redirects are followed here, by hand, so that a provider's credentials (``Authorization`` and
custom key headers alike) are never sent to another origin, and a redirect to anything but
http(s) is refused rather than retried.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from .. import _json
from .._errors import ConnectError, DownloadError, ProtocolError, RequestTimeoutError, TransportError
from ._base import MAX_ERROR_BODY, RequestSpec, Response, read_capped

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10


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


class _View:
    """:class:`aioface.transports._base.Response` over an ``aiohttp.ClientResponse``."""

    __slots__ = ("_grace", "_resp")

    def __init__(self, resp: aiohttp.ClientResponse, grace: float | None) -> None:
        self._resp = resp
        self._grace = grace  # the request's read timeout: then the body must keep a minimum rate

    @property
    def status(self) -> int:
        return self._resp.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._resp.headers

    @property
    def url(self) -> str:
        return str(self._resp.url)

    @property
    def content_length(self) -> int | None:
        return self._resp.content_length

    def iter_chunks(self, size: int) -> AsyncIterator[bytes]:
        return self._resp.content.iter_chunked(size)

    async def read(self, cap: int = MAX_ERROR_BODY) -> bytes:
        content = self._resp.content
        if content.is_eof():  # the whole body came with the headers (a small JSON answer): no wait to time
            data = content.read_nowait()
            if len(data) > cap:
                raise ProtocolError(f"answer body larger than {cap} bytes")
            return data
        return await read_capped(content.iter_chunked(1 << 16), cap, grace=self._grace)


def _origin(url: URL) -> tuple[str, str | None, int | None]:
    return (url.scheme, url.host, url.port)


class _Stream:
    """``async with transport.stream(spec, ...) as response``: send, follow redirects, map errors."""

    __slots__ = ("_proxy", "_resp", "_session", "_spec", "_timeout")

    def __init__(
        self,
        session: aiohttp.ClientSession,
        spec: RequestSpec,
        timeout: aiohttp.ClientTimeout,
        proxy: Callable[[str], str | None] | None,
    ) -> None:
        self._session = session
        self._proxy = proxy
        self._spec = spec
        self._timeout = timeout
        self._resp: aiohttp.ClientResponse | None = None

    @property
    def _label(self) -> str:
        """``GET https://...``, for errors (made only when one is raised)."""
        return f"{self._spec.method} {self._spec.url}"

    def _body(self) -> tuple[Any, Mapping[str, str]]:
        """The body to send and the headers to send it with (the spec's own when nothing is added:
        aiohttp copies them into its own headers and never changes ours)."""
        spec = self._spec
        headers = spec.headers
        if spec.files:
            form = aiohttp.FormData()
            for f in spec.files:
                form.add_field(f.name, f.data, filename=f.filename, content_type=f.content_type)
            return form, headers
        if spec.json is not None:
            if "content-type" not in headers and not any(k.lower() == "content-type" for k in headers):
                headers = {**headers, "content-type": "application/json"}  # a type given (any case) is kept
            return _json.dumps(spec.json), headers
        return None, headers

    def _proxy_for(self, url: str) -> str | None:
        return None if self._proxy is None else self._proxy(url)

    async def __aenter__(self) -> Response:
        spec = self._spec
        try:
            data, headers = self._body()
            resp = await self._session.request(
                spec.method,
                spec.url,
                params=spec.params,
                data=data,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
                proxy=None if self._proxy is None else self._proxy(spec.url),
            )
            if spec.method == "GET":
                first = _origin(resp.url)
                for _ in range(MAX_REDIRECTS):
                    if resp.status not in _REDIRECTS or "Location" not in resp.headers:
                        break
                    nxt = resp.url.join(URL(resp.headers["Location"]))
                    resp.release()
                    if nxt.scheme not in ("http", "https"):
                        raise DownloadError(
                            f"{self._label} redirected to a {nxt.scheme!r} URL; only http(s) is followed"
                        )
                    # Credentials stay with the origin they were given for.
                    hop = headers if _origin(nxt) == first else {"Accept": headers.get("Accept", "*/*")}
                    resp = await self._session.get(
                        nxt, headers=hop, timeout=self._timeout, allow_redirects=False, proxy=self._proxy_for(str(nxt))
                    )
                else:
                    resp.release()
                    raise ProtocolError(f"{self._label}: more than {MAX_REDIRECTS} redirects")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise map_transport_error(exc, self._label) from None
        self._resp = resp
        return _View(resp, self._timeout.sock_read)

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._resp is not None:
            self._resp.release()
        if isinstance(exc, (aiohttp.ClientError, TimeoutError)):
            raise map_transport_error(exc, self._label) from None


class AiohttpTransport:
    """The default transport: one ``aiohttp.ClientSession`` (yours, or one it makes and closes).

    ``trust_env=True`` honours ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` (read once, resolved once
    per host: aiohttp's own ``trust_env`` looks them up again on every request, which costs more
    than the rest of a request). ``connector_kwargs`` go to ``aiohttp.TCPConnector``.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        connections: int = 100,
        trust_env: bool = True,
        connector_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self._own = session is None
        self._session = session
        self._connections = connections
        self._connector_kwargs = dict(connector_kwargs or {})
        self._proxies = urllib.request.getproxies_environment() if trust_env else {}
        self._proxy_for: dict[tuple[str, str], str | None] = {}
        self._timeouts: dict[tuple[float, float], aiohttp.ClientTimeout] = {}

    @property
    def session(self) -> aiohttp.ClientSession:
        """The session (made on first use when none was given)."""
        if self._session is None:
            opts = {"limit": self._connections, "limit_per_host": self._connections, **self._connector_kwargs}
            connector = aiohttp.TCPConnector(**opts)
            self._session = aiohttp.ClientSession(connector=connector, headers={"User-Agent": "aioface"})
        return self._session

    def _proxy(self, url: str) -> str | None:
        if not self._proxies:
            return None
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        if key not in self._proxy_for:
            bypass = getattr(urllib.request, "proxy_bypass_environment")(parts.hostname or "", self._proxies)  # noqa: B009 - not in typeshed
            self._proxy_for[key] = None if bypass else self._proxies.get(parts.scheme)
        return self._proxy_for[key]

    def stream(self, spec: RequestSpec, *, timeout: float, connect_timeout: float) -> _Stream:
        t = self._timeouts.get((timeout, connect_timeout))
        if t is None:  # the same few pairs again and again: one (frozen) ClientTimeout each
            if len(self._timeouts) > 64:
                self._timeouts.clear()
            t = self._timeouts[timeout, connect_timeout] = aiohttp.ClientTimeout(
                total=None, sock_connect=connect_timeout, sock_read=timeout
            )
        # No proxy variables: no per-request proxy lookup at all.
        return _Stream(self.session, spec, t, self._proxy if self._proxies else None)

    async def aclose(self) -> None:
        """Close the session if this transport made it."""
        if self._own and self._session is not None:
            await self._session.close()
            self._session = None


__all__ = ["AiohttpTransport", "map_transport_error"]
