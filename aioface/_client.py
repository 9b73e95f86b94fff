"""The Client: configuration, session lifecycle, provider namespaces."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import anyio

from ._callbacks import CallbackReceiver
from ._core import Provider, RequestTiming, Transport
from ._download import CHUNK, DEFAULT_MAX_BYTES, image_size, stream_to_file, with_suffix
from ._errors import (
    APIError,
    ConfigurationError,
    InvalidRequestError,
    ProtocolError,
    TaskFailedError,
    TaskTimeoutError,
    api_error_for_status,
)
from ._fanout import FanOut, Outcome, map_all
from ._limits import TIERS, Rate, RateLimiter, _BudgetStore, budget_path, parse_limits
from ._polling import PollPolicy, intervals
from ._providers import acedata as _ace
from ._providers import ailab as _ailab
from ._providers import facestudio as _fs
from ._retry import RetryPolicy
from ._types import ImageResult

T = TypeVar("T")
R = TypeVar("R")

PROVIDERS = ("facestudio", "acedata", "ailab")
#: Environment variable holding each provider's key.
KEY_ENV = {
    "facestudio": "AIOFACE_FACESTUDIO_KEY",
    "acedata": "AIOFACE_ACEDATA_TOKEN",
    "ailab": "AIOFACE_AILAB_KEY",
}
DEFAULT_BASE_URLS = {
    "facestudio": _fs.DEFAULT_BASE_URL,
    "acedata": _ace.DEFAULT_BASE_URL,
    "ailab": _ailab.DEFAULT_BASE_URL,
}
#: Ace Data and AILab publish no limits: start here and halve on each 429.
DEFAULT_LIMITS = {"acedata": "5/second", "ailab": "5/second"}
PERSIST_MIN_PERIOD = 3600.0

ImageInput = str | os.PathLike[str] | bytes


class _Secret:
    """A key that never shows itself in reprs or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value or None

    def get(self) -> str | None:
        return self._value

    def __repr__(self) -> str:
        return "_Secret('***')" if self._value else "_Secret(None)"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return self._value is not None


def _generic_error(status: int, headers: Mapping[str, str], body: bytes) -> APIError:
    cls = api_error_for_status(status)
    return cls(f"download failed with HTTP {status}", provider="download", status=status, code=f"http_{status}")


