"""Ace Data Cloud's public methods (``client.acedata``): the ``/face/`` family and its callback flow."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from ..._errors import InvalidRequestError, TaskTimeoutError
from ..._net import is_local_url
from ..._types import FaceAnalysis, ImageResult, Liveness, TaskStatus
from ...results._download import Dest, check_dest
from ...tasks._polling import intervals
from .._base import ProviderNamespace
from . import _adapter as _ace
from ._callbacks import CallbackReceiver


class AceData(ProviderNamespace):
    """Ace Data Cloud's ``/face/`` family. Reached as ``client.acedata``.

    Every image operation saves to ``dest``: a file path (suffix from the content), a folder (the
    file named after the task), None (in memory, ``result.data``) or a binary file object / async
    sink. ``download=False`` fetches nothing: the result carries the provider's URL
    (``source_url``, valid for hours) and what it declared (size, width, height).
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
        extra = _ace.result_extra(data)
        return await self._ctx.save_result(
            url,
            dest,
            expected_size=declared,
            dimensions=(extra.get("image_width"), extra.get("image_height")),
            download=download,
            task_id=str(tid) if tid else None,
            request_id=str(data["trace_id"]) if data.get("trace_id") else None,
            extra=extra,
        )

    async def _edit(self, op: str, body: Mapping[str, Any], dest: Dest, download: bool) -> ImageResult:
        """A synchronous image operation: processing, then the result downloaded (unless not)."""
        return await self._image(await self._post(op, body, status="processing"), dest, download)

    async def change_age(
        self,
        image_url: str,
        ages: Sequence[int],
        dest: Dest = None,
        *,
        face_rects: Sequence[Mapping[str, int]] | None = None,
        download: bool = True,
    ) -> ImageResult:
        """Age (or rejuvenate) the faces of ``image_url``: one age per face (the provider judges the range)."""
        check_dest(dest)
        body = _ace.change_age_body(image_url, ages, face_rects)
        return await self._edit("change-age", body, dest, download)

    async def change_gender(
        self, image_url: str, genders: Sequence[int], dest: Dest = None, *, download: bool = True
    ) -> ImageResult:
        """Change the gender of the faces of ``image_url`` (one 0 or 1 per face)."""
        check_dest(dest)
        body = _ace.change_gender_body(image_url, genders)
        return await self._edit("change-gender", body, dest, download)

    async def beautify(self, image_url: str, dest: Dest = None, *, download: bool = True) -> ImageResult:
        """Beautify the faces of ``image_url``."""
        check_dest(dest)
        return await self._edit("beautify", _ace.image_body(image_url), dest, download)

    async def cartoon(self, image_url: str, dest: Dest = None, *, download: bool = True) -> ImageResult:
        """Turn ``image_url`` into a cartoon."""
        check_dest(dest)
        return await self._edit("cartoon", _ace.image_body(image_url), dest, download)

    async def analyze(self, image_url: str) -> FaceAnalysis:
        """Face analysis of ``image_url``: the faces (age, gender, beauty, ...) and the provider's JSON."""
        return _ace.analysis(await self._post("analyze", _ace.image_body(image_url)))

    async def detect_live(self, image_url: str) -> Liveness:
        """Liveness check of ``image_url``: ``is_live``, ``score`` and the provider's JSON."""
        return _ace.liveness(await self._post("detect-live", _ace.image_body(image_url)))

    async def swap(
        self,
        dest: Dest = None,
        *,
        source: str,
        target: str,
        timeout: int | None = None,
        callback: CallbackReceiver | None = None,
        wait_timeout: float | None = None,
        download: bool = True,
    ) -> ImageResult:
        """Put the face of ``source`` into the picture ``target`` (both URLs) and save the result.

        Without ``callback`` the call holds the connection until the swap is done (``timeout``
        seconds at most, 120 by default at the provider); when the provider's ``timeout`` passes
        first it answers with the task id only, raised as :class:`TaskTimeoutError` carrying
        ``task_id``: go on waiting with :meth:`result`. With a :class:`CallbackReceiver` the
        provider answers at once with a task id and this coroutine waits, without a connection,
        for its POST (``wait_timeout`` seconds, default the poll deadline).
        """
        check_dest(dest)
        if callback is None:
            body = _ace.swap_body(source, target, timeout)
            read = (timeout or _ace.DEFAULT_SWAP_TIMEOUT) + 30.0
            data = await self._post("swap", body, timeout=read, status="processing")
            if "image_url" not in data and isinstance(data.get("task_id"), str):
                tid = data["task_id"]
                raise TaskTimeoutError(
                    f"acedata swap task {tid} was not done within its timeout; "
                    f"await client.acedata.result({tid!r}, dest) to go on waiting",
                    provider="acedata",
                    task_id=tid,
                )
            return await self._image(data, dest, download)
        self._check_reachable(callback.public_url)
        nonce, url = callback.register()
        try:
            body = _ace.swap_body(source, target, timeout, url)
            task_id = _ace.task_id_of(await self._post("swap", body))
            callback.bind(nonce, task_id)
            await self._ctx.status("queued", task_id=task_id)
            limit = wait_timeout if wait_timeout is not None else self._ctx.settings.poll.deadline
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

    async def submit_swap(self, *, source: str, target: str, callback_url: str, timeout: int | None = None) -> str:
        """Start a swap whose result the provider POSTs to your own ``callback_url``; the task id.

        Nothing waits here: check the POSTed body with :meth:`unwrap_callback` in your own web
        framework, then :meth:`aioface.Client.download` the image (or :meth:`result` by id).
        """
        self._check_reachable(callback_url)
        body = _ace.swap_body(source, target, timeout, callback_url)
        return _ace.task_id_of(await self._post("swap", body))

    @staticmethod
    def unwrap_callback(body: bytes | str | Mapping[str, Any], *, task_id: str | None = None) -> _ace.SwapCallback:
        """Parse and check a callback body (bytes, text or parsed JSON) from your own webhook.

        A failed task raises :class:`TaskFailedError`; a malformed body, or one for another task
        than ``task_id``, raises :class:`ProtocolError`.
        """
        return _ace.unwrap_callback(body, task_id)

    async def result(
        self, task_id: str, dest: Dest = None, *, wait_timeout: float | None = None, download: bool = True
    ) -> ImageResult:
        """Wait for task ``task_id`` (a swap that outlived its ``timeout``) and save its image.

        Polls the provider's task endpoint with backoff and jitter for at most ``wait_timeout``
        seconds (default: the poll deadline); :class:`TaskTimeoutError` after that.
        """
        ctx = self._ctx
        policy = ctx.settings.poll
        limit = wait_timeout if wait_timeout is not None else policy.deadline
        waits = intervals(policy, ctx.settings.rng)
        with anyio.move_on_after(limit):
            while True:
                spec = _ace.task_request(ctx.base_url, ctx.key() or "", task_id)
                answer = await ctx.call_json(spec, _ace.parse_task)
                if answer is not None:
                    _ace.check_callback(answer, task_id)
                    return await self._image({"task_id": task_id, **answer}, dest, download)
                await anyio.sleep(next(waits))
        raise TaskTimeoutError(
            f"acedata task {task_id} not done within {limit:g}s", provider="acedata", task_id=task_id
        )

    def _check_reachable(self, callback_url: str) -> None:
        """Refuse, before anything is paid for, a callback URL only this machine can reach."""
        if is_local_url(callback_url) and not is_local_url(self._ctx.base_url):
            raise InvalidRequestError(
                f"callback URL {callback_url} is only reachable from this machine, so acedata could never "
                "call it back; give the receiver a public address: CallbackReceiver(public_url=...) or "
                "--callback-url",
                param="callback",
            )
