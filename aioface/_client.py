"""The Client: configuration, transport lifecycle, and one namespace per registered provider."""

from __future__ import annotations

import copy
import functools
import logging
import os
import random
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar, overload

import anyio
import anyio.to_thread

from ._config import DURATIONS_FILE, Config
from ._config import resolve as resolve_config
from ._dispatch import Dispatch, LimitWait, RequestTiming
from ._errors import ConfigurationError
from ._hub import ClientHub, open_store
from ._options import Options, Settings, applied, resolve, stacked
from ._retry import RetryPolicy
from ._route import Route, Router
from ._types import ImageResult, TaskEvent
from .limits import Limiter, LimitsStore, Rate, parse_limits
from .limits._persist import check_budget_dir
from .providers import ProviderContext, ProviderNamespace, providers
from .providers._base import Secret
from .providers.acedata import AceData
from .providers.ailab import AILab
from .providers.facestudio import FaceStudio
from .results._check import DEFAULT_MAX_BYTES, image_size
from .results._dest import Dest
from .tasks._fanout import FanOut, Outcome, map_all
from .tasks._learn import DurationLearners
from .tasks._polling import PollPolicy
from .transports._base import AsyncTransport

log = logging.getLogger("aioface")
T = TypeVar("T")
R = TypeVar("R")


def _with_option(
    options: Mapping[str, Mapping[str, Any]] | None, provider: str, name: str, value: object
) -> Mapping[str, Mapping[str, Any]] | None:
    """``options`` with ``{provider: {name: value}}`` on top (a shorthand argument); as they are for None."""
    if value is None:
        return options
    out = {p: dict(o) for p, o in (options or {}).items()}
    out.setdefault(provider, {})[name] = value
    return out


