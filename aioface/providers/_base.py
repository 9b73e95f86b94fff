"""The provider seam: what a provider declares (:class:`ProviderSpec`) and what it may use
(:class:`ProviderContext`), plus small validation helpers shared by the adapters.

A provider is one package under ``aioface/providers/`` (or a third party's, registered through
the ``aioface.providers`` entry-point group). Nothing above the providers names one: the client,
batch, bench and the CLI read the registry.
"""

from __future__ import annotations

import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

from multidict import CIMultiDict, CIMultiDictProxy

from .. import _json
from .._dispatch import Dispatch, Endpoint, ErrorParser
from .._errors import ConfigurationError, InvalidRequestError, ProtocolError
from .._options import current as current_options
from .._retry import RetryPolicy
from .._types import ImageResult, Result, TaskEvent, TaskStatus
from ..limits import Limiter, Rate, parse_limits
from ..results._download import CHUNK, DEFAULT_MAX_BYTES, Dest, Saved, image_size, save_stream
from ..tasks._polling import DurationLearners, PollPolicy
from ..transports._base import RequestSpec, Response

T = TypeVar("T")
_CASELESS = (CIMultiDict, CIMultiDictProxy)
log = logging.getLogger("aioface")

#: ``on_status(event)``: called (or awaited, if it returns an awaitable) on each task status change.
StatusCallback = Callable[[TaskEvent], object]


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


@dataclass(frozen=True)
class Settings:
    """Client-wide settings a provider reads."""

    timeout: float = 60.0
    max_download_bytes: int = DEFAULT_MAX_BYTES
    poll: PollPolicy = field(default_factory=PollPolicy)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    time_scale: float = 1.0
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)
    #: Task durations learned per (provider, operation), for ``PollPolicy(learn=True)``.
    durations: DurationLearners = field(default_factory=DurationLearners, repr=False, compare=False)
    on_status: StatusCallback | None = None


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

    def __repr__(self) -> str:
        return f"ProviderContext({self.name!r}, {self.base_url!r}, key={'set' if self._key else 'none'})"

    def bind(self, namespace: ProviderNamespace) -> None:
        """Attach the namespace whose hooks (rates before any answer, headers) this context uses."""
        self._namespace = namespace

    @property
    def settings(self) -> Settings:
        """The client's settings, with the overrides of ``client.with_options(...)`` in force for this call."""
        o = current_options()
        if o is None:
            return self._settings
        s = self._settings
        return replace(
            s,
            timeout=s.timeout if o.timeout is None else o.timeout,
            max_download_bytes=s.max_download_bytes if o.max_download_bytes is None else o.max_download_bytes,
            poll=o.poll or s.poll,
            retry=o.retry or s.retry,
            on_status=o.on_status or s.on_status,
        )

    async def status(self, status: TaskStatus, *, task_id: str | None = None, code: int | None = None) -> None:
        """Tell the ``on_status`` callback in force (if any) that a task moved on.

        A callback that raises is logged, never allowed to lose the task."""
        cb = self.settings.on_status
        if cb is None:
            return
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
        """The core's view of this provider (its limiter is made on first use)."""
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
                # Guessed (or remembered) limits must not hold back the answer that tells the real ones.
                limiter.allow_probe()
            hook = ns.on_headers if ns is not None and type(ns).on_headers is not ProviderNamespace.on_headers else None
            label = ns.tier_label if ns is not None else None
            ep = self._endpoint = Endpoint(self.name, limiter, self.spec.parse_error, hook, label)
        return ep

    @property
    def limiter(self) -> Limiter:
        return self.endpoint.limiter

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
        return await self._hub.dispatch.call(spec, self.endpoint, handle)

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

    async def call_json(
        self,
        spec: RequestSpec,
        parse: Callable[[int, Mapping[str, str], bytes], T],
        *,
        status: TaskStatus | None = None,
        admitted: bool = False,
    ) -> T:
        """Send and parse a small JSON answer with ``parse(status, headers, body)``; ``status``: a
        task event emitted once the request has its rate-limit slot and leaves; ``admitted``:
        through the gate place the caller took with :meth:`admit` (given back whatever happens)."""

        async def handle(resp: Response) -> T:
            return parse(resp.status, resp.headers, await resp.read())

        return await self._hub.dispatch.call(
            spec, self.endpoint, handle, on_sent=self._sent_event(status), admitted=admitted
        )

    def _sent_event(self, status: TaskStatus | None) -> Callable[[], Awaitable[None]] | None:
        if status is None:
            return None
        return partial(self.status, status)

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
        the file in a folder."""
        settings = self.settings  # read once: the options in force do not change during a call
        max_bytes = settings.max_download_bytes
        timeout = spec.timeout if spec.timeout is not None else settings.timeout
        told = settings.on_status is not None  # no callback: no status events to build

        async def handle(resp: Response) -> ImageResult:
            if told:
                await self.status("downloading")
            headers = resp.headers
            extra = dict(fields(headers)) if fields is not None else {}
            saved = await save_stream(
                resp.iter_chunks(CHUNK),
                dest,
                name=extra.get("task_id") or extra.get("request_id"),
                content_length=resp.content_length,
                content_encoding=header(headers, "Content-Encoding"),
                max_bytes=max_bytes,
                timeout=timeout,
            )
            result = self._result(saved, None, extra)
            if told:
                await self.status("done")
            return result

        on_sent = self._sent_event("processing") if told else None
        return await self._hub.dispatch.call(spec, self.endpoint, handle, on_sent=on_sent)

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
        return await self._hub.dispatch.call(spec, self._hub.download_endpoint, handle)

    async def save(self, url: str, dest: Dest, *, expected_size: int | None = None, name: str | None = None) -> Saved:
        """Stream a result URL to ``dest`` (any :data:`Dest`; files atomically, suffix from the
        content; ``name`` names the file when ``dest`` is a folder)."""
        return await self._hub.dispatch.download(
            url,
            dest,
            self._hub.download_endpoint,
            expected_size=expected_size,
            max_bytes=self.settings.max_download_bytes,
            name=name,
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
        Tells ``on_status`` ``downloading`` before and ``done`` after."""
        task_id = fields.get("task_id")
        if not download:
            result = ImageResult(
                self.name, None, expected_size, None, dimensions[0], dimensions[1], source_url=url, **fields
            )
            await self.status("done", task_id=task_id)
            return result
        await self.status("downloading", task_id=task_id)
        saved = await self.save(url, dest, expected_size=expected_size, name=task_id or fields.get("request_id"))
        result = self._result(saved, url, fields)
        await self.status("done", task_id=task_id)
        return result


