"""Per-call options (``client.with_options(...)``): overrides carried by a context variable.

A view made by :meth:`aioface.Client.with_options` shares the client's transport, limiters,
provider state and counters; only its calls see the overrides, because each call runs with them
set in a :class:`contextvars.ContextVar` (so do tasks the call starts, which copy the context).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from typing import Any

from ._retry import RetryPolicy
from ._types import TaskEvent
from .limits import RateLimiter
from .tasks._polling import PollPolicy


@dataclass(frozen=True)
class Options:
    """Overrides of the client's settings; None leaves the client's value."""

    timeout: float | None = None
    retry: RetryPolicy | None = None
    poll: PollPolicy | None = None
    acquire_timeout: float | None = None
    max_download_bytes: int | None = None
    on_status: Callable[[TaskEvent], object] | None = None
    #: Extra limiters for this view's calls, per provider, on top of the client's shared ones
    #: (a view of a view holds its calls to both views' limits).
    limiters: Mapping[str, tuple[RateLimiter, ...]] | None = None

    def merged(self, inner: Options) -> Options:
        """These options with ``inner``'s set fields on top; limiters add up (every one is kept)."""
        given = {f.name: getattr(inner, f.name) for f in fields(inner) if getattr(inner, f.name) is not None}
        if self.limiters and inner.limiters:
            outer, more = self.limiters, inner.limiters
            given["limiters"] = {
                n: outer.get(n, ()) + tuple(x for x in more.get(n, ()) if x not in outer.get(n, ()))
                for n in dict.fromkeys([*outer, *more])
            }
        return replace(self, **given) if given else self


_CURRENT: ContextVar[Options | None] = ContextVar("aioface_options", default=None)


def current() -> Options | None:
    """The overrides in force for the running call, if any."""
    return _CURRENT.get()


@contextlib.contextmanager
def applied(options: Options) -> Iterator[None]:
    """Run the block with ``options`` on top of any already in force."""
    outer = _CURRENT.get()
    token = _CURRENT.set(outer.merged(options) if outer is not None else options)
    try:
        yield
    finally:
        _CURRENT.reset(token)


class OptionsProxy:
    """A provider namespace whose coroutine methods run with ``options`` applied."""

    __slots__ = ("_options", "_target")

    def __init__(self, target: object, options: Options) -> None:
        self._target = target
        self._options = options

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        options = self._options

        @functools.wraps(attr)
        async def call(*args: Any, **kwargs: Any) -> Any:
            with applied(options):
                return await attr(*args, **kwargs)

        return call

    def __repr__(self) -> str:
        return f"{self._target!r} with {self._options!r}"


__all__ = ["Options", "OptionsProxy", "applied", "current"]
