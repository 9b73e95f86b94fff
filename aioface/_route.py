"""One swap over several providers: ``failover`` (the next only when nothing was created) and ``spread``.

The rule for moving on is read from the error alone (:func:`nothing_created`): a task id (or a
result URL) on the error means paid work exists, and that work is the caller's; no other provider
is asked. The providers themselves come from the registry (every one offering ``swap``), so nothing
here names one.
"""

from __future__ import annotations

import inspect
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

from . import _otel
from ._errors import (
    AiofaceError,
    APIError,
    ConfigurationError,
    InvalidRequestError,
    LimiterTimeoutError,
    RateLimitError,
    ServerError,
    TransportError,
)
from ._types import ImageResult, TaskEvent
from .limits import Limiter
from .providers import operations
from .results._dest import Dest


class Client(Protocol):
    """What routing needs of an :class:`aioface.Client` (or a view): limiters and a view with a callback."""

    def limiter(self, provider: str) -> Limiter: ...

    def with_options(self, *, on_status: Callable[[TaskEvent], object] | None = None) -> Any: ...


log = logging.getLogger("aioface")

Route = Literal["failover", "spread"]
ROUTES: tuple[Route, ...] = ("failover", "spread")
#: The operation routed (every provider offering it takes ``swap(dest, source=, target=)``).
OP = "swap"

__all__ = ["OP", "ROUTES", "Route", "Router", "check_route", "nothing_created", "swap_providers", "tag_provider"]


def swap_providers() -> list[str]:
    """Every registered provider offering a swap, in registry order (the default route)."""
    return [spec.name for spec, _ in operations().get(OP, [])]


def nothing_created(exc: BaseException) -> bool:
    """True when ``exc`` proves that the provider created nothing and charged nothing, so another
    provider may be asked: no connection was made (``sent`` is False), the limiter gave no slot
    in time, the call was refused locally (a bad input for this provider, no key), or the provider
    answered the submit itself with a 429 (quota or credit spent included) or a 5xx.

    Never once a task exists: an error carrying ``task_id`` (or a ``result_url``) is about paid
    work, whatever its type: a 5xx to a poll, a task that failed or timed out, a result that could
    not be saved. Nor a request that may have arrived (a timeout or a cut answer after sending).
    """
    if not isinstance(exc, AiofaceError) or exc.task_id or exc.result_url:
        return False
    if isinstance(exc, TransportError):
        return not exc.sent
    if isinstance(exc, APIError):
        # Result downloads answer as provider "download": by then the work was paid for.
        return exc.provider != "download" and isinstance(exc, (RateLimitError, ServerError))
    return isinstance(exc, (LimiterTimeoutError, InvalidRequestError, ConfigurationError))


def tag_provider(exc: AiofaceError, provider: str) -> None:
    """Record on an error about paid work which provider holds the task (``served_by``), so that the
    journal can name it (an error from a result download names no provider of its own)."""
    if (exc.task_id or exc.result_url) and not getattr(exc, "served_by", None):
        exc.served_by = provider  # type: ignore[attr-defined]


def _interval(limiter: Limiter) -> float:
    """Seconds per request the tightest window of ``limiter`` allows in the long run."""
    limits = limiter.effective_limits or tuple(r.limit for r in limiter.rates)
    return max((r.period / max(1, n) for r, n in zip(limiter.rates, limits, strict=False)), default=0.0)


