"""Rate limits (public ``aioface.limits``): the rate grammar, the limiter, and where limits are kept.

``parse_limits("5/minute,120/day")`` gives :class:`Rate` objects; a :class:`RateLimiter` holds
several windows at once, FIFO; a :class:`LimitsStore` makes the limiters of a client, in this process
(:class:`LocalStore`, with long windows saved to disk) or shared by processes and hosts
(:class:`RedisStore`, the ``redis`` extra).
"""

from ._local import LocalStore as LocalStore
from ._local import RateLimiter as RateLimiter
from ._protocols import Limiter as Limiter
from ._protocols import LimitsStore as LimitsStore
from ._rate import Rate as Rate
from ._rate import parse_limits as parse_limits
from .redis import RedisStore as RedisStore

__all__ = ["Limiter", "LimitsStore", "LocalStore", "Rate", "RateLimiter", "RedisStore", "parse_limits"]