class Client:
    """An asyncio client for Face Studio, Ace Data Cloud and AILabAPI.

    >>> async with aioface.Client() as client:                          # doctest: +SKIP
    ...     face = await client.facestudio.generate("face.jpg", age=30)

    Every argument left as None is read from the environment (``AIOFACE_<PROVIDER>_KEY`` /
    ``_TOKEN``, ``_BASE_URL``, ``_LIMITS``), then from the defaults. Arguments win.

    ``limits`` maps a provider to a spec (``"5/minute,120/day"``) or rates; explicit limits beat
    Face Studio's tier presets and ``X-User-Class``. ``time_scale`` makes every limit run that many
    times faster (for an emulator started with the same ``time_scale``). Daily budgets persist in
    ``state_dir`` (default: the user cache dir; ``persist_limits=False`` turns that off).
    ``limit_stamp_bound``: by default a slot is held until a window after the *answer*, exact
    whatever the server does; a number of seconds trusts the server to count each request within
    that long of its send (Face Studio throttles before generating), so slow answers cost no rate.
    ``on_request`` is called with a :class:`RequestTiming` after every HTTP attempt (metrics).
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
        limits: Mapping[str, str | Sequence[Rate]] | None = None,
        facestudio_tier: str | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        timeout: float = 60.0,
        acquire_timeout: float | None = None,
        limit_margin: float = 0.05,
        limit_stamp_bound: float | None = None,
        time_scale: float = 1.0,
        state_dir: str | os.PathLike[str] | None = None,
        persist_limits: bool = True,
        max_download_bytes: int = DEFAULT_MAX_BYTES,
        connections: int = 100,
        env: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
        on_request: Callable[[RequestTiming], None] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        if time_scale <= 0:
            raise ConfigurationError("time_scale must be > 0")
        keys = {"facestudio": facestudio_key, "acedata": acedata_token, "ailab": ailab_key}
        urls = {"facestudio": facestudio_base_url, "acedata": acedata_base_url, "ailab": ailab_base_url}
        self._keys: dict[str, _Secret] = {}
        self.base_urls: dict[str, str] = {}
        for p in PROVIDERS:
            k = keys[p]
            if k is None:
                k = env.get(KEY_ENV[p], "")
            self._keys[p] = _Secret(k.strip())
            url = urls[p] or env.get(f"AIOFACE_{p.upper()}_BASE_URL") or DEFAULT_BASE_URLS[p]
            if not url.startswith(("http://", "https://")):
                raise ConfigurationError(f"{p} base URL must start with http:// or https://, got {url!r}")
            self.base_urls[p] = url.rstrip("/")
        self.time_scale = time_scale
        self.retry = retry or RetryPolicy()
        self.poll = poll or PollPolicy()
        self.timeout = timeout
        self.acquire_timeout = acquire_timeout
        self.max_download_bytes = max_download_bytes
        self._connections = connections
        self._rng = rng or random.Random()
        self._on_request = on_request
        self._margin = limit_margin
        self._stamp_bound = limit_stamp_bound
        self._state_dir: Path | None = None
        if persist_limits:
            base = state_dir or env.get("AIOFACE_CACHE_DIR")
            if base:
                self._state_dir = Path(base)
            else:
                import platformdirs

                self._state_dir = Path(platformdirs.user_cache_dir("aioface"))
        explicit: dict[str, tuple[Rate, ...]] = {}
        for p in PROVIDERS:
            spec = (limits or {}).get(p)
            if spec is None:
                spec = env.get(f"AIOFACE_{p.upper()}_LIMITS") or None
            if spec is not None:
                explicit[p] = parse_limits(spec) if isinstance(spec, str) else tuple(spec)
        unknown = set(limits or {}) - set(PROVIDERS)
        if unknown:
            raise ConfigurationError(f"limits for unknown provider(s): {', '.join(sorted(unknown))}")
        self._explicit_limits = explicit
        if facestudio_tier is not None and facestudio_tier.lower() not in TIERS:
            raise ConfigurationError(f"facestudio_tier must be one of {', '.join(TIERS)}")
        self._fs_tier = facestudio_tier.lower() if facestudio_tier else None
        self._session: aiohttp.ClientSession | None = None
        self._transport: Transport | None = None
        self._providers: dict[str, Provider] = {}
        self.facestudio = FaceStudio(self)
        self.acedata = AceData(self)
        self.ailab = AILab(self)

    def __repr__(self) -> str:
        shown = ", ".join(f"{p}={'key set' if self._keys[p] else 'anonymous'}" for p in PROVIDERS)
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
        """Create the session (``async with`` does this for you)."""
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(limit=self._connections, limit_per_host=self._connections)
        self._session = aiohttp.ClientSession(connector=connector, headers={"User-Agent": "aioface"})
        self._transport = Transport(
            self._session,
            retry=self.retry,
            default_timeout=self.timeout,
            acquire_timeout=self.acquire_timeout,
            rng=self._rng,
            on_request=self._on_request,
        )

    async def aclose(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
            self._transport = None

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            raise RuntimeError("use the Client inside 'async with' (or await client.open())")
        return self._transport

    # -- limits -------------------------------------------------------------------------
    def _rates_for(self, provider: str) -> tuple[tuple[Rate, ...], bool]:
        """(rates, adaptive) for a provider before any answer came."""
        if provider in self._explicit_limits:
            return self._explicit_limits[provider], False
        if provider == "facestudio":
            tier = self._fs_tier or ("basic" if self._keys["facestudio"] else "anon")
            return TIERS[tier], False
        if provider == "download":
            return (Rate(1_000_000, 1.0),), False
        return parse_limits(DEFAULT_LIMITS[provider]), True

    def provider(self, name: str) -> Provider:
        """The core's view of a provider (its limiter, base URL and counters)."""
        p = self._providers.get(name)
        if p is not None:
            return p
        rates, adaptive = self._rates_for(name)
        store = None
        if self._state_dir is not None and any(r.period >= PERSIST_MIN_PERIOD for r in rates):
            keep = max(r.period for r in rates) / self.time_scale + self._margin
            store = _BudgetStore(budget_path(self._state_dir, name, self._keys[name].get()), keep)
        limiter = RateLimiter(
            [r.scaled(self.time_scale) for r in rates],
            margin=self._margin,
            store=store,
            adaptive=adaptive,
            stamp_bound=self._stamp_bound,
        )
        parse = {
            "facestudio": _fs.parse_error,
            "acedata": _ace.parse_error,
            "ailab": _ailab.parse_error,
        }.get(name, _generic_error)
        on_headers = self.facestudio._on_headers if name == "facestudio" else None
        p = Provider(name, self.base_urls.get(name, ""), limiter, parse, on_headers)
        self._providers[name] = p
        return p

    def limiter(self, provider: str) -> RateLimiter:
        """The rate limiter for ``provider`` (facestudio, acedata, ailab)."""
        if provider not in PROVIDERS:
            raise ConfigurationError(f"unknown provider {provider!r}")
        return self.provider(provider).limiter

    def _key(self, provider: str, *, required: bool) -> str | None:
        k = self._keys[provider].get()
        if required and not k:
            raise ConfigurationError(f"no {provider} key: pass it to Client() or set {KEY_ENV[provider]}")
        return k

    async def _save(
        self, url: str, dest: Path, *, expected_size: int | None = None
    ) -> tuple[Path, int, str, tuple[int, int] | None]:
        saved = await self.transport.download(
            url, dest, self.provider("download"), expected_size=expected_size, max_bytes=self.max_download_bytes
        )
        return saved.path, saved.size, saved.format, saved.dimensions or image_size(saved.path)

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


