"""Transports: the one protocol requests cross (``AsyncTransport``), aiohttp's, and an in-memory one.

``aioface.transports`` is public: write a transport of your own against :class:`AsyncTransport`, or
answer requests in unit tests with :class:`MockTransport`. Nothing above this package imports aiohttp.
"""

from typing import TYPE_CHECKING, Any

from ._base import AsyncTransport as AsyncTransport
from ._base import FormFile as FormFile
from ._base import RequestSpec as RequestSpec
from ._base import Response as Response
from ._mock import MockRequest as MockRequest
from ._mock import MockResponse as MockResponse
from ._mock import MockTransport as MockTransport

if TYPE_CHECKING:
    from ._aiohttp import AiohttpTransport as AiohttpTransport


def __getattr__(name: str) -> Any:
    """``AiohttpTransport`` on first use: importing aioface does not import aiohttp (PEP 562)."""
    if name == "AiohttpTransport":
        from ._aiohttp import AiohttpTransport

        return AiohttpTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AiohttpTransport",
    "AsyncTransport",
    "FormFile",
    "MockRequest",
    "MockResponse",
    "MockTransport",
    "RequestSpec",
    "Response",
]
