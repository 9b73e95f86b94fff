"""Rate limits (public ``aioface.limits``): the rate grammar, the limiter, and where limits are kept.

``parse_limits("5/minute,120/day")`` gives :class:`Rate` objects; a :class:`RateLimiter` holds
several windows at once, FIFO; a :class:`LimitsStore` makes the limiters of a client, in this process
(:class:`LocalStore`, with long windows saved to disk) or shared by processes and hosts
(:class:`RedisStore`, the ``redis`` extra).
"""

from typing import TYPE_CHECKING, Any

from ._local import LocalStore as LocalStore
from ._local import RateLimiter as RateLimiter
from ._protocols import Limiter as Limiter
from ._protocols import LimitsStore as LimitsStore
from ._rate import Rate as Rate
from ._rate import parse_limits as parse_limits

if TYPE_CHECKING:
    from .redis import RedisStore as RedisStore


def __getattr__(name: str) -> Any:
    """``RedisStore`` on first use (PEP 562): a client that keeps its limits here never imports it."""
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Limiter", "LimitsStore", "LocalStore", "Rate", "RateLimiter", "RedisStore", "parse_limits"]
