"""Ace Data Cloud's public methods (``client.acedata``): the ``/face/`` family and its callback flow."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..._errors import ProtocolError, TaskFailedError, TaskTimeoutError
from ..._types import ImageResult
from .._base import ProviderNamespace
from . import _adapter as _ace
from ._callbacks import CallbackReceiver


class AceData(ProviderNamespace):
    """Ace Data Cloud's ``/face/`` family. Reached as ``client.acedata``."""

    async def _post(self, op: str, body: Mapping[str, Any], timeout: float | None = None) -> dict[str, Any]:
        ctx = self._ctx
        spec = _ace.build_request(ctx.base_url, ctx.key() or "", op, body, timeout)
        return await ctx.call_json(spec, _ace.parse_result)

    async def _image(self, data: Mapping[str, Any], dest: str | os.PathLike[str]) -> ImageResult:
        url, declared = _ace.image_result_fields(data)
        tid = data.get("task_id")
        return await self._ctx.save_result(
            url,
            dest,
            expected_size=declared,
            task_id=str(tid) if tid else None,
            request_id=str(data["trace_id"]) if data.get("trace_id") else None,
            extra=_ace.result_extra(data),
        )

    async def change_age(
        self,
        image_url: str,
        ages: Sequence[int],
        dest: str | os.PathLike[str],
        *,
        face_rects: Sequence[Mapping[str, int]] | None = None,
    ) -> ImageResult:
        """Age (or rejuvenate) the faces of ``image_url``: one age per face (the provider judges the range)."""
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
            limit = wait_timeout if wait_timeout is not None else self._ctx.settings.poll.deadline
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