class FaceStudio:
    """Face Studio: ``generate`` one face to a file. Reached as ``client.facestudio``."""

    def __init__(self, client: Client) -> None:
        self._client = client
        #: The class the last answer's ``X-User-Class`` named (lower-case), or None.
        self.user_class: str | None = None

    def _on_headers(self, headers: Mapping[str, str]) -> None:
        cls = _fs.user_class(headers)
        if not cls or cls == self.user_class:
            return
        self.user_class = cls
        c = self._client
        if "facestudio" not in c._explicit_limits and c._fs_tier is None and cls in TIERS:
            c.provider("facestudio").limiter.set_rates([r.scaled(c.time_scale) for r in TIERS[cls]])

    @property
    def tier(self) -> str:
        """The tier whose limits are in force (given, learned from X-User-Class, or assumed)."""
        c = self._client
        return c._fs_tier or self.user_class or ("basic" if c._keys["facestudio"] else "anon")

    async def generate(
        self,
        dest: str | os.PathLike[str],
        *,
        gender: str | None = None,
        ethnicity: str | None = None,
        age: int | None = None,
        resolution: int | None = None,
        image_format: str | None = None,
        seed: int | None = None,
        skintone: int | None = None,
        eyewear: str | None = None,
        hair_length: int | None = None,
        facial_hair: int | None = None,
        lighting: str | None = None,
        zoom_level: str | None = None,
        stampless: str | bool | None = None,
        mood: str | None = None,
        view_profile: int | None = None,
    ) -> ImageResult:
        """Generate a face and stream it to ``dest`` (a suffix is added when ``dest`` has none).

        Every parameter is checked before sending; advanced ones (seed, skintone, ...) raise
        :class:`InvalidRequestError` when the tier is known to lack them.
        """
        params = _fs.build_params(
            gender=gender,
            ethnicity=ethnicity,
            age=age,
            resolution=resolution,
            image_format=image_format,
            seed=seed,
            skintone=skintone,
            eyewear=eyewear,
            hair_length=hair_length,
            facial_hair=facial_hair,
            lighting=lighting,
            zoom_level=zoom_level,
            stampless=stampless,
            mood=mood,
            view_profile=view_profile,
        )
        known = self._client._fs_tier or self.user_class or (None if self._client._keys["facestudio"] else "anon")
        adv = _fs.advanced_used(params)
        if adv and known is not None and known not in _fs.ADVANCED_CLASSES:
            raise InvalidRequestError(
                f"{', '.join(adv)} need the Professional tier or above; this key is {known}", param=adv[0]
            )
        c = self._client
        spec = _fs.build_request(c.base_urls["facestudio"], c._key("facestudio", required=False), params, c.timeout)
        fmt_wanted = params.get("image_format", "jpeg")
        target = with_suffix(Path(dest), fmt_wanted)

        async def handle(resp: aiohttp.ClientResponse) -> ImageResult:

            saved = await stream_to_file(
                resp.content.iter_chunked(CHUNK),
                target,
                content_length=resp.content_length,
                max_bytes=c.max_download_bytes,
            )
            dims = saved.dimensions or image_size(saved.path)
            return ImageResult(
                provider="facestudio",
                path=saved.path,
                bytes=saved.size,
                format=saved.format,
                width=dims[0] if dims else None,
                height=dims[1] if dims else None,
                request_id=resp.headers.get("X-Request-ID"),
                user_class=_fs.user_class(resp.headers),
            )

        return await c.transport.call(spec, c.provider("facestudio"), handle)


