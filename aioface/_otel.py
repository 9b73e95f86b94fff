"""OpenTelemetry, when ``opentelemetry-api`` is installed: spans per provider call, events, metrics.

Everything goes through the global tracer and meter providers (nothing to configure: an
application that set up OpenTelemetry sees aioface in its traces). Without the package,
:data:`ENABLED` is False, no method is wrapped and the hooks in the dispatcher are skipped by one
test of a module constant: nothing is imported and nothing costs.

Spans: ``aioface <provider>.<operation>`` for each public call of a provider namespace (attributes
``aioface.provider``, ``aioface.operation``, ``aioface.task_id``, ``aioface.attempts``,
``aioface.polls``, ``aioface.limiter.wait_seconds``, ``aioface.bytes``, ``aioface.status``), and
``aioface swap`` for a routed :meth:`aioface.Client.swap` (``aioface.route``, ``aioface.providers``,
the provider that served it). Events: ``aioface.rate_limited`` (a 429), ``aioface.slot_wait`` (a
request waited for its rate-limit slot), ``aioface.retry``, ``aioface.failover``.
Metrics: ``aioface.requests`` (by provider and status), ``aioface.rate_limited`` (429s),
``aioface.limiter.wait`` (seconds waited for a slot, a histogram), ``aioface.tasks.in_flight``
(provider calls in progress: submitted, waited for or downloading).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from importlib.util import find_spec
from types import ModuleType
from typing import Any, TypeVar

try:  # the API is imported on first use (~20 ms of every start-up otherwise): here, only looked for
    ENABLED = find_spec("opentelemetry.trace") is not None and find_spec("opentelemetry.metrics") is not None
except (ImportError, ValueError):  # the optional extra (aioface[otel]) is not installed
    ENABLED = False
# A provider named by these variables is made on the API's first get_*_provider() call.
_PROVIDER_ENV = any(v in os.environ for v in ("OTEL_PYTHON_TRACER_PROVIDER", "OTEL_PYTHON_METER_PROVIDER"))
_API = ("opentelemetry.trace", "opentelemetry.metrics")

trace: Any = None
metrics: Any = None
# Where the API keeps the global providers (None until one is set): read directly, because
# get_tracer_provider() / get_meter_provider() look up an environment variable on every call while
# none is set, which costs more than the rest of a call's tracing check.
_meter_state: ModuleType | None = None


def _load() -> None:
    """Import the API (once): before the first span, event or metric."""
    global trace, metrics, _meter_state
    if trace is not None:
        return
    from opentelemetry import metrics as metrics_api
    from opentelemetry import trace as trace_api

    try:
        from opentelemetry.metrics import _internal as meter_state
    except ImportError:  # pragma: no cover - another API layout: always assume someone listens
        meter_state = None  # type: ignore[assignment]
    trace, metrics, _meter_state = trace_api, metrics_api, meter_state


__all__ = ["ENABLED", "attempt", "event", "listening", "route_span", "trace_methods"]

T = TypeVar("T")
NAME = "aioface"
#: Waits for a slot shorter than this are not worth an event (the metric still records them).
SLOT_WAIT_EVENT = 0.001


@dataclass
class _Call:
    """What one traced call saw of its requests (a nested call's requests count in its parents too)."""

    provider: str
    attempts: int = 0
    polls: int = 0
    waited: float = 0.0
    first_path: str | None = None
    parent: _Call | None = None


_current: ContextVar[_Call | None] = ContextVar("aioface_otel_call", default=None)


class _Instruments:
    """The meters' instruments, made once, on first use (the global meter provider may come later:
    the API's proxy meter forwards to whichever is set)."""

    def __init__(self) -> None:
        _load()
        meter = metrics.get_meter(NAME)
        self.requests = meter.create_counter(
            "aioface.requests", "{request}", "HTTP requests sent, by provider and status"
        )
        self.throttled = meter.create_counter("aioface.rate_limited", "{response}", "HTTP 429 answers received")
        self.wait = meter.create_histogram(
            "aioface.limiter.wait", "s", "seconds a request waited for a rate-limit slot"
        )
        self.in_flight = meter.create_up_down_counter(
            "aioface.tasks.in_flight", "{call}", "provider calls in progress (submitted, waited for or downloading)"
        )


_instruments: _Instruments | None = None


def _meters() -> _Instruments:
    global _instruments
    if _instruments is None:
        _instruments = _Instruments()
    return _instruments


_heard = False


def listening() -> bool:
    """Whether a tracer or a meter provider is set (in code, or named by ``OTEL_PYTHON_*_PROVIDER``
    when aioface was imported).

    With the API alone every span is a no-op and every measurement is dropped, so aioface skips its
    spans and metrics until one is set; the check is made per call, so a provider set later is used
    from the next call on. A global provider, once set, cannot be taken back (OpenTelemetry refuses
    to replace it), so a yes is remembered."""
    global _heard
    if _heard:
        return True
    if not _PROVIDER_ENV and _API[0] not in sys.modules and _API[1] not in sys.modules:
        return False  # a provider is set through the API: while it is not imported, none is
    _load()
    if (
        _meter_state is None
        or getattr(trace, "_TRACER_PROVIDER", True) is not None
        or getattr(_meter_state, "_METER_PROVIDER", True) is not None
        or _PROVIDER_ENV
    ):
        _heard = True
    return _heard


def event(name: str, attributes: Mapping[str, Any]) -> None:
    """Add an event to the span in force (none: nothing)."""
    if trace is None and _API[0] not in sys.modules:
        return  # no span without the API
    _load()
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(name, dict(attributes))


def attempt(provider: str, path: str, waited: float, status: int | None, error: str | None) -> None:
    """One HTTP attempt ended (the dispatcher's hook): metrics, events, the call's counts."""
    m = _meters()
    attrs = {"aioface.provider": provider}
    m.requests.add(1, {**attrs, "aioface.status": str(status) if status is not None else (error or "error")})
    m.wait.record(max(0.0, waited), attrs)
    if status == 429:
        m.throttled.add(1, attrs)
        event("aioface.rate_limited", {**attrs, "http.path": path})
    if waited >= SLOT_WAIT_EVENT:
        event("aioface.slot_wait", {**attrs, "aioface.wait_seconds": waited})
    call = _current.get()
    while call is not None:
        if call.provider == provider:  # result downloads and input fetches count as bytes, not attempts
            call.attempts += 1
            if call.first_path is None:
                call.first_path = path
            elif path != call.first_path:
                call.polls += 1
        call.waited += waited
        call = call.parent


def polled(n: int) -> None:
    """``n`` polls of a task were sent for the call in progress (by the provider's scheduler, whose
    workers run outside the call's context): each is an attempt and a poll of that call."""
    call = _current.get()
    if call is not None:
        call.polls += n
        call.attempts += n


def _traced(op: str, fn: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., Coroutine[Any, Any, T]]:
    """``fn`` in a span. The coroutine is made at call time, as without the wrapper: wrong arguments
    raise TypeError where the call is written, not when it is awaited."""

    @functools.wraps(fn)
    def call(self: Any, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, T]:
        coro = fn(self, *args, **kwargs)
        if not listening():  # nobody to report to: the call as it is, no span, no extra frame
            return coro
        return _in_span(str(self._ctx.name), op, coro)

    marked: Callable[..., Coroutine[Any, Any, T]] = getattr(inspect, "markcoroutinefunction", lambda f: f)(call)
    return marked


async def _in_span(provider: str, op: str, coro: Coroutine[Any, Any, T]) -> T:
    attrs = {"aioface.provider": provider, "aioface.operation": op}
    _load()
    tracer = trace.get_tracer(NAME)
    seen = _Call(provider, parent=_current.get())
    token = _current.set(seen)
    meters = _meters()
    meters.in_flight.add(1, attrs)
    try:
        with tracer.start_as_current_span(f"aioface {provider}.{op}", kind=trace.SpanKind.CLIENT) as span:
            span.set_attributes(attrs)
            try:
                result = await coro
            except BaseException as exc:
                _finish(span, seen, getattr(exc, "task_id", None), None, str(getattr(exc, "code", type(exc).__name__)))
                raise
            _finish(span, seen, getattr(result, "task_id", None), getattr(result, "bytes", None), "ok")
            if isinstance(result, str) and op in ("submit", "submit_swap"):
                span.set_attribute("aioface.task_id", result)
            return result
    finally:
        meters.in_flight.add(-1, attrs)
        _current.reset(token)


def _finish(span: Any, seen: _Call, task_id: object, size: object, status: str) -> None:
    span.set_attribute("aioface.attempts", seen.attempts)
    span.set_attribute("aioface.polls", seen.polls)
    span.set_attribute("aioface.limiter.wait_seconds", seen.waited)
    span.set_attribute("aioface.status", status)
    if isinstance(task_id, str) and task_id:
        span.set_attribute("aioface.task_id", task_id)
    if isinstance(size, int):
        span.set_attribute("aioface.bytes", size)


def trace_methods(cls: type) -> None:
    """Wrap each public coroutine method defined by ``cls`` (a provider namespace) in a span."""
    for name, fn in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(fn):
            setattr(cls, name, _traced(name, fn))


@contextlib.contextmanager
def route_span(route: str, providers: Sequence[str]) -> Iterator[Callable[[str, Sequence[str]], None]]:
    """A span around a routed swap; yields ``served(provider, failed_over)`` to record the outcome."""
    _load()
    tracer = trace.get_tracer(NAME)
    with tracer.start_as_current_span("aioface swap", kind=trace.SpanKind.INTERNAL) as span:
        span.set_attributes({"aioface.operation": "swap", "aioface.route": route, "aioface.providers": list(providers)})

        def served(provider: str, failed_over: Sequence[str]) -> None:
            span.set_attribute("aioface.provider", provider)
            if failed_over:
                span.set_attribute("aioface.failed_over", list(failed_over))

        yield served
