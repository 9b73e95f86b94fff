"""Ace Data Cloud's public methods (``client.acedata``): the ``/face/`` family and its callback flow."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio

from ..._config import PLATFORM_URL, provider_env
from ..._errors import (
    APIError,
    ConfigurationError,
    InvalidRequestError,
    TaskFailedError,
    TaskTimeoutError,
    TransportError,
)
from ..._net import check_http_url, is_local_url
from ..._options import current as current_scope
from ..._types import FaceAnalysis, ImageResult, Liveness, TaskStatus
from ...results._dest import Dest, check_dest
from ...tasks._polling import PollPolicy
from ...tasks._scheduler import WaitPlan
from ...tasks._waitmany import PollKind
from .._base import ProviderContext, ProviderNamespace
from ..ailab._namespace import _read_local
from . import _adapter as _ace
from . import _facts, _upload
from ._callbacks import CallbackReceiver

#: An image: an http(s) URL (sent as it is), or a local file's path or bytes (uploaded first).
ImageInput = str | os.PathLike[str] | bytes
#: Stands in for an image not uploaded yet, so that the other parameters are checked before anything is sent.
_PLACEHOLDER = "https://upload.invalid/image"


def _is_url(image: object) -> bool:
    return isinstance(image, str) and "://" in image


class _Waits(WaitPlan[dict[str, Any]]):
    """How Ace tasks are waited for through one client or view: ``POST /face/tasks``, its record read."""

    __slots__ = ("_took", "ctx")

    def __init__(self, ctx: ProviderContext, *args: Any) -> None:
        super().__init__(*args)
        self.ctx = ctx
        #: Task id -> its duration by the record that said it was done (read once by :meth:`took`).
        self._took: dict[str, float] = {}

    async def poll(self, task_id: str) -> tuple[PollKind, int, Any]:
        ctx = self.ctx
        spec = _ace.task_request(ctx.base_url, ctx.key() or "", task_id)
        try:
            record = await ctx.call_json(spec, _ace.parse_task)
        except (APIError, TransportError) as exc:
            # Never lose a paid task: its id goes with the error (the endpoint is a guess).
            raise TaskTimeoutError(
                f"acedata task {task_id}: asking POST /face/tasks for it failed ({exc}); the task "
                f"may still finish: await client.acedata.result({task_id!r}, dest) to go on waiting",
                provider="acedata",
                task_id=task_id,
            ) from exc
        try:
            answer = _ace.task_outcome(record, task_id)
        except TaskFailedError as exc:
            return "failed", 0, exc
        if answer is None:
            return "processing", 0, None
        took = _ace.task_duration(record) if self.learner is not None else None
        if took is not None:
            if len(self._took) >= 4096:  # ids whose waiters left during the poll: never read
                self._took.clear()
            self._took[task_id] = took
        return "done", 0, answer

    def took(self, task_id: str) -> float | None:
        return self._took.pop(task_id, None)

    def announces(self, code: int) -> bool:
        return False  # Ace's records say nothing the events would add while the task runs

    async def announce(self, kind: PollKind, task_id: str, code: int) -> None:
        if kind == "failed":
            await self.ctx.status("failed", task_id=task_id)

    def failed(self, task_id: str, code: int, value: Any) -> Exception:
        assert isinstance(value, TaskFailedError)
        return value

    def timed_out(self, task_id: str, deadline: float) -> Exception:
        return TaskTimeoutError(
            f"acedata task {task_id} not done within {deadline:g}s; "
            f"await client.acedata.result({task_id!r}, dest) to go on waiting",
            provider="acedata",
            task_id=task_id,
        )


class AceData(ProviderNamespace):
    """Ace Data Cloud's ``/face/`` family. Reached as ``client.acedata``.

    Every image operation saves to ``dest``: a file path (suffix from the content), a folder (the
    file named after the task), None (in memory, ``result.data``) or a binary file object / async
    sink. ``download=False`` fetches nothing: the result carries the provider's URL
    (``source_url``, valid for hours) and what it declared (size, width, height).

    Every image parameter takes an http(s) URL, or a local file (a path or bytes): that is checked
    here (a regular file, at most 10 MiB, a readable image, no decompression bomb), then uploaded
    to Ace Data Cloud's platform file API (``POST /api/v1/files/``, the same token) and its URL sent.
    """

    async def _post(
        self, op: str, body: Mapping[str, Any], timeout: float | None = None, *, status: TaskStatus | None = None
    ) -> dict[str, Any]:
        ctx = self._ctx
        spec = _ace.build_request(ctx.base_url, ctx.key() or "", op, body, timeout)
        return await ctx.call_json(spec, _ace.parse_result, status=status)

    async def _image(self, data: Mapping[str, Any], dest: Dest, download: bool = True) -> ImageResult:
        url, declared = _ace.image_result_fields(data)
        tid = data.get("task_id")
        trace = data.get("trace_id")
        extra = _ace.result_extra(data)
        return await self._ctx.save_result(
            url,
            dest,
            expected_size=declared,
            dimensions=(extra.get("image_width"), extra.get("image_height")),
            download=download,
            task_id=str(tid) if tid else None,
            request_id=str(trace) if trace else None,
            extra=extra,
        )

    # -- local images ---------------------------------------------------------------------
    def platform_url(self) -> str:
        """Where local images are uploaded: the ``platform_url`` option, else
        ``AIOFACE_ACEDATA_PLATFORM_URL``, else ``https://platform.acedata.cloud`` when the API is the
        default one and the API's own base URL when it is not (an emulator, a proxy: the token then
        goes to no host it does not already go to)."""
        ctx = self._ctx
        url = ctx.options.get("platform_url") or os.environ.get(provider_env("acedata", PLATFORM_URL))
        if not url:
            url = _upload.DEFAULT_PLATFORM_URL if ctx.base_url == _ace.DEFAULT_BASE_URL else ctx.base_url
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"acedata platform URL must start with http:// or https://, got {url!r}")
        return url.rstrip("/")

    async def _local(self, image: ImageInput, param: str) -> _upload.LocalImage:
        """A local image read and checked (nothing is sent)."""
        if isinstance(image, bytes):
            data = image
        elif isinstance(image, (str, os.PathLike)) and not _is_url(image):
            if isinstance(image, str) and not image:
                raise InvalidRequestError(f"{param} must be an http(s) URL, a path or bytes", param=param)
            data = await anyio.to_thread.run_sync(
                _read_local, Path(image), param, _upload.MAX_UPLOAD_BYTES, "aioface uploads at most 10 MiB"
            )
        else:
            raise InvalidRequestError(f"{param} must be an http(s) URL, a path or bytes", param=param)
        return _upload.check_upload(data, param)

    async def _urls(self, images: Sequence[tuple[ImageInput, str]]) -> list[str]:
        """Each image's URL: URLs checked and kept, local images all checked first, then uploaded."""
        local: dict[int, _upload.LocalImage] = {}
        for i, (image, param) in enumerate(images):
            if _is_url(image):
                check_http_url(str(image), param=param)
            else:
                local[i] = await self._local(image, param)
        urls = [str(image) for image, _ in images]
        if local:
            ctx = self._ctx
            platform = self.platform_url()
            for i, img in local.items():
                spec = _upload.upload_request(platform, ctx.key() or "", img.data, img.filename, img.content_type)
                urls[i] = await ctx.call_json(spec, _upload.parse_upload)
        return urls

    async def _body(self, image: ImageInput, build: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        """``build(url)``, its other parameters checked before the image is read or uploaded. A URL
        is checked by ``build`` itself (every builder checks ``image_url`` first): once, not twice."""
        if _is_url(image):
            return build(str(image))
        build(_PLACEHOLDER)
        (url,) = await self._urls([(image, "image_url")])
        return build(url)

    async def upload(self, image: str | os.PathLike[str] | bytes) -> str:
        """Upload a local image (a path or bytes) to the platform's file API; its URL."""
        if _is_url(image):
            raise InvalidRequestError("upload takes a path or bytes, not a URL", param="image")
        (url,) = await self._urls([(image, "image")])
        return url

    # -- image operations -----------------------------------------------------------------
    async def _edit(
        self, op: str, image: ImageInput, build: Callable[[str], dict[str, Any]], dest: Dest, download: bool
    ) -> ImageResult:
        """A synchronous image operation on ``image``, its body ``build(url)`` (see :meth:`_body`):
        processing, then the result downloaded (unless not). One coroutine for a URL image."""
        body = build(str(image)) if _is_url(image) else await self._body(image, build)
        ctx = self._ctx
        spec = _ace.build_request(ctx.base_url, ctx.key() or "", op, body, None)
        data = await ctx.call_json(spec, _ace.parse_result, status="processing")
        return await self._image(data, dest, download)

    async def change_age(
        self,
        image_url: ImageInput,
        ages: Sequence[int],
        dest: Dest = None,
        *,
        face_rects: Sequence[Mapping[str, float]] | None = None,
        download: bool = True,
    ) -> ImageResult:
        """Age (or rejuvenate) the faces of ``image_url``: one age per face (the provider judges the
        range). ``face_rects`` (one ``{x, y, width, height}`` per age) is from the integration guide
        ("the face's age and region"), not the spec."""
        check_dest(dest)
        return await self._edit(
            "change-age", image_url, lambda u: _ace.change_age_body(u, ages, face_rects), dest, download
        )

    async def change_gender(
        self,
        image_url: ImageInput,
        genders: Sequence[int],
        dest: Dest = None,
        *,
        face_rects: Sequence[Mapping[str, float]] | None = None,
        download: bool = True,
    ) -> ImageResult:
        """Change the gender of the faces of ``image_url`` (one 0 or 1 per face; ``face_rects``: the
        spec's ``face_rect`` ``{x, y, width, height}`` per face)."""
        check_dest(dest)
        return await self._edit(
            "change-gender", image_url, lambda u: _ace.change_gender_body(u, genders, face_rects), dest, download
        )

    async def beautify(
        self,
        image_url: ImageInput,
        dest: Dest = None,
        *,
        smoothing: float | None = None,
        whitening: float | None = None,
        face_lifting: float | None = None,
        eye_enlarging: float | None = None,
        download: bool = True,
    ) -> ImageResult:
        """Beautify the faces of ``image_url``; the spec's optional numbers, sent when given."""
        check_dest(dest)
        opts = {
            "smoothing": smoothing,
            "whitening": whitening,
            "face_lifting": face_lifting,
            "eye_enlarging": eye_enlarging,
        }
        return await self._edit("beautify", image_url, lambda u: _ace.beautify_body(u, **opts), dest, download)

    async def cartoon(self, image_url: ImageInput, dest: Dest = None, *, download: bool = True) -> ImageResult:
        """Turn ``image_url`` into a cartoon."""
        check_dest(dest)
        return await self._edit("cartoon", image_url, _ace.image_body, dest, download)

    async def analyze(
        self,
        image_url: ImageInput,
        *,
        mode: float | None = None,
        face_model_version: str | None = None,
        need_rotate_detection: float | None = None,
    ) -> FaceAnalysis:
        """The faces of ``image_url``: 90 key points each, the picture's size, the model version."""
        body = await self._body(
            image_url, lambda u: _ace.analyze_body(u, mode, face_model_version, need_rotate_detection)
        )
        return _facts.analysis(await self._post("analyze", body))

    async def detect_live(
        self,
        image_url: ImageInput,
        *,
        face_model_version: str | float | None = None,
        threshold: float | None = None,
    ) -> Liveness:
        """The provider's liveness ``score`` for ``image_url`` and its model version. ``is_live`` is
        decided only from your ``threshold`` (``score >= threshold``); the provider sends none."""
        if threshold is not None:
            _ace.number(threshold, "threshold")
        body = await self._body(image_url, lambda u: _ace.detect_live_body(u, face_model_version))
        return _facts.liveness(await self._post("detect-live", body), threshold)

    # -- swaps -------------------------------------------------------------------------------
    async def swap(
        self,
        dest: Dest = None,
        *,
        source: ImageInput,
        target: ImageInput,
        timeout: float | None = None,
        callback: CallbackReceiver | None = None,
        poll: PollPolicy | None = None,
        download: bool = True,
        sync: bool = False,
    ) -> ImageResult:
        """Put the face of ``source`` into the picture ``target`` (each a URL, a path or bytes) and
        save the result.

        By default the swap is sent with ``async: true``: the provider answers at once with a task
        id, which is polled (``POST /face/tasks``, a guess: see :meth:`result`) as politely as the
        provider asks (3 s at least between two polls) until done, by ``poll`` (default the client's
        policy; its ``deadline`` bounds the wait): :class:`TaskTimeoutError` carrying ``task_id`` after that
        (go on with :meth:`result`). With a :class:`CallbackReceiver` the provider POSTs the result
        there instead. ``sync=True`` holds the connection until the swap is done (``timeout`` seconds,
        a number, 120 by default at the provider); when that passes the provider answers 504, raised
        as :class:`GenerationTimeoutError` (not retried: it may have been billed).
        """
        check_dest(dest)
        if sync and callback is not None:
            raise InvalidRequestError("sync=True and a callback exclude each other", param="sync")
        if timeout is not None:
            _ace.number(timeout, "timeout")
        if callback is not None:
            self._check_reachable(callback.public_url)
        src, tgt = await self._urls([(source, "source"), (target, "target")])
        if callback is None:
            body = _ace.swap_body(src, tgt, timeout, asynchronous=not sync)
            if sync:
                read = (timeout or _ace.DEFAULT_SWAP_TIMEOUT) + 30.0
                data = await self._post("swap", body, timeout=read, status="processing")
            else:
                data = await self._post("swap", body)
            start = anyio.current_time()
            if "image_url" in data:  # answered with the image already
                return await self._image(data, dest, download)
            task_id = _ace.task_id_of(data)
            await self._ctx.status("queued", task_id=task_id)
            answer = await self._wait_task(task_id, poll, first_delay=True, start=start)
            return await self._image(answer, dest, download)
        nonce, url = callback.register()
        try:
            body = _ace.swap_body(src, tgt, timeout, url)
            task_id = _ace.task_id_of(await self._post("swap", body))
            callback.bind(nonce, task_id)
            await self._ctx.status("queued", task_id=task_id)
            limit = (poll or self._ctx.settings.poll).deadline
            payload = await callback.wait(nonce, limit)
            if payload is None:
                raise TaskTimeoutError(
                    f"no callback for task {task_id} within {limit:g}s", provider="acedata", task_id=task_id
                )
            await self._ctx.status("callback", task_id=task_id)
            try:
                _ace.check_callback(payload, task_id)
            except Exception:
                await self._ctx.status("failed", task_id=task_id)
                raise
            return await self._image(payload, dest, download)
        finally:
            callback.forget(nonce)

    async def _wait_task(
        self, task_id: str, poll: PollPolicy | None, *, first_delay: bool, start: float
    ) -> dict[str, Any]:
        """Poll ``POST /face/tasks`` until the task is done (its answer, with ``task_id``) or failed
        (:class:`TaskFailedError`), for ``poll.deadline`` seconds (default the client's policy) from
        ``start``; learned polling as for AILab, never twice within the provider's floor (3 s).
        The task is a row in the provider's one scheduler (shared by the client and its views)."""
        ctx = self._ctx
        plan = self._plan(poll, learn=first_delay)
        answer = await ctx.scheduler.wait(
            plan, task_id, concurrency=ctx.connections, start=start, first_delay=first_delay
        )
        assert answer is not None
        answer.setdefault("task_id", task_id)
        _ace.check_callback(answer, task_id)
        return answer

    def _plan(self, poll: PollPolicy | None, *, learn: bool) -> _Waits:
        """The plan of a wait made now through this namespace (one object for every wait made through
        the same client or view, in the same scope, with the same ``poll``)."""
        ctx = self._ctx
        scope = current_scope()
        key = (id(ctx), id(scope), poll, learn)
        cache: dict[tuple[int, int, PollPolicy | None, bool], _Waits] = self.__dict__.setdefault("_plans", {})
        plan = cache.get(key)
        if plan is not None and plan.ctx is ctx and plan.scope is scope:
            return plan
        settings = ctx.settings
        policy = (poll or settings.poll).with_floor(_ace.POLL_FLOOR, settings.time_scale)
        learner = settings.durations.get(ctx.name, "swap") if learn else None
        plan = _Waits(ctx, policy, learner, settings.rng, scope, settings.on_status is not None)
        if len(cache) >= 64:
            cache.clear()
        cache[key] = plan
        return plan

    async def submit_swap(
        self,
        *,
        source: ImageInput,
        target: ImageInput,
        callback_url: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """Start a swap and return its task id at once: its result is POSTed to your own
        ``callback_url``, or, without one, sent with ``async: true`` to be fetched by :meth:`result`.

        Nothing waits here: check a POSTed body with :meth:`unwrap_callback` in your own web
        framework, then :meth:`aioface.Client.download` the image (or :meth:`result` by id).
        """
        if callback_url is not None:
            self._check_reachable(callback_url)
            check_http_url(callback_url, param="callback_url")
        if timeout is not None:
            _ace.number(timeout, "timeout")
        src, tgt = await self._urls([(source, "source"), (target, "target")])
        body = _ace.swap_body(src, tgt, timeout, callback_url, asynchronous=callback_url is None)
        return _ace.task_id_of(await self._post("swap", body))

    @staticmethod
    def unwrap_callback(body: bytes | str | Mapping[str, Any], *, task_id: str | None = None) -> _ace.SwapCallback:
        """Parse and check a callback body (bytes, text or parsed JSON) from your own webhook.

        A failed task raises :class:`TaskFailedError`; a malformed body, or one for another task
        than ``task_id``, raises :class:`ProtocolError`.
        """
        return _ace.unwrap_callback(body, task_id)

    async def result(
        self, task_id: str, dest: Dest = None, *, poll: PollPolicy | None = None, download: bool = True
    ) -> ImageResult:
        """Wait for task ``task_id`` (a swap submitted earlier) and save its image, paying nothing again.

        Polls at once, then as :meth:`swap` does, by ``poll`` (default the client's policy; its
        ``deadline`` bounds the wait); :class:`TaskTimeoutError` after that. GUESS: the face docs name no task
        endpoint; ``POST /face/tasks`` with ``{"id", "action": "retrieve"}`` is the platform's
        convention for its other services (and its SDK's fallback for any service).
        """
        check_dest(dest)
        answer = await self._wait_task(task_id, poll, first_delay=False, start=anyio.current_time())
        return await self._image(answer, dest, download)

    def _check_reachable(self, callback_url: str) -> None:
        """Refuse, before anything is paid for, a callback URL only this machine can reach."""
        if is_local_url(callback_url) and not is_local_url(self._ctx.base_url):
            raise InvalidRequestError(
                f"callback URL {callback_url} is only reachable from this machine, so acedata could never "
                "call it back; give the receiver a public address: CallbackReceiver(public_url=...) or "
                "--callback-url",
                param="callback",
            )