class AceData:
    """Ace Data Cloud's ``/face/`` family. Reached as ``client.acedata``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def _post(self, op: str, body: Mapping[str, Any], timeout: float | None = None) -> dict[str, Any]:
        c = self._client
        spec = _ace.build_request(c.base_urls["acedata"], c._key("acedata", required=True) or "", op, body, timeout)

        async def handle(resp: aiohttp.ClientResponse) -> dict[str, Any]:
            body_bytes = await c.transport.read_json(resp)
            return _ace.parse_result(resp.status, resp.headers, body_bytes)

        return await c.transport.call(spec, c.provider("acedata"), handle)

    async def _image(self, data: Mapping[str, Any], dest: str | os.PathLike[str]) -> ImageResult:
        url, declared = _ace.image_result_fields(data)
        path, size, fmt, dims = await self._client._save(url, Path(dest), expected_size=declared)
        tid = data.get("task_id")
        return ImageResult(
            provider="acedata",
            path=path,
            bytes=size,
            format=fmt,
            width=dims[0] if dims else None,
            height=dims[1] if dims else None,
            task_id=str(tid) if tid else None,
            request_id=str(data["trace_id"]) if data.get("trace_id") else None,
            source_url=url,
        )

    async def change_age(
        self,
        image_url: str,
        ages: Sequence[int],
        dest: str | os.PathLike[str],
        *,
        face_rects: Sequence[Mapping[str, int]] | None = None,
    ) -> ImageResult:
        """Age (or rejuvenate) the faces of ``image_url``: one age per face (10 to 80)."""
        body = _ace.change_age_body(image_url, ages, face_rects)
        return await self._image(await self._post("change-age", body), dest)

    async def change_gender(self, image_url: str, genders: Sequence[int], dest: str | os.PathLike[str]) -> ImageResult:
        """Change the gender of the faces of ``image_url`` (one 0 or 1 per face)."""
        body = _ace.change_gender_body(image_url, genders)
        return await self._image(await self._post("change-gender", body), dest)

    async def beautify(self, image_url: str, dest: str | os.PathLike[str]) -> ImageResult:
        """Beautify the faces of ``image_url``."""
        return await self._image(await self._post("beautify", _ace.image_body(image_url)), dest)

    async def cartoon(self, image_url: str, dest: str | os.PathLike[str]) -> ImageResult:
        """Turn ``image_url`` into a cartoon."""
        return await self._image(await self._post("cartoon", _ace.image_body(image_url)), dest)

    async def analyze(self, image_url: str) -> dict[str, Any]:
        """Face analysis of ``image_url`` (the provider's JSON)."""
        return await self._post("analyze", _ace.image_body(image_url))

    async def detect_live(self, image_url: str) -> dict[str, Any]:
        """Liveness check of ``image_url`` (the provider's JSON)."""
        return await self._post("detect-live", _ace.image_body(image_url))

    async def swap(
        self,
        source_url: str,
        target_url: str,
        dest: str | os.PathLike[str],
        *,
        timeout: int | None = None,
        callback: CallbackReceiver | None = None,
        wait_timeout: float | None = None,
    ) -> ImageResult:
        """Put the face of ``source_url`` onto ``target_url`` and save the result.

        Without ``callback`` the call holds the connection until the swap is done (``timeout``
        seconds at most, 120 by default at the provider). With a :class:`CallbackReceiver` it
        returns at once with a task id and this coroutine waits, without a connection, for the
        provider's POST (``wait_timeout`` seconds, default the poll deadline).
        """
        c = self._client
        if callback is None:
            body = _ace.swap_body(source_url, target_url, timeout)
            read = (timeout or _ace.DEFAULT_SWAP_TIMEOUT) + 30.0
            return await self._image(await self._post("swap", body, timeout=read), dest)
        nonce, url = callback.register()
        try:
            body = _ace.swap_body(source_url, target_url, timeout, url)
            data = await self._post("swap", body)
            task_id = data.get("task_id")
            if not isinstance(task_id, str):
                raise ProtocolError("acedata answered an asynchronous swap without task_id")
            callback.bind(nonce, task_id)
            limit = wait_timeout if wait_timeout is not None else c.poll.deadline
            payload = await callback.wait(nonce, limit)
            if payload is None:
                raise TaskTimeoutError(
                    f"no callback for task {task_id} within {limit:g}s", provider="acedata", task_id=task_id
                )
            if payload.get("task_id") != task_id:
                raise ProtocolError(f"callback for task {payload.get('task_id')} arrived for task {task_id}")
            if payload.get("success") is False or "error" in payload:
                err = payload.get("error")
                msg = err.get("message") if isinstance(err, dict) else err
                raise TaskFailedError(f"swap task {task_id} failed: {msg}", provider="acedata", task_id=task_id)
            return await self._image(payload, dest)
        finally:
            callback.forget(nonce)


class AILab:
    """AILabAPI AI Face Swap. Reached as ``client.ailab``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def _load(self, image: ImageInput, param: str) -> _ailab.CheckedImage:
        if isinstance(image, bytes):
            data = image
        elif isinstance(image, str) and image.startswith(("http://", "https://")):
            data = await self._fetch(image, param)
        elif isinstance(image, (str, os.PathLike)):
            path = Path(image)
            try:
                size = path.stat().st_size  # noqa: ASYNC240 - one cheap stat before a threaded read
            except OSError as exc:
                raise InvalidRequestError(f"{param}: cannot read {path}: {exc.strerror}", param=param) from None
            if size > _ailab.MAX_BYTES:
                from ._errors import ImageRejectedError

                raise ImageRejectedError(
                    f"{param} is {size} bytes; AILab accepts at most {_ailab.MAX_BYTES} (5 MB)",
                    param=param,
                    rule="max_bytes",
                )
            try:
                data = await anyio.Path(path).read_bytes()
            except OSError as exc:
                raise InvalidRequestError(f"{param}: cannot read {path}: {exc.strerror}", param=param) from None
        else:
            raise InvalidRequestError(f"{param} must be a path, bytes or an http(s) URL", param=param)
        return _ailab.check_image(data, param)

    async def _fetch(self, url: str, param: str) -> bytes:
        c = self._client
        from ._core import read_capped
        from ._errors import ImageRejectedError, ProtocolError
        from ._providers._base import RequestSpec

        async def handle(resp: aiohttp.ClientResponse) -> bytes:
            try:
                return await read_capped(resp, _ailab.MAX_BYTES)
            except ProtocolError:
                raise ImageRejectedError(f"{param} at {url} is over 5 MB", param=param, rule="max_bytes") from None

        return await c.transport.call(RequestSpec("GET", url, {}), c.provider("download"), handle)

    async def submit(self, target: ImageInput, template: ImageInput) -> str:
        """Check both images locally, upload them, and return the task id."""
        c = self._client
        key = c._key("ailab", required=True) or ""
        t = await self._load(target, "target")
        tp = await self._load(template, "template")
        spec = _ailab.submit_request(c.base_urls["ailab"], key, t, tp)

        async def handle(resp: aiohttp.ClientResponse) -> str:
            return _ailab.task_id_of(_ailab.parse_result(resp.status, resp.headers, await c.transport.read_json(resp)))

        return await c.transport.call(spec, c.provider("ailab"), handle)

    async def task(self, task_id: str) -> tuple[int, str | None]:
        """One poll: (task_status, result URL when done)."""
        c = self._client
        spec = _ailab.poll_request(c.base_urls["ailab"], c._key("ailab", required=True) or "", task_id)

        async def handle(resp: aiohttp.ClientResponse) -> tuple[int, str | None]:
            return _ailab.task_state(_ailab.parse_result(resp.status, resp.headers, await c.transport.read_json(resp)))

        return await c.transport.call(spec, c.provider("ailab"), handle)

    async def wait(self, task_id: str, *, poll: PollPolicy | None = None, first_delay: bool = True) -> str:
        """Poll with backoff and jitter until the task is done; return the result URL.

        The first poll comes after the first (jittered) interval: a task just submitted is never
        done at once, and thousands submitted together then do not all poll in the same instant.
        ``first_delay=False`` checks at once (for a task submitted long ago).
        """
        policy = poll or self._client.poll
        waits = intervals(policy, self._client._rng)
        with anyio.move_on_after(policy.deadline) as scope:
            if first_delay:
                await anyio.sleep(next(waits))
            while True:
                status, url = await self.task(task_id)
                if status == _ailab.DONE:
                    assert url is not None
                    return url
                if status not in (_ailab.QUEUED, _ailab.PROCESSING):
                    raise TaskFailedError(
                        f"AILab task {task_id} ended with task_status {status}", provider="ailab", task_id=task_id
                    )
                await anyio.sleep(next(waits))
        assert scope.cancel_called
        raise TaskTimeoutError(
            f"AILab task {task_id} not done within {policy.deadline:g}s", provider="ailab", task_id=task_id
        )

    async def swap(
        self,
        target: ImageInput,
        template: ImageInput,
        dest: str | os.PathLike[str],
        *,
        poll: PollPolicy | None = None,
    ) -> ImageResult:
        """Swap the face of ``template`` into ``target`` (each a path, bytes or URL) and save it."""
        task_id = await self.submit(target, template)
        url = await self.wait(task_id, poll=poll)
        path, size, fmt, dims = await self._client._save(url, Path(dest))
        return ImageResult(
            provider="ailab",
            path=path,
            bytes=size,
            format=fmt,
            width=dims[0] if dims else None,
            height=dims[1] if dims else None,
            task_id=task_id,
            source_url=url,
        )


__all__ = ["AILab", "AceData", "Client", "FaceStudio", "ImageInput"]
