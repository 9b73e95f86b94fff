"""The provider seam: what a provider declares (:class:`ProviderSpec`) and what it may use
(:class:`ProviderContext`); the adapters' helpers (``_helpers``) and the batch and bench
operations (``_ops``) are re-exported from here.

A provider is one package under ``aioface/providers/`` (or a third party's, registered through
the ``aioface.providers`` entry-point group). Nothing above the providers names one: the client,
batch, bench and the CLI read the registry.
"""

from __future__ import annotations

import copy
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

from .. import _otel
from .._config import KEY, env_prefix, provider_env
from .._dispatch import Dispatch, Endpoint, ErrorParser
from .._errors import AiofaceError, ConfigurationError
from .._options import Options, Settings, StatusCallback, resolve
from .._options import current as current_scope
from .._types import ImageResult, TaskEvent, TaskStatus
from ..limits import Limiter, Rate, parse_limits
from ..results._check import image_size
from ..results._dest import Dest
from ..results._stream import CHUNK, Saved, save_stream, sink_writer
from ..tasks._scheduler import Scheduler
from ..transports._base import RequestSpec, Response
from ._helpers import decode_json as decode_json
from ._helpers import decode_json_object as decode_json_object
from ._helpers import header as header
from ._helpers import require_choice as require_choice
from ._helpers import require_int as require_int
from ._ops import BatchOp as BatchOp
from ._ops import BatchRun as BatchRun
from ._ops import BenchMake as BenchMake
from ._ops import BenchOp as BenchOp
from ._ops import result_op as result_op

T = TypeVar("T")
N = TypeVar("N", bound="ProviderNamespace")
log = logging.getLogger("aioface")


