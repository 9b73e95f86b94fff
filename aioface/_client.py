"""The Client: configuration, transport lifecycle, and one namespace per registered provider."""

from __future__ import annotations

import copy
import logging
import os
import random
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast

import anyio
import anyio.to_thread

from ._dispatch import Dispatch, Endpoint, LimitWait, RequestTiming, generic_error
from ._errors import ConfigurationError
from ._options import Options, OptionsProxy, applied
from ._retry import RetryPolicy
from ._types import ImageResult, TaskEvent
from .limits import Limiter, LimitsStore, LocalStore, Rate, RateLimiter, parse_limits
from .limits._persist import check_budget_dir
from .limits._rate import key_digest
from .providers import ProviderContext, ProviderNamespace, providers
from .providers._base import Secret, Settings
from .providers.acedata import AceData
from .providers.ailab import AILab
from .providers.facestudio import FaceStudio
from .results._download import DEFAULT_MAX_BYTES, Dest, image_size
from .tasks._fanout import FanOut, Outcome, map_all
from .tasks._polling import DurationLearners, PollPolicy
from .transports._base import AsyncTransport

log = logging.getLogger("aioface")
T = TypeVar("T")
R = TypeVar("R")

#: Task durations learned by the pollers, kept with the limits so a new process polls warm.
DURATIONS_FILE = "polling.json"
#: Windows this long or longer are saved on disk, so a rerun does not overspend them.
PERSIST_MIN_PERIOD = 3600.0


def open_store(spec: LimitsStore | str | None, *, state_dir: Path | None = None) -> LimitsStore:
    """A store from an object, ``"local"``/empty, or a ``redis://``/``rediss://``/``unix://`` URL."""
    if spec is not None and not isinstance(spec, str):
        return spec
    url = (spec or "").strip()
    if url in ("", "local"):
        return LocalStore(state_dir)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .limits.redis import RedisStore  # the redis extra, imported only when asked for

        return RedisStore(url)
    # Never echo the value itself: 'user:password@host' without a scheme would show the password.
    scheme = url.split("://")[0] + "://..." if "://" in url else "(no scheme)"
    raise ConfigurationError(f"unknown limits store {scheme!r}: use 'local' or a redis:// URL")


class _Hub:
    """What the client shares with its providers: the dispatcher and how limiters are made."""

    def __init__(self, *, store: LimitsStore, time_scale: float, margin: float, stamp_bound: float | None) -> None:
        self.store = store
        self.time_scale = time_scale
        self.margin = margin
        self.stamp_bound = stamp_bound
        #: Set while the client is open.
        self.current: Dispatch | None = None
        self._download: Endpoint | None = None

    @property
    def dispatch(self) -> Dispatch:
        if self.current is None:
            raise RuntimeError("use the Client inside 'async with' (or await client.open())")
        return self.current

    @property
    def download_endpoint(self) -> Endpoint:
        if self._download is None:
            limiter = RateLimiter([Rate(1_000_000, 1.0)], margin=0.0)
            self._download = Endpoint("download", limiter, generic_error)
        return self._download

    def make_limiter(self, provider: str, key: str | None, rates: tuple[Rate, ...], adaptive: bool) -> Limiter:
        return self.store.limiter(
            provider,
            key_digest(key),
            [r.scaled(self.time_scale) for r in rates],
            margin=self.margin,
            adaptive=adaptive,
            stamp_bound=self.stamp_bound,
            persist=any(r.period >= PERSIST_MIN_PERIOD for r in rates),
        )

    # What was learned about a (provider, key): kept by the limits store (beside the budget file
    # locally, in Redis when limits are shared), per provider and hashed key.
    def load_meta(self, provider: str, key: str | None) -> dict[str, str]:
        """Small facts an earlier client learned about (provider, key), e.g. its tier; {} if none."""
        return self.store.load_meta(provider, key_digest(key))

    def save_meta(self, provider: str, key: str | None, values: Mapping[str, str]) -> None:
        """Keep ``values`` for the next client using (provider, key) (locally: nothing without a state_dir)."""
        self.store.save_meta(provider, key_digest(key), values)