class ProviderNamespace:
    """Base of the public per-provider objects (``client.facestudio`` ...)."""

    def __init__(self, ctx: ProviderContext) -> None:
        self._ctx = ctx
        ctx.bind(self)

    def initial_rates(self) -> tuple[tuple[Rate, ...], bool]:
        """(rates, adaptive) before any answer came: the spec's defaults unless overridden."""
        return parse_limits(self._ctx.spec.default_limits), self._ctx.spec.adaptive

    def rates_assumed(self) -> bool:
        """True when the rates of :meth:`initial_rates` are a guess an answer will confirm or correct
        (a tier assumed, or remembered from an earlier run): the first request then goes through
        whatever those rates say, so that a wrong guess cannot keep the right answer from coming."""
        return False

    def tier_label(self) -> str | None:
        """What the provider calls the limits in force (a tier such as ``"Anon"``), shown when a
        request waits for a slot; None for a provider without tiers."""
        return None

    def on_headers(self, headers: Mapping[str, str]) -> None:
        """Called with every answer's headers (override to learn tiers and the like)."""


#: ``run(namespace, params, dest)``: one batch job (an image saved at ``dest``, or facts such as a face analysis).
BatchRun = Callable[[Any, Mapping[str, Any], Path], Awaitable[Result]]


@dataclass(frozen=True)
class BatchOp:
    """One operation a provider offers to ``aioface batch`` (and the CLI)."""

    op: str
    run: BatchRun
    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()
    #: Local checks of the parameters (raise InvalidRequestError); nothing is sent.
    precheck: Callable[[Mapping[str, Any]], None] | None = None
    #: Rewrites shorthand before checking (``age`` -> ``ages``).
    normalize: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: Checks that need the client (a known tier, say): ``check(namespace, params)``; nothing is sent.
    check: Callable[[Any, Mapping[str, Any]], None] | None = None
    #: Run-time-only parameters (objects, not JSON) the CLI may pass, e.g. ``callback``.
    extras: frozenset[str] = frozenset()
    #: One line of help for the command ``aioface <op>`` made from this operation.
    help: str = ""
    #: Parameters that are lists (one entry per face); on the command line the option repeats.
    lists: frozenset[str] = frozenset()
    #: Parameters that are JSON objects (``--face-rect '{"x": 0, ...}'`` on the command line).
    objects: frozenset[str] = frozenset()
    #: False for operations whose result is facts (a face analysis), not an image file.
    writes_image: bool = True