class Router:
    """What routed calls share across a client and its views: the calls each provider has been
    given whose submit has not left yet (so that calls routed at the same instant spread out)."""

    def __init__(self) -> None:
        self.pending: Counter[str] = Counter()

    def expected_wait(self, name: str, limiter: Limiter) -> float:
        """Seconds a call routed to ``name`` now would wait for its slot (an estimate): the
        limiter's own wait (read only) plus one interval per call already waiting in front."""
        probe: Callable[[], float | None] | None = getattr(limiter, "seconds_until_free", None)
        interval = _interval(limiter)
        free = probe() if probe is not None else 0.0
        if free is None:  # only an answer in flight frees a slot: about one interval
            free = interval
        ahead = max(self.pending[name], limiter.waiting)
        return free + ahead * interval

    def order(self, client: Client, names: Sequence[str], route: Route) -> list[str]:
        """``names`` in the order to try them: as given (failover), or soonest slot first (spread;
        ties keep the given order)."""
        if route == "failover":
            return list(names)
        waits = {n: self.expected_wait(n, client.limiter(n)) for n in names}
        return sorted(names, key=lambda n: waits[n])

    async def swap(
        self,
        client: Client,
        dest: Dest,
        *,
        source: Any,
        target: Any,
        providers: Sequence[str] | None,
        route: Route,
        on_status: Callable[[TaskEvent], object] | None,
        **kwargs: Any,
    ) -> ImageResult:
        """See :meth:`aioface.Client.swap`."""
        names = check_route(providers, route)
        if not _otel.ENABLED:
            return await self._route(client, dest, source, target, names, route, on_status, kwargs, None)
        with _otel.route_span(route, names) as served:
            return await self._route(client, dest, source, target, names, route, on_status, kwargs, served)

    async def _route(
        self,
        client: Client,
        dest: Dest,
        source: Any,
        target: Any,
        names: list[str],
        route: Route,
        on_status: Callable[[TaskEvent], object] | None,
        kwargs: dict[str, Any],
        served: Callable[[str, Sequence[str]], None] | None,
    ) -> ImageResult:
        tried: list[tuple[str, AiofaceError]] = []
        for name in self.order(client, names, route):
            try:
                result = await self._one(client, name, dest, source, target, on_status, kwargs)
            except AiofaceError as exc:
                if not nothing_created(exc) or len(tried) == len(names) - 1:
                    tag_provider(exc, name)
                    _note(exc, tried)  # paid work exists (the caller's), or no provider is left
                    raise
                log.info("aioface swap: %s created nothing (%s); trying the next provider", name, exc.code)
                if served is not None:
                    _otel.event("aioface.failover", {"aioface.provider": name, "aioface.error": str(exc.code)})
                tried.append((name, exc))
                continue
            if tried:
                result.extra["failed_over"] = [n for n, _ in tried]
            if served is not None:
                served(name, [n for n, _ in tried])
            return result
        raise AssertionError("unreachable: the last provider's error is raised")

    async def _one(
        self,
        client: Client,
        name: str,
        dest: Dest,
        source: Any,
        target: Any,
        on_status: Callable[[TaskEvent], object] | None,
        kwargs: dict[str, Any],
    ) -> ImageResult:
        """One provider's swap; counted as pending until its first event (its submit has left)."""
        self.pending[name] += 1
        left = False

        async def tell(event: TaskEvent) -> None:
            nonlocal left
            if not left:
                left = True
                self.pending[name] -= 1
            if on_status is not None:
                out = on_status(event)
                if inspect.isawaitable(out):
                    await out

        try:
            ns: Any = client.with_options(on_status=tell).provider(name)  # every provider offering swap has one
            result: ImageResult = await ns.swap(dest, source=source, target=target, **kwargs)
            return result
        finally:
            if not left:
                self.pending[name] -= 1


def check_route(providers: Sequence[str] | None, route: str) -> list[str]:
    """The providers to route over, checked: each offers a swap, none twice, at least one."""
    if route not in ROUTES:
        raise InvalidRequestError(f"route must be one of {', '.join(ROUTES)}, got {route!r}", param="route")
    offered = swap_providers()
    if providers is None:
        return offered
    if isinstance(providers, str):
        providers = [providers]
    names = list(providers)
    unknown = [n for n in names if n not in offered]
    if unknown:
        raise InvalidRequestError(
            f"provider(s) {', '.join(map(repr, unknown))} offer no swap; known: {', '.join(offered)}",
            param="providers",
        )
    if not names or len(set(names)) != len(names):
        raise InvalidRequestError("providers must name at least one provider, each once", param="providers")
    return names


def _note(exc: AiofaceError, tried: Sequence[tuple[str, AiofaceError]]) -> None:
    """Say on ``exc`` what the providers tried before it answered (nothing was created there)."""
    for name, earlier in tried:
        exc.add_note(f"{name} was tried first and created nothing: {type(earlier).__name__}: {earlier}")