class Client:
    """An asyncio client for every registered provider (Face Studio, Ace Data Cloud, AILabAPI, ...).

    >>> async with aioface.Client() as client:                          # doctest: +SKIP
    ...     face = await client.facestudio.generate("face.jpg", age=30)

    Every argument left as None is read from the environment (``AIOFACE_<PROVIDER>_KEY`` /
    ``_TOKEN``, ``_BASE_URL``, ``_LIMITS``), then from the defaults. Arguments win. ``keys``,
    ``base_urls`` and ``options`` take any provider by name (the named keyword arguments are
    shorthand for the built-in ones).

    ``limits`` maps a provider to a spec (``"5/minute,120/day"``) or rates; explicit limits beat
    Face Studio's tier presets and ``X-User-Class``. ``time_scale`` makes every limit run that many
    times faster (for an emulator started with the same ``time_scale``). Daily budgets persist in
    ``state_dir`` (default: the user cache dir; ``persist_limits=False`` turns that off).
    ``limit_stamp_bound``: by default a slot is held until a window after the *answer*, exact
    whatever the server does; a number of seconds trusts the server to count each request within
    that long of its send (Face Studio throttles before generating), so slow answers cost no rate.
    ``limits_store`` (or ``AIOFACE_LIMITS_STORE``): ``"local"`` (default) or a Redis URL such as
    ``redis://127.0.0.1:6379/0`` so that every process and host using a key shares its limits and
    what was learned about it; a store object you pass in is yours to close.
    ``on_request`` is called with a :class:`RequestTiming` after every HTTP attempt (metrics).
    A request about to wait for a rate-limit slot longer than ``limit_wait_notice`` seconds (3 by
    default) is announced before the wait: an INFO line on the ``aioface`` logger and
    ``on_limit_wait(event)`` with a :class:`LimitWait` (provider, limit, tier, seconds).
    ``durations``: task durations learned earlier (``DurationLearners.load(path)``), so polling
    starts warm; :attr:`durations` is what this client learns (``.save(path)`` it).
    ``transport`` replaces the network (e.g. :class:`MockTransport` in unit tests).
    ``on_status`` is called (or awaited) with a :class:`TaskEvent` whenever a task moves on
    (queued, processing, callback, downloading, done, failed).
    :meth:`with_options` gives a view with other timeouts, retries or polling for some calls.
    """

    facestudio: FaceStudio
    acedata: AceData
    ailab: AILab

    def __init__(
        self,
        *,
        facestudio_key: str | None = None,
        acedata_token: str | None = None,
        ailab_key: str | None = None,
        facestudio_base_url: str | None = None,
        acedata_base_url: str | None = None,
        ailab_base_url: str | None = None,
        keys: Mapping[str, str] | None = None,
        base_urls: Mapping[str, str] | None = None,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        limits: Mapping[str, str | Sequence[Rate]] | None = None,
        facestudio_tier: str | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        durations: DurationLearners | None = None,
        timeout: float = 60.0,
        acquire_timeout: float | None = None,
        limit_margin: float = 0.05,
        limit_stamp_bound: float | None = None,
        time_scale: float = 1.0,
        state_dir: str | os.PathLike[str] | None = None,
        persist_limits: bool = True,
        limits_store: LimitsStore | str | None = None,
        max_download_bytes: int = DEFAULT_MAX_BYTES,
        connections: int = 100,
        transport: AsyncTransport | None = None,
        env: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
        on_request: Callable[[RequestTiming], None] | None = None,
        on_status: Callable[[TaskEvent], object] | None = None,
        on_limit_wait: Callable[[LimitWait], None] | None = None,
        limit_wait_notice: float = 3.0,
    ) -> None:
        env = os.environ if env is None else env
        if time_scale <= 0:
            raise ConfigurationError("time_scale must be > 0")
        if not limit_wait_notice >= 0:
            raise ConfigurationError("limit_wait_notice must be >= 0 seconds")
        specs = providers()
        key_args = {"facestudio": facestudio_key, "acedata": acedata_token, "ailab": ailab_key}
        url_args = {"facestudio": facestudio_base_url, "acedata": acedata_base_url, "ailab": ailab_base_url}
        keys = {**(keys or {}), **{p: k for p, k in key_args.items() if k is not None}}
        base_urls = {**(base_urls or {}), **{p: u for p, u in url_args.items() if u is not None}}
        opts: dict[str, dict[str, Any]] = {p: dict(o) for p, o in (options or {}).items()}
        if facestudio_tier is not None:
            opts.setdefault("facestudio", {})["tier"] = facestudio_tier
        for what, given in (("keys", keys), ("base_urls", base_urls), ("options", opts), ("limits", limits or {})):
            unknown = set(given) - set(specs)
            if unknown:
                raise ConfigurationError(f"{what} for unknown provider(s): {', '.join(sorted(unknown))}")

        self.time_scale = time_scale
        self.retry = retry or RetryPolicy()
        self.poll = poll or PollPolicy()
        self.timeout = timeout
        self.acquire_timeout = acquire_timeout
        self.max_download_bytes = max_download_bytes
        self._connections = connections
        self._rng = rng or random.Random()
        self._on_request = on_request
        self._options: Options | None = None
        #: The client a view (:meth:`with_options`) was made from; itself for a client.
        self._root: Client = self
        self._on_limit_wait = on_limit_wait
        self.limit_wait_notice = limit_wait_notice
        self._transport_given = transport
        self._transport: AsyncTransport | None = None
        budget_dir: Path | None = None
        if persist_limits:
            base = state_dir or env.get("AIOFACE_CACHE_DIR")
            if base:
                budget_dir = Path(base)
            else:
                import platformdirs

                budget_dir = Path(platformdirs.user_cache_dir("aioface"))
            check_budget_dir(budget_dir)
        settings = Settings(
            timeout=timeout,
            max_download_bytes=max_download_bytes,
            poll=self.poll,
            retry=self.retry,
            time_scale=time_scale,
            rng=self._rng,
            on_status=on_status,
            durations=durations if durations is not None else self._load_durations(budget_dir),
        )
        self.durations = settings.durations
        self._durations_path = None if durations is not None or budget_dir is None else budget_dir / DURATIONS_FILE
        if limits_store is None:
            limits_store = env.get("AIOFACE_LIMITS_STORE") or None
        self._own_store = limits_store is None or isinstance(limits_store, str)
        store = open_store(limits_store, state_dir=budget_dir)
        hub = self._hub = _Hub(store=store, time_scale=time_scale, margin=limit_margin, stamp_bound=limit_stamp_bound)
        self.base_urls: dict[str, str] = {}
        self._contexts: dict[str, ProviderContext] = {}
        self._namespaces: dict[str, ProviderNamespace] = {}
        for name, spec in specs.items():
            k = keys.get(name)
            source = f"{name} key given to Client()"
            if k is None:
                k = env.get(spec.key_env, "")
                source = f"{name} key from {spec.key_env}"
            if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in k.strip()):
                # A header value with CR/LF would be refused at send time (or worse, inject headers).
                raise ConfigurationError(f"the {source} contains a control character (CR, LF, NUL...)")
            url = base_urls.get(name) or env.get(f"{spec.env_prefix}BASE_URL") or spec.default_base_url
            if not url.startswith(("http://", "https://")):
                raise ConfigurationError(f"{name} base URL must start with http:// or https://, got {url!r}")
            self.base_urls[name] = url.rstrip("/")
            lim = (limits or {}).get(name)
            if lim is None:
                lim = env.get(f"{spec.env_prefix}LIMITS") or None
            explicit = None if lim is None else (parse_limits(lim) if isinstance(lim, str) else tuple(lim))
            ctx = ProviderContext(
                spec,
                hub,
                key=Secret(k.strip()),
                base_url=self.base_urls[name],
                settings=settings,
                explicit_limits=explicit,
                options=opts.get(name),
            )
            self._contexts[name] = ctx
            self._namespaces[name] = spec.namespace(ctx)
        self.facestudio = cast(FaceStudio, self._namespaces["facestudio"])
        self.acedata = cast(AceData, self._namespaces["acedata"])
        self.ailab = cast(AILab, self._namespaces["ailab"])

    def __repr__(self) -> str:
        shown = ", ".join(f"{p}={'key set' if c.has_key else 'no key'}" for p, c in self._contexts.items())
        return f"Client({shown})"

    # -- lifecycle ----------------------------------------------------------------------
    async def __aenter__(self) -> Client:
        await self.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Make the transport ready (``async with`` does this for you)."""
        if self._root is not self:
            return await self._root.open()
        if self._hub.current is not None:
            return
        keyed = [(name, key_digest(ctx.key(required=False))) for name, ctx in self._contexts.items() if ctx.has_key]
        await self._hub.store.open(keyed)  # ConfigurationError naming the store if it cannot be reached
        if self._transport_given is not None:
            self._transport = self._transport_given
        else:
            from .transports._aiohttp import AiohttpTransport

            self._transport = AiohttpTransport(connections=self._connections)
        self._hub.current = Dispatch(
            self._transport,
            retry=self.retry,
            default_timeout=self.timeout,
            acquire_timeout=self.acquire_timeout,
            rng=self._rng,
            on_request=self._on_request,
            connections=self._connections,
            on_limit_wait=self._on_limit_wait,
            limit_wait_notice=self.limit_wait_notice,
            time_scale=self.time_scale,
        )

    async def aclose(self) -> None:
        """Close the transport (a transport you passed in is closed too); save learned durations."""
        if self._root is not self:
            return await self._root.aclose()
        try:
            if self._transport is not None:
                await self._transport.aclose()
        finally:
            self._transport = None
            self._hub.current = None
            if self._own_store:
                await self._hub.store.aclose()
        if self._durations_path is not None and self.durations.to_json() != self._durations_loaded:
            try:
                await anyio.to_thread.run_sync(self.durations.save, self._durations_path)
            except OSError as exc:  # learned timings are a nicety: never fail a close for them
                log.warning("aioface: could not save learned task durations to %s: %s", self._durations_path, exc)

    def _load_durations(self, state_dir: Path | None) -> DurationLearners:
        """Task durations learned by earlier runs (a cold start when there are none)."""
        learned = DurationLearners() if state_dir is None else DurationLearners.load(state_dir / DURATIONS_FILE)
        self._durations_loaded: str = learned.to_json()
        return learned

    # -- per-call options ---------------------------------------------------------------
    def with_options(
        self,
        *,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        acquire_timeout: float | None = None,
        max_download_bytes: int | None = None,
        on_status: Callable[[TaskEvent], object] | None = None,
        limits: Mapping[str, str | Sequence[Rate]] | None = None,
    ) -> Client:
        """A light view of this client whose calls use other settings (like openai-python's).

        ``client.with_options(timeout=5, retry=RetryPolicy(max_retries=0)).facestudio.generate(...)``

        The view shares everything else: the open transport, every provider's rate limiter (so
        the limits hold across the client and all its views), what a provider learned (Face
        Studio's tier), counters and callbacks. Arguments left as None keep the client's value;
        views of views stack. ``timeout`` is each HTTP request's, ``poll`` the polling policy of
        task waits (its ``deadline`` bounds them), ``acquire_timeout`` how long a call may wait
        for a rate-limit slot (``LimiterTimeoutError`` after), ``on_status`` a
        :class:`TaskEvent` callback for these calls. ``limits`` (``{"facestudio": "1/second"}``)
        holds this view's calls to a stricter budget of their own, on top of the client's limits
        (which still count them): a view for a background job that must leave room for the rest.
        Closing a view closes the client.
        """
        own: dict[str, tuple[RateLimiter, ...]] | None = None
        if limits:
            unknown = set(limits) - set(self._contexts)
            if unknown:
                raise ConfigurationError(f"limits for unknown provider(s): {', '.join(sorted(unknown))}")
            own = {}
            for name, lim in limits.items():
                rates = parse_limits(lim) if isinstance(lim, str) else tuple(lim)
                own[name] = (RateLimiter([r.scaled(self.time_scale) for r in rates], margin=self._hub.margin),)
        given = Options(timeout, retry, poll, acquire_timeout, max_download_bytes, on_status, own)
        options = self._options.merged(given) if self._options is not None else given
        view = copy.copy(self)
        view._options = options
        root = self._root._namespaces
        view._namespaces = {n: cast(ProviderNamespace, OptionsProxy(ns, options)) for n, ns in root.items()}
        view.facestudio = cast(FaceStudio, view._namespaces["facestudio"])
        view.acedata = cast(AceData, view._namespaces["acedata"])
        view.ailab = cast(AILab, view._namespaces["ailab"])
        return view

    # -- providers ----------------------------------------------------------------------
    def provider(self, name: str) -> Any:
        """The namespace of any registered provider by name (``client.provider("facestudio")``)."""
        ns = self._namespaces.get(name)
        if ns is None:
            raise ConfigurationError(f"unknown provider {name!r}; known: {', '.join(self._namespaces)}")
        return ns

    def limiter(self, provider: str) -> Limiter:
        """The rate limiter for ``provider``."""
        ctx = self._contexts.get(provider)
        if ctx is None:
            raise ConfigurationError(f"unknown provider {provider!r}")
        return ctx.limiter

    def stats(self, provider: str) -> dict[str, int]:
        """Requests sent, retries and 429s received for ``provider`` (or ``"download"``)."""
        if provider == "download":
            return self._hub.download_endpoint.stats
        ctx = self._contexts.get(provider)
        if ctx is None:
            raise ConfigurationError(f"unknown provider {provider!r}")
        return ctx.endpoint.stats

    async def download(self, url: str, dest: Dest, *, expected_size: int | None = None) -> ImageResult:
        """Stream an image URL to ``dest`` with every check a result gets (atomic, typed errors).

        ``dest`` is a file path, a folder, None (in memory, ``result.data``) or a file object / sink."""
        options = self._options or Options()
        max_bytes = options.max_download_bytes or self.max_download_bytes
        with applied(options):
            saved = await self._hub.dispatch.download(
                url, dest, self._hub.download_endpoint, expected_size=expected_size, max_bytes=max_bytes
            )
        dims = saved.dimensions or (image_size(saved.path) if saved.path is not None else None)
        return ImageResult(
            "download",
            saved.path,
            saved.size,
            saved.format,
            dims[0] if dims else None,
            dims[1] if dims else None,
            source_url=url,
            data=saved.data,
        )

    @property
    def closed(self) -> bool:
        """True outside ``async with`` (before open or after close)."""
        return self._hub.current is None

    # -- fan-out ------------------------------------------------------------------------
    def fan_out(
        self, fn: Callable[[T], Awaitable[R]], items: Iterable[T] | AsyncIterable[T], *, concurrency: int = 16
    ) -> FanOut[T, R]:
        """``async with client.fan_out(fn, items) as results: async for outcome in results: ...``

        Lazy, bounded, one :class:`Outcome` per item in completion order; failures never cancel
        the rest. Rate limits still apply per provider, whatever the concurrency.
        """
        return FanOut(fn, items, concurrency=concurrency)

    async def map(
        self, fn: Callable[[T], Awaitable[R]], items: Iterable[T] | AsyncIterable[T], *, concurrency: int = 16
    ) -> list[Outcome[T, R]]:
        """Every outcome in input order (holds them all: for huge inputs use :meth:`fan_out`)."""
        return await map_all(fn, items, concurrency=concurrency)


__all__ = ["Client"]