class Secret:
    """A key that never shows itself in reprs or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value or None

    def get(self) -> str | None:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret(None)"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return self._value is not None


class Hub(Protocol):
    """What the client shares with every provider: the dispatcher and the limiter factory."""

    @property
    def dispatch(self) -> Dispatch: ...

    @property
    def download_endpoint(self) -> Endpoint: ...

    def make_limiter(self, provider: str, key: str | None, rates: tuple[Rate, ...], adaptive: bool) -> Limiter: ...

    def load_meta(self, provider: str, key: str | None) -> dict[str, str]: ...

    def save_meta(self, provider: str, key: str | None, values: Mapping[str, str]) -> None: ...


class ProviderContext:
    """A provider namespace's narrow view of the client: its key, base URL, limiter, settings, I/O."""

    def __init__(
        self,
        spec: ProviderSpec,
        hub: Hub,
        *,
        key: Secret,
        base_url: str,
        settings: Settings,
        explicit_limits: tuple[Rate, ...] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.base_url = base_url
        self._settings = settings
        self.explicit_limits = explicit_limits
        #: Provider-specific options (e.g. Face Studio's ``tier``).
        self.options: Mapping[str, Any] = dict(options or {})
        self._key = key
        self._hub = hub
        self._endpoint: Endpoint | None = None
        self._namespace: ProviderNamespace | None = None
        #: The overrides of the view this context serves (None: the client's own context).
        self._overrides: Options | None = None
        #: The client's own context (a view's shares its endpoint, limiter and namespace hooks).
        self._root: ProviderContext = self
        self._scheduler: Scheduler | None = None  # the root's: every wait of this provider

    def __repr__(self) -> str:
        return f"ProviderContext({self.name!r}, {self.base_url!r}, key={'set' if self._key else 'none'})"

    def bind(self, namespace: ProviderNamespace) -> None:
        """Attach the namespace whose hooks (rates before any answer, headers) this context uses."""
        self._namespace = namespace

    def view(self, overrides: Options) -> ProviderContext:
        """This context for a view (``client.with_options``): the same key, endpoint, limiter and
        state, its calls resolved with ``overrides`` (on top of those the view was made from)."""
        ctx = copy.copy(self)
        ctx._overrides = overrides
        ctx._root = self._root
        return ctx

    @property
    def overrides(self) -> Options | None:
        """The overrides this context's calls run with (a view's), None for the client's own."""
        return self._overrides

    @property
    def settings(self) -> Settings:
        """The settings for a call now: the client's, with the overrides in force (a scope's, then
        this view's) on top. Read it once per call: every request of the call gets the same."""
        if self._overrides is None and current_scope() is None:
            return self._settings
        return resolve(self._settings, self._overrides)

    async def status(self, status: TaskStatus, *, task_id: str | None = None, code: int | None = None) -> None:
        """Tell the ``on_status`` callback in force (if any) that a task moved on.

        A callback that raises is logged, never allowed to lose the task."""
        cb = self.settings.on_status
        if cb is not None:
            await self._tell(cb, status, task_id=task_id, code=code)

    async def _tell(
        self, cb: StatusCallback, status: TaskStatus, *, task_id: str | None = None, code: int | None = None
    ) -> None:
        event = TaskEvent(self.name, status, task_id, code, time.monotonic())
        try:
            out = cb(event)
            if inspect.isawaitable(out):
                await out
        except Exception:
            log.exception("%s: on_status callback failed on %s", self.name, status)

    @property
    def has_key(self) -> bool:
        return bool(self._key)

    def key(self, *, required: bool = True) -> str | None:
        """The key, or :class:`ConfigurationError` naming the variable when required and missing."""
        k = self._key.get()
        if required and not k:
            raise ConfigurationError(f"no {self.name} key: pass it to Client() or set {self.spec.key_env}")
        return k

    @property
    def endpoint(self) -> Endpoint:
        """The core's view of this provider (its limiter is made on first use; views share it)."""
        if self._root is not self:
            return self._root.endpoint
        ep = self._endpoint
        if ep is None:
            ns = self._namespace
            if self.explicit_limits is not None:
                rates, adaptive = self.explicit_limits, False
            elif ns is not None:
                rates, adaptive = ns.initial_rates()
            else:
                rates, adaptive = parse_limits(self.spec.default_limits), self.spec.adaptive
            limiter = self._hub.make_limiter(self.name, self._key.get(), rates, adaptive)
            if self.explicit_limits is None and ns is not None and ns.rates_assumed():
                # Guessed (or remembered) limits: one request at a time, within them, until an answer tells.
                limiter.probe_first(ns.shared_facts)
            hook = ns.on_headers if ns is not None and type(ns).on_headers is not ProviderNamespace.on_headers else None
            label = ns.tier_label if ns is not None else None
            ep = self._endpoint = Endpoint(self.name, limiter, self.spec.parse_error, hook, label)
        return ep

    @property
    def limiter(self) -> Limiter:
        return self.endpoint.limiter

    @property
    def scheduler(self) -> Scheduler:
        """The one scheduler of this provider's single-task waits (made on first use; views share it)."""
        root = self._root
        if root._scheduler is None:
            root._scheduler = Scheduler(self.name)
        return root._scheduler

    def close_waits(self) -> None:
        """The client is closing: every wait still registered ends with ClientClosedError."""
        root = self._root
        if root._scheduler is not None:
            root._scheduler.close()
            root._scheduler = None

    def load_meta(self) -> dict[str, str]:
        """Small facts an earlier client learned about this provider and key (e.g. its tier), kept
        with the persisted budget per provider and hashed key; {} if none. Hints, not facts: an
        answer may say otherwise (see :meth:`ProviderNamespace.rates_assumed`)."""
        return self._hub.load_meta(self.name, self._key.get())

    def save_meta(self, **values: str) -> None:
        """Keep small facts about this provider and key for the next client (when limits persist)."""
        self._hub.save_meta(self.name, self._key.get(), values)

    def apply_rates(self, rates: tuple[Rate, ...]) -> bool:
        """Switch the limiter to ``rates`` (learned from an answer) unless limits were given."""
        if self.explicit_limits is not None:
            return False
        self.limiter.set_rates([r.scaled(self.settings.time_scale) for r in rates])
        return True

    async def call(self, spec: RequestSpec, handle: Callable[[Response], Awaitable[T]]) -> T:
        """Send through this provider's limiter, with retries; ``handle`` reads a 2xx answer."""
        return await self._hub.dispatch.call(spec, self.endpoint, handle, settings=self.settings)

    @property
    def connections(self) -> int:
        """The connection pool's size (and each provider's gate): how many requests can be in flight."""
        return self._hub.dispatch.connections

    def admit(self, at: float) -> Awaitable[None]:
        """Wait for a place in this provider's gate, no earlier than ``at`` (``anyio.current_time()``):
        the task wakes once, when its time has come and a connection is free. The place is then
        the caller's to pass to the next :meth:`call_json` (``admitted=True``) or to :meth:`release`."""
        return self._hub.dispatch.gate(self.endpoint).acquire(at)

    def release(self) -> None:
        """Give back a place taken with :meth:`admit` that no request used."""
        self._hub.dispatch.gate(self.endpoint).release()

    def call_json(
        self,
        spec: RequestSpec,
        parse: Callable[[int, Mapping[str, str], bytes], T],
        *,
        status: TaskStatus | None = None,
        admitted: bool = False,
    ) -> Coroutine[Any, Any, T]:
        """Send and parse a small JSON answer with ``parse(status, headers, body)``; ``status``: a
        task event emitted once the request has its rate-limit slot and leaves; ``admitted``:
        through the gate place the caller took with :meth:`admit` (given back whatever happens).
        The dispatcher's coroutine itself (to await): no frame of its own that only forwards."""

        async def handle(resp: Response) -> T:
            return parse(resp.status, resp.headers, await resp.read())

        settings = self.settings
        return self._hub.dispatch.call(
            spec,
            self.endpoint,
            handle,
            on_sent=self._sent_event(status, settings),
            admitted=admitted,
            settings=settings,
        )

    def _sent_event(self, status: TaskStatus | None, settings: Settings) -> Callable[[], Awaitable[None]] | None:
        if status is None or settings.on_status is None:
            return None
        return partial(self._tell, settings.on_status, status)

    async def call_image(
        self,
        spec: RequestSpec,
        dest: Dest,
        *,
        fields: Callable[[Mapping[str, str]], Mapping[str, Any]] | None = None,
    ) -> ImageResult:
        """Send ``spec`` and stream its image answer to ``dest`` (any :data:`Dest`: a file whose
        suffix comes from the content when it has none, a folder, None for memory, a file object
        or sink); ``fields(headers)`` adds result fields such as a request id, which also names
        the file in a folder, and is set on an error that keeps the (paid) image from ``dest``."""
        settings = self.settings  # read once: the options in force do not change during a call
        max_bytes = settings.max_download_bytes
        timeout = spec.timeout if spec.timeout is not None else settings.timeout
        told = settings.on_status  # no callback: no status events to build
        dest = sink_writer(dest)  # one for every attempt: a retry never writes after the last one's bytes

        async def handle(resp: Response) -> ImageResult:
            if told is not None:
                await self._tell(told, "downloading")
            headers = resp.headers
            extra = dict(fields(headers)) if fields is not None else {}
            try:
                saved = await save_stream(
                    resp.iter_chunks(CHUNK),
                    dest,
                    name=extra.get("task_id") or extra.get("request_id"),
                    content_length=resp.content_length,
                    content_encoding=header(headers, "Content-Encoding"),
                    max_bytes=max_bytes,
                    timeout=timeout,
                )
            except AiofaceError as exc:
                exc.add_ids(task_id=extra.get("task_id"), request_id=extra.get("request_id"), provider=self.name)
                raise
            result = self._result(saved, None, extra)
            if told is not None:
                await self._tell(told, "done")
            return result

        on_sent = self._sent_event("processing", settings)
        return await self._hub.dispatch.call(spec, self.endpoint, handle, on_sent=on_sent, settings=settings)

    def _result(self, saved: Saved, source_url: str | None, fields: Mapping[str, Any]) -> ImageResult:
        dims = saved.dimensions or (image_size(saved.path) if saved.path is not None else None)
        return ImageResult(
            provider=self.name,
            path=saved.path,
            bytes=saved.size,
            format=saved.format,
            width=dims[0] if dims else None,
            height=dims[1] if dims else None,
            source_url=source_url,
            data=saved.data,
            **fields,
        )

    async def fetch(self, spec: RequestSpec, handle: Callable[[Response], Awaitable[T]]) -> T:
        """Send to a host that is not the provider's API (an input image), unthrottled."""
        return await self._hub.dispatch.call(spec, self._hub.download_endpoint, handle, settings=self.settings)

    async def save(self, url: str, dest: Dest, *, expected_size: int | None = None, name: str | None = None) -> Saved:
        """Stream a result URL to ``dest`` (any :data:`Dest`; files atomically, suffix from the
        content; ``name`` names the file when ``dest`` is a folder)."""
        settings = self.settings
        return await self._hub.dispatch.download(
            url,
            dest,
            self._hub.download_endpoint,
            expected_size=expected_size,
            max_bytes=settings.max_download_bytes,
            name=name,
            settings=settings,
        )

    async def save_result(
        self,
        url: str,
        dest: Dest,
        *,
        expected_size: int | None = None,
        dimensions: tuple[int | None, int | None] = (None, None),
        download: bool = True,
        **fields: Any,
    ) -> ImageResult:
        """:meth:`save`, then an :class:`ImageResult` from this provider with ``fields``.

        ``download=False`` fetches nothing: the result carries ``url`` (as ``source_url``), the
        ``expected_size`` and ``dimensions`` the provider declared, and ``fields``.
        Tells ``on_status`` ``downloading`` before and ``done`` after. An error that keeps the
        image from ``dest`` carries ``task_id`` / ``request_id`` (from ``fields``) and ``url``
        as ``result_url``."""
        task_id = fields.get("task_id")
        if not download:
            result = ImageResult(
                self.name, None, expected_size, None, dimensions[0], dimensions[1], source_url=url, **fields
            )
            told = self.settings.on_status  # what status() does, without a coroutine when nobody listens
            if told is not None:
                await self._tell(told, "done", task_id=task_id)
            return result
        await self.status("downloading", task_id=task_id)
        request_id = fields.get("request_id")
        try:
            saved = await self.save(url, dest, expected_size=expected_size, name=task_id or request_id)
        except AiofaceError as exc:  # paid work whose result is not delivered: say how to fetch it again
            exc.add_ids(task_id=task_id, request_id=request_id, result_url=url, provider=self.name)
            raise
        result = self._result(saved, url, fields)
        await self.status("done", task_id=task_id)
        return result


class ProviderNamespace:
    """Base of the public per-provider objects (``client.facestudio`` ...).

    A view's namespace (``client.with_options(...).facestudio``) is an instance of the same class
    whose context carries the view's overrides and whose other state (``__dict__``: a tier learned,
    say) is the client's namespace's own, shared."""

    __slots__ = ("__dict__", "_ctx")

    def __init__(self, ctx: ProviderContext) -> None:
        self._ctx = ctx
        ctx.bind(self)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if _otel.ENABLED:  # a span per public call, only where opentelemetry-api is installed
            _otel.trace_methods(cls)

    def _view(self: N, ctx: ProviderContext) -> N:
        """This namespace for a view: the same class and state, calls made through ``ctx``."""
        view = object.__new__(type(self))
        view._ctx = ctx
        view.__dict__ = self.__dict__
        return view

    def initial_rates(self) -> tuple[tuple[Rate, ...], bool]:
        """(rates, adaptive) before any answer came: the spec's defaults unless overridden."""
        return parse_limits(self._ctx.spec.default_limits), self._ctx.spec.adaptive

    def rates_assumed(self) -> bool:
        """True when the rates of :meth:`initial_rates` are a guess an answer will confirm or correct
        (a tier assumed, or remembered from an earlier run): the first request then goes through
        whatever those rates say, so that a wrong guess cannot keep the right answer from coming."""
        return False

    def shared_facts(self, facts: Mapping[str, str]) -> None:
        """What the processes sharing this key know now (read while the rates are a guess): a
        provider may take a tier another process confirmed (:meth:`ProviderContext.apply_rates`)."""

    def tier_label(self) -> str | None:
        """What the provider calls the limits in force (a tier such as ``"Anon"``), shown when a
        request waits for a slot; None for a provider without tiers."""
        return None

    def on_headers(self, headers: Mapping[str, str]) -> None:
        """Called with every answer's headers (override to learn tiers and the like)."""


@dataclass(frozen=True)
class ProviderSpec:
    """Everything the rest of aioface needs to know about one provider."""

    name: str
    #: ``namespace(ctx)`` builds the public object reached as ``client.<name>``.
    namespace: Callable[[ProviderContext], ProviderNamespace]
    parse_error: ErrorParser
    default_base_url: str
    key_env: str = ""
    key_required: bool = True
    #: Limits before any answer (providers that publish none: a guess, halved on each 429).
    default_limits: str = "5/second"
    adaptive: bool = True
    batch_ops: tuple[BatchOp, ...] = ()
    bench: BenchOp | None = None
    #: Named tiers and their limits, where the provider publishes them (``aioface limits`` shows them).
    tiers: Mapping[str, tuple[Rate, ...]] = field(default_factory=dict)
    #: ``"module:function"`` that mounts this provider's routes in the emulator app.
    emulator: str | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or not self.name.islower():
            raise ConfigurationError(f"provider name must be a lower-case identifier, got {self.name!r}")
        if not self.key_env:
            object.__setattr__(self, "key_env", provider_env(self.name, KEY))

    @property
    def env_prefix(self) -> str:
        """``AIOFACE_<NAME>_``: how this provider's variables (``_BASE_URL``, ``_LIMITS``...) start."""
        return env_prefix(self.name)


__all__ = [
    "BatchOp",
    "BenchMake",
    "BenchOp",
    "Hub",
    "ProviderContext",
    "ProviderNamespace",
    "ProviderSpec",
    "Secret",
    "Settings",
    "decode_json",
    "decode_json_object",
    "header",
    "require_choice",
    "result_op",
    "require_int",
]
