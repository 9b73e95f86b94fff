"""Per-call settings: the ONE merge of a client's settings with ``with_options`` overrides.

A call reads :class:`Settings`: the client's, with the overrides in force on top, resolved once
per call by the provider context (``ProviderContext.settings``) and handed to the dispatcher.
Overrides come from two places, merged outer to inner: a scope (:func:`applied`, a context
variable: what ``view.map`` / ``view.fan_out`` put around the caller's function, and ``aioface
bench`` around its calls), then the view the call was made through (``client.with_options(...)``
binds its namespaces to its :class:`Options`, so whatever a view's method returns, a
``wait_many`` or an iterator, keeps the view's settings wherever it is used).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, fields, replace

from ._config import DEFAULT_TIMEOUT, check_overrides, check_policies
from ._retry import RetryPolicy
from ._types import TaskEvent
from .limits import Limiter
from .results._check import DEFAULT_MAX_BYTES
from .tasks._learn import DurationLearners
from .tasks._polling import PollPolicy

#: ``on_status(event)``: called (or awaited, if it returns an awaitable) on each task status change.
StatusCallback = Callable[[TaskEvent], object]


@dataclass(frozen=True)
class Options:
    """Overrides of the client's settings; None leaves the client's value (checked when made)."""

    timeout: float | None = None
    retry: RetryPolicy | None = None
    poll: PollPolicy | None = None
    acquire_timeout: float | None = None
    max_download_bytes: int | None = None
    on_status: StatusCallback | None = None
    #: Extra limiters for this view's calls, per provider, on top of the client's shared ones
    #: (a view of a view holds its calls to both views' limits).
    limiters: Mapping[str, tuple[Limiter, ...]] | None = None

    def __post_init__(self) -> None:
        check_overrides(
            timeout=self.timeout, acquire_timeout=self.acquire_timeout, max_download_bytes=self.max_download_bytes
        )
        check_policies(self.retry, self.poll)

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


def stacked(outer: Options | None, inner: Options | None) -> Options | None:
    """``inner`` on top of ``outer`` (either may be None)."""
    if outer is None or inner is None:
        return inner if outer is None else outer
    return outer.merged(inner)


@dataclass(frozen=True)
class Settings:
    """The settings one call runs with: the client's, with the overrides in force applied."""

    timeout: float = DEFAULT_TIMEOUT
    max_download_bytes: int = DEFAULT_MAX_BYTES
    poll: PollPolicy = field(default_factory=PollPolicy)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    time_scale: float = 1.0
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)
    #: Task durations learned per (provider, operation), for ``PollPolicy(learn=True)``.
    durations: DurationLearners = field(default_factory=DurationLearners, repr=False, compare=False)
    on_status: StatusCallback | None = None
    #: How long a call may wait for a rate-limit slot (None: as long as it takes).
    acquire_timeout: float | None = None
    #: A view's own limiters per provider, taken before the client's shared one.
    limiters: Mapping[str, tuple[Limiter, ...]] = field(default_factory=dict, repr=False, compare=False)
    #: The last :meth:`overridden` (its options and result): a scope's calls ask with the same options.
    _memo: tuple[Options, Settings] | None = field(default=None, init=False, repr=False, compare=False)

    def overridden(self, o: Options | None) -> Settings:
        """These settings with ``o``'s set fields on top (both are immutable: the same ``o`` gives the
        same settings, kept from the last call, since ``replace`` costs more than the request's
        other bookkeeping)."""
        if o is None:
            return self
        memo = self._memo
        if memo is not None and memo[0] is o:
            return memo[1]
        result = self._overridden(o)
        object.__setattr__(self, "_memo", (o, result))
        return result

    def _overridden(self, o: Options) -> Settings:
        return replace(
            self,
            timeout=self.timeout if o.timeout is None else o.timeout,
            max_download_bytes=self.max_download_bytes if o.max_download_bytes is None else o.max_download_bytes,
            poll=o.poll or self.poll,
            retry=o.retry or self.retry,
            on_status=o.on_status or self.on_status,
            acquire_timeout=self.acquire_timeout if o.acquire_timeout is None else o.acquire_timeout,
            limiters=o.limiters or self.limiters,
        )


_SCOPE: ContextVar[Options | None] = ContextVar("aioface_options", default=None)


def current() -> Options | None:
    """The overrides of the scope in force (:func:`applied`), if any."""
    return _SCOPE.get()


def resolve(base: Settings, own: Options | None) -> Settings:
    """What a call through a client or view with overrides ``own`` runs with, in the scope in force."""
    return base.overridden(stacked(_SCOPE.get(), own))


@contextlib.contextmanager
def applied(options: Options | None) -> Iterator[None]:
    """Run the block with ``options`` on top of any scope already in force (None: no change)."""
    if options is None:
        yield
        return
    token = _SCOPE.set(stacked(_SCOPE.get(), options))
    try:
        yield
    finally:
        _SCOPE.reset(token)


__all__ = ["Options", "Settings", "StatusCallback", "applied", "current", "resolve", "stacked"]
