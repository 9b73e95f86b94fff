"""aioface: an asyncio-native, rate-limit-exact client for face-image AI APIs."""

from typing import TYPE_CHECKING, Any

from ._client import Client as Client
from ._dispatch import LimitWait as LimitWait
from ._dispatch import RequestTiming as RequestTiming
from ._errors import AiofaceError as AiofaceError
from ._errors import APIError as APIError
from ._errors import AuthenticationError as AuthenticationError
from ._errors import BadRequestError as BadRequestError
from ._errors import ClientClosedError as ClientClosedError
from ._errors import ConfigurationError as ConfigurationError
from ._errors import ConnectError as ConnectError
from ._errors import DownloadError as DownloadError
from ._errors import FeedError as FeedError
from ._errors import GenerationTimeoutError as GenerationTimeoutError
from ._errors import ImageRejectedError as ImageRejectedError
from ._errors import InvalidRequestError as InvalidRequestError
from ._errors import LimiterTimeoutError as LimiterTimeoutError
from ._errors import NotFoundError as NotFoundError
from ._errors import PermissionDeniedError as PermissionDeniedError
from ._errors import ProtocolError as ProtocolError
from ._errors import QuotaExceededError as QuotaExceededError
from ._errors import RateLimitError as RateLimitError
from ._errors import RequestTimeoutError as RequestTimeoutError
from ._errors import ServerError as ServerError
from ._errors import StorageError as StorageError
from ._errors import TaskError as TaskError
from ._errors import TaskFailedError as TaskFailedError
from ._errors import TaskTimeoutError as TaskTimeoutError
from ._errors import TransportError as TransportError
from ._retry import RetryPolicy as RetryPolicy
from ._types import FaceAnalysis as FaceAnalysis
from ._types import FaceInfo as FaceInfo
from ._types import ImageResult as ImageResult
from ._types import Liveness as Liveness
from ._types import Point as Point
from ._types import TaskEvent as TaskEvent
from .limits import LimitsStore as LimitsStore
from .limits import LocalStore as LocalStore
from .limits import Rate as Rate
from .limits import RateLimiter as RateLimiter
from .limits import parse_limits as parse_limits
from .providers.acedata import AceData as AceData
from .providers.acedata import CallbackReceiver as CallbackReceiver
from .providers.ailab import AILab as AILab
from .providers.ailab import Credits as Credits
from .providers.facestudio import TIERS as TIERS
from .providers.facestudio import FaceStudio as FaceStudio
from .tasks._fanout import FanOut as FanOut
from .tasks._fanout import Outcome as Outcome
from .tasks._learn import DurationLearners as DurationLearners
from .tasks._polling import PollPolicy as PollPolicy
from .tasks._waitmany import WaitMany as WaitMany
from .transports import MockRequest as MockRequest
from .transports import MockResponse as MockResponse
from .transports import MockTransport as MockTransport

if TYPE_CHECKING:
    from .limits import RedisStore as RedisStore
    from .transports import AiohttpTransport as AiohttpTransport

    __version__: str

#: Public names imported on first use (PEP 562), so ``import aioface`` does not import aiohttp.
_LAZY = {"AiohttpTransport": "aioface.transports", "RedisStore": "aioface.limits"}


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("aioface")
    except Exception:  # pragma: no cover - running from a source tree without metadata
        return "0+unknown"


__all__ = [
    "TIERS",
    "APIError",
    "AILab",
    "AceData",
    "AiofaceError",
    "AiohttpTransport",
    "AuthenticationError",
    "BadRequestError",
    "CallbackReceiver",
    "Client",
    "ClientClosedError",
    "ConfigurationError",
    "ConnectError",
    "Credits",
    "DownloadError",
    "DurationLearners",
    "FaceAnalysis",
    "FaceInfo",
    "FaceStudio",
    "FanOut",
    "FeedError",
    "GenerationTimeoutError",
    "ImageRejectedError",
    "ImageResult",
    "InvalidRequestError",
    "LimitWait",
    "LimiterTimeoutError",
    "Liveness",
    "LimitsStore",
    "LocalStore",
    "MockRequest",
    "MockResponse",
    "MockTransport",
    "NotFoundError",
    "Outcome",
    "PermissionDeniedError",
    "Point",
    "PollPolicy",
    "ProtocolError",
    "QuotaExceededError",
    "Rate",
    "RateLimitError",
    "RateLimiter",
    "RedisStore",
    "RequestTimeoutError",
    "RequestTiming",
    "RetryPolicy",
    "ServerError",
    "StorageError",
    "TaskError",
    "TaskEvent",
    "TaskFailedError",
    "TaskTimeoutError",
    "TransportError",
    "WaitMany",
    "parse_limits",
]


def _report(obj: Any) -> None:
    """Public classes and functions say ``aioface.Client``, not ``aioface._client.Client``, in
    reprs and tracebacks (anyio's habit); they are importable from there, so pickling holds."""
    import inspect

    if inspect.isclass(obj) or inspect.isfunction(obj):
        obj.__module__ = __name__


def __getattr__(name: str) -> Any:
    """The lazy public names (:data:`_LAZY`), imported, reported as ``aioface``'s and kept."""
    if name == "__version__":  # read from the package metadata when asked for, not at import
        globals()[name] = v = _version()
        return v
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    obj = getattr(importlib.import_module(where), name)
    _report(obj)
    globals()[name] = obj
    return obj


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


for _name in __all__:
    if _name not in _LAZY:
        _report(globals()[_name])
del _name