def result_op() -> BatchOp:
    """The ``result`` operation (``aioface result --task-id ID``, batch op ``result``) of a provider
    whose namespace has ``async def result(task_id, dest)``: go on waiting for a task submitted
    earlier and save its image, paying nothing again."""

    async def run(ns: Any, p: Mapping[str, Any], dest: Path) -> Result:
        result: Result = await ns.result(str(p["task_id"]), dest)
        return result

    def check(p: Mapping[str, Any]) -> None:
        tid = p["task_id"]
        if isinstance(tid, bool) or not isinstance(tid, (str, int)) or not str(tid).strip():
            raise InvalidRequestError("task_id must be a non-empty string", param="task_id")

    return BatchOp(
        "result",
        run,
        required=frozenset({"task_id"}),
        precheck=check,
        help="Go on waiting for a task submitted earlier and save its image (nothing is paid again).",
    )


#: ``make(namespace)`` returns ``call(dest)``: one benchmarked call.
BenchMake = Callable[[Any], Callable[[Path], Awaitable[Result]]]


@dataclass(frozen=True)
class BenchOp:
    """What ``aioface bench`` calls: ``make(namespace)`` returns ``call(dest)``.

    ``ops`` offers more operations by name (``aioface bench --op swap``), each as (description,
    make); ``op`` names the default one, so that providers can be compared on the same operation.
    ``price`` is what one accepted call costs, as (amount, unit), where the provider publishes it.
    """

    description: str
    make: BenchMake
    op: str = ""
    ops: Mapping[str, tuple[str, BenchMake]] = field(default_factory=dict)
    price: tuple[float, str] | None = None

    def select(self, op: str | None) -> tuple[str, BenchMake] | None:
        """(description, make) for ``op`` (None or the default: the main one); None if not offered."""
        if op is None or op == self.op:
            return self.description, self.make
        return self.ops.get(op)

    @property
    def names(self) -> list[str]:
        """The operations offered, the default first."""
        return [n for n in (self.op, *self.ops) if n]


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
            object.__setattr__(self, "key_env", f"AIOFACE_{self.name.upper()}_KEY")

    @property
    def env_prefix(self) -> str:
        return f"AIOFACE_{self.name.upper()}_"


# ------------------------------------------------------------------------ adapter helpers
def decode_json(provider: str, status: int, body: bytes) -> Any:
    """Parse a JSON body or raise ProtocolError naming the provider."""
    try:
        return _json.loads(body)
    except ValueError:
        snippet = body[:80].decode("utf-8", "replace")
        raise ProtocolError(f"{provider} sent a non-JSON answer (HTTP {status}): {snippet!r}") from None


def decode_json_object(provider: str, status: int, body: bytes, what: str = "an object") -> dict[str, Any]:
    """Parse a JSON object (``what`` names it in the error) or raise ProtocolError naming the provider."""
    data = decode_json(provider, status, body)
    if not isinstance(data, dict):
        raise ProtocolError(f"{provider} sent {type(data).__name__} where {what} was expected")
    return data


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works on plain dicts too."""
    v = headers.get(name)
    if v is not None or isinstance(headers, _CASELESS):
        return v  # a case-insensitive mapping (aiohttp's headers) has said all there is
    low = name.lower()
    for k, val in headers.items():
        if k.lower() == low:
            return val
    return None


def require_int(value: object, name: str, lo: int, hi: int) -> int:
    """An int (not a bool) in ``[lo, hi]`` or an InvalidRequestError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"{name} must be an integer from {lo} to {hi}, got {value!r}", param=name)
    if not lo <= value <= hi:
        raise InvalidRequestError(f"{name} must be from {lo} to {hi}, got {value}", param=name)
    return value


def require_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` or an InvalidRequestError naming ``name`` and the valid options."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidRequestError(f"{name} must be one of {', '.join(choices)}; got {value!r}", param=name)
    return value


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