class Client:
    """An asyncio client for every registered provider (Face Studio, Ace Data Cloud, AILabAPI, ...).

    >>> async with aioface.Client() as client:                          # doctest: +SKIP
    ...     face = await client.facestudio.generate("face.jpg", age=30)

    Every argument left as None is read from the environment (``AIOFACE_<PROVIDER>_KEY`` /
    ``_TOKEN``, ``_BASE_URL``, ``_LIMITS``), then from the defaults. Arguments win. ``keys``,
    ``base_urls`` and ``options`` take any provider by name (the named keyword arguments are
    shorthand for the built-in ones). Every name and default lives in ``aioface._config``; every
    argument is checked here (:class:`ConfigurationError`), before anything is sent.

    ``limits`` maps a provider to a spec (``"5/minute,120/day"``) or rates; explicit limits beat
    Face Studio's tier presets and ``X-User-Class``. ``time_scale`` makes every limit run that many
    times faster (for an emulator started with the same ``time_scale``). Daily budgets persist in
    ``state_dir`` (default: ``AIOFACE_CACHE_DIR`` or the user cache dir; ``persist_limits=False``
    turns that off).
    ``limit_stamp_bound``: by default a slot is held until a window after the *answer*, exact
    whatever the server does; a number of seconds trusts the server to count each request within
    that long of its send (Face Studio throttles before generating), so slow answers cost no rate.
    ``limits_store`` (or ``AIOFACE_LIMITS_STORE``): ``"local"`` (default) or a Redis URL such as
    ``redis://127.0.0.1:6379/0`` so that every process and host using a key shares its limits and
    what was learned about it; a store object you pass in is yours to close.
    ``accounts`` (or ``AIOFACE_<PROVIDER>_ACCOUNT``) names the account a provider's key belongs to
    (``{"facestudio": "acme"}``): keys given the same label share every window, the 429 cooldown
    and the learned tier (Face Studio counts per user, not per key). The label is hashed like keys.
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
        accounts: Mapping[str, str] | None = None,
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
        # 1. What the arguments, the environment and the defaults say, checked (aioface._config).
        config = resolve_config(
            providers(),
            os.environ if env is None else env,
            keys=keys,
            base_urls=base_urls,
            key_args={"facestudio": facestudio_key, "acedata": acedata_token, "ailab": ailab_key},
            url_args={"facestudio": facestudio_base_url, "acedata": acedata_base_url, "ailab": ailab_base_url},
            options=_with_option(options, "facestudio", "tier", facestudio_tier),
            limits=limits,
            accounts=accounts,
            retry=retry,
            poll=poll,
            state_dir=state_dir,
            persist_limits=persist_limits,
            limits_store=limits_store,
            timeout=timeout,
            acquire_timeout=acquire_timeout,
            limit_margin=limit_margin,
            limit_stamp_bound=limit_stamp_bound,
            time_scale=time_scale,
            max_download_bytes=max_download_bytes,
            connections=connections,
            limit_wait_notice=limit_wait_notice,
        )
        # 2. The objects made from it.
        self._setup(config, durations, rng or random.Random(), transport)
        self._on_request = on_request
        self._on_limit_wait = on_limit_wait
        self._settings = Settings(
            timeout=config.timeout,
            max_download_bytes=config.max_download_bytes,
            poll=config.poll,
            retry=config.retry,
            time_scale=config.time_scale,
            rng=self._rng,
            on_status=on_status,
            durations=self.durations,
            acquire_timeout=config.acquire_timeout,
        )
        self._add_providers(config)

    def _setup(
        self, config: Config, durations: DurationLearners | None, rng: random.Random, transport: AsyncTransport | None
    ) -> None:
        """The client-wide state: settings as attributes, learned durations, the limits store."""
        self._config = config
        self.time_scale = config.time_scale
        self.retry = config.retry
        self.poll = config.poll
        self.timeout = config.timeout
        self.acquire_timeout = config.acquire_timeout
        self.max_download_bytes = config.max_download_bytes
        self.limit_wait_notice = config.limit_wait_notice
        self._connections = config.connections
        self._rng = rng
        self._transport_given = transport
        self._transport: AsyncTransport | None = None
        #: A view's overrides (:meth:`with_options`); None for a client.
        self._options: Options | None = None
        #: The client a view (:meth:`with_options`) was made from; itself for a client.
        self._root: Client = self
        folder = config.state_dir
        if folder is not None:
            check_budget_dir(folder)
        self.durations = durations if durations is not None else self._load_durations(folder)
        self._durations_path = None if durations is not None or folder is None else folder / DURATIONS_FILE
        #: Routed swaps (:meth:`swap`) in progress per provider, shared with every view.
        self._router = Router()
        self._own_store = config.limits_store is None or isinstance(config.limits_store, str)
        store = open_store(config.limits_store, state_dir=folder)
        self._hub = ClientHub(
            store=store,
            time_scale=config.time_scale,
            margin=config.limit_margin,
            stamp_bound=config.limit_stamp_bound,
            accounts={p: pc.account for p, pc in config.providers.items() if pc.account},
        )

    def _add_providers(self, config: Config) -> None:
        """One context and namespace per registered provider."""
        self.base_urls: dict[str, str] = {}
        self._contexts: dict[str, ProviderContext] = {}
        self._namespaces: dict[str, ProviderNamespace] = {}
        for name, spec in providers().items():
            pc = config.providers[name]
            self.base_urls[name] = pc.base_url
            ctx = ProviderContext(
                spec,
                self._hub,
                key=Secret(pc.key),
                base_url=pc.base_url,
                settings=self._settings,
                explicit_limits=pc.limits,
                options=pc.options,
            )
            self._contexts[name] = ctx
            self._namespaces[name] = spec.namespace(ctx)

    # -- the built-in providers (any other: :meth:`provider`) --------------------------------
    @property
    def facestudio(self) -> FaceStudio:
        """Face Studio (``client.provider("facestudio")``)."""
        return self.provider("facestudio")

    @property
    def acedata(self) -> AceData:
        """Ace Data Cloud (``client.provider("acedata")``)."""
        return self.provider("acedata")

    @property
    def ailab(self) -> AILab:
        """AILabAPI (``client.provider("ailab")``)."""
        return self.provider("ailab")

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
        keyed = [
            (name, self._hub.budget_id(name, ctx.key(required=False)))
            for name, ctx in self._contexts.items()
            if ctx.has_key or self._hub.has_account(name)
        ]
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
        for ctx in self._contexts.values():
            ctx.close_waits()  # waits still polling end now, before the transport goes
        try:
            if self._transport is not None:
                await self._transport.aclose()
        finally:
            self._transport = None
            self._hub.current = None
            self._hub.was_closed = True
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
        Those limits are one limiter per (provider, key or account, spec), kept by the client: a
        view made per call shares it, and so do other processes through the limits store.
        Closing a view closes the client.
        """
        given = Options(timeout, retry, poll, acquire_timeout, max_download_bytes, on_status)  # checked here
        if limits:
            unknown = set(limits) - set(self._contexts)
            if unknown:
                raise ConfigurationError(f"limits for unknown provider(s): {', '.join(sorted(unknown))}")
            own: dict[str, tuple[Limiter, ...]] = {}
            for name, lim in limits.items():
                rates = parse_limits(lim) if isinstance(lim, str) else tuple(lim)
                if not rates:
                    raise ConfigurationError(f"limits for {name}: no rate given")
                # One limiter per (provider, key or account, rates), kept by the client: a view per
                # call shares it, and so do other processes through the store in use.
                key = self._root._contexts[name].key(required=False)
                own[name] = (self._hub.view_limiter(name, key, rates),)
            given = replace(given, limiters=own)
        options = stacked(self._options, given)
        assert options is not None
        view = copy.copy(self)
        view._options = options
        # Each namespace of the view is a real instance of its class (an AILab is an AILab), its
        # state shared with the client's, bound to a context that resolves every call (coroutine,
        # iterator or a wait_many made now and entered later) with the view's options.
        root = self._root
        view._namespaces = {n: ns._view(root._contexts[n].view(options)) for n, ns in root._namespaces.items()}
        return view

    # -- providers ----------------------------------------------------------------------
    @overload
    def provider(self, name: Literal["facestudio"]) -> FaceStudio: ...
    @overload
    def provider(self, name: Literal["acedata"]) -> AceData: ...
    @overload
    def provider(self, name: Literal["ailab"]) -> AILab: ...
    @overload
    def provider(self, name: str) -> ProviderNamespace: ...
    def provider(self, name: str) -> ProviderNamespace:
        """The namespace of any registered provider by name (``client.provider("facestudio")``)."""
        ns = self._namespaces.get(name)
        if ns is None:
            raise ConfigurationError(f"unknown provider {name!r}; known: {', '.join(self._namespaces)}")
        return ns

    async def swap(
        self,
        dest: Dest = None,
        *,
        source: Any,
        target: Any,
        providers: Sequence[str] | None = None,
        route: Route = "failover",
        **kwargs: Any,
    ) -> ImageResult:
        """Swap the face of ``source`` into ``target`` through one of several providers.

        ``providers``: the providers to use, in order (default: every one offering a swap, in
        registry order). ``route="failover"`` asks the first, and the next only after an error
        that proves nothing was created or paid (no connection, no slot in time, a 429, an
        exhausted quota or a 5xx answered to the submit, an input this provider refuses locally):
        never once a task id exists; that error (carrying ``task_id``) is raised, the task is
        yours. ``route="spread"`` asks first the provider whose limiter frees a slot soonest,
        so that a run uses every provider's limits at once (and fails over the same way).
        ``result.provider`` (and each ``on_status`` event's) says who served it; a result that
        failed over lists the providers tried first in ``result.extra["failed_over"]``.
        Other keyword arguments go to each provider's ``swap``.
        """
        on_status = resolve(self._settings, self._options).on_status
        return await self._root._router.swap(
            self, dest, source=source, target=target, providers=providers, route=route, on_status=on_status, **kwargs
        )

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
        settings = resolve(self._settings, self._options)
        saved = await self._hub.dispatch.download(
            url,
            dest,
            self._hub.download_endpoint,
            expected_size=expected_size,
            max_bytes=settings.max_download_bytes,
            settings=settings,
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
        the rest. Rate limits still apply per provider, whatever the concurrency. On a view,
        ``fn`` runs with the view's options (calls through the client itself included).
        """
        return FanOut(self._scoped(fn), items, concurrency=concurrency)

    async def map(
        self, fn: Callable[[T], Awaitable[R]], items: Iterable[T] | AsyncIterable[T], *, concurrency: int = 16
    ) -> list[Outcome[T, R]]:
        """Every outcome in input order (holds them all: for huge inputs use :meth:`fan_out`).
        On a view, ``fn`` runs with the view's options (calls through the client itself included)."""
        return await map_all(self._scoped(fn), items, concurrency=concurrency)

    def _scoped(self, fn: Callable[[T], Awaitable[R]]) -> Callable[[T], Awaitable[R]]:
        """``fn`` run with this view's options in force (a client's ``fn`` as it is)."""
        options = self._options
        if options is None:
            return fn

        @functools.wraps(fn)
        async def scoped(item: T) -> R:
            with applied(options):
                return await fn(item)

        return scoped


__all__ = ["Client", "open_store"]
