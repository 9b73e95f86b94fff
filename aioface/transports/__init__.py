"""Transports: the one protocol requests cross (``AsyncTransport``), aiohttp's, and an in-memory one.

``aioface.transports`` is public: write a transport of your own against :class:`AsyncTransport`, or
answer requests in unit tests with :class:`MockTransport`. Nothing above this package imports aiohttp.
"""

from ._aiohttp import AiohttpTransport as AiohttpTransport
from ._base import AsyncTransport as AsyncTransport
from ._base import FormFile as FormFile
from ._base import RequestSpec as RequestSpec
from ._base import Response as Response
from ._mock import MockRequest as MockRequest
from ._mock import MockResponse as MockResponse
from ._mock import MockTransport as MockTransport

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
