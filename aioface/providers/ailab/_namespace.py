"""AILabAPI's public methods (``client.ailab``): upload, poll the task, download the result."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import AsyncIterable, Coroutine, Iterable
from pathlib import Path
from typing import Any

import anyio

from ..._errors import (
    AiofaceError,
    ImageRejectedError,
    InvalidRequestError,
    ProtocolError,
    TaskFailedError,
    TaskTimeoutError,
)
from ..._net import check_http_url
from ..._options import current as current_scope
from ..._types import ImageResult
from ...results._dest import Dest, check_dest
from ...tasks._polling import PollPolicy
from ...tasks._scheduler import WaitPlan
from ...tasks._waitmany import PollKind, TaskRef, WaitMany
from ...transports._base import RequestSpec, Response
from .._base import ProviderContext, ProviderNamespace
from . import _adapter as _ailab

ImageInput = str | os.PathLike[str] | bytes


def _read_local(
    path: Path, param: str, max_bytes: int = _ailab.MAX_BYTES, limit: str = "AILab accepts at most 5 MB"
) -> bytes:
    """A regular file's bytes, read with the cap (``max_bytes``, said as ``limit``) enforced while
    reading (a FIFO, a device or a symlink to one is refused without blocking: it would read for
    ever or exhaust memory)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise InvalidRequestError(f"{param}: cannot read {path}: {exc.strerror}", param=param) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ImageRejectedError(f"{param}: {path} is not a regular file", param=param, rule="not_a_file")
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise ImageRejectedError(
                    f"{param} is over {max_bytes} bytes; {limit}",
                    param=param,
                    rule="max_bytes",
                )
        return b"".join(chunks)
    except OSError as exc:
        raise InvalidRequestError(f"{param}: cannot read {path}: {exc.strerror}", param=param) from None
    finally:
        os.close(fd)


log = logging.getLogger("aioface")

_KINDS: dict[int | None, PollKind] = {
    _ailab.QUEUED: "queued",
    _ailab.PROCESSING: "processing",
    _ailab.DONE: "done",
    _ailab.FAILED: "failed",
}


def _unknown(task_id: str, status: int | None, logged: set[str]) -> None:
    """An unknown task_status: polled on until the deadline (as the SDK does), logged once a task."""
    if task_id not in logged:
        logged.add(task_id)
        log.warning("ailab task %s: unknown task_status %r; polling on until the deadline", task_id, status)


def _failed(task_id: str, status: int) -> TaskFailedError:
    return TaskFailedError(f"AILab task {task_id} ended with task_status {status}", provider="ailab", task_id=task_id)


def _timed_out(task_id: str, deadline: float) -> TaskTimeoutError:
    return TaskTimeoutError(f"AILab task {task_id} not done within {deadline:g}s", provider="ailab", task_id=task_id)


class _Waits(WaitPlan[str]):
    """How AILab tasks are waited for through one client or view: poll ``GET`` the task, read its status."""

    __slots__ = ("ctx", "logged", "poll_arg")

    def __init__(self, ctx: ProviderContext, poll_arg: PollPolicy | None, *args: Any) -> None:
        super().__init__(*args)
        self.ctx = ctx
        self.poll_arg = poll_arg
        self.logged: set[str] = set()

    async def poll(self, task_id: str) -> tuple[PollKind, int, str | None]:
        ctx = self.ctx
        spec = _ailab.poll_request(ctx.base_url, ctx.key() or "", task_id)
        status, url = _ailab.task_state(await ctx.call_json(spec, _ailab.parse_result))
        kind = _KINDS.get(status)
        code = -1 if status is None else status
        if kind is None:  # unknown: polled on (as still processing) until the deadline
            _unknown(task_id, status, self.logged)
            return "processing", code, None
        return kind, code, url

    def announces(self, code: int) -> bool:
        return code in (_ailab.QUEUED, _ailab.PROCESSING)

    async def announce(self, kind: PollKind, task_id: str, code: int) -> None:
        await self.ctx.status(kind, task_id=task_id, code=code)

    def failed(self, task_id: str, code: int, value: str | None) -> Exception:
        return _failed(task_id, _ailab.FAILED)

    def timed_out(self, task_id: str, deadline: float) -> Exception:
        return _timed_out(task_id, deadline)


class AILab(ProviderNamespace):
    """AILabAPI AI Face Swap. Reached as ``client.ailab``."""

    async def _load(self, image: ImageInput, param: str) -> _ailab.CheckedImage:
        if isinstance(image, bytes):
            data = image
        elif isinstance(image, str) and image.startswith(("http://", "https://")):
            data = await self._fetch(image, param)
        elif isinstance(image, (str, os.PathLike)):
            data = await anyio.to_thread.run_sync(_read_local, Path(image), param)
        else:
            raise InvalidRequestError(f"{param} must be a path, bytes or an http(s) URL", param=param)
        return _ailab.check_image(data, param)

    async def _fetch(self, url: str, param: str) -> bytes:
        check_http_url(url, param=param)  # a malformed URL: refused here, typed, before any request

        async def handle(resp: Response) -> bytes:
            try:
                return await resp.read(_ailab.MAX_BYTES)
            except ProtocolError:
                raise ImageRejectedError(f"{param} at {url} is over 5 MB", param=param, rule="max_bytes") from None

        return await self._ctx.fetch(RequestSpec("GET", url, {}), handle)

    async def submit(self, *, source: ImageInput, target: ImageInput) -> str:
        """Check both images locally, upload them, and return the task id (the face of ``source``
        goes into the picture ``target``)."""
        return _ailab.task_id_of(await self._submit(source, target))

    async def _submit(self, source: ImageInput, target: ImageInput) -> dict[str, Any]:
        ctx = self._ctx
        key = ctx.key() or ""
        tp = await self._load(source, "source")
        t = await self._load(target, "target")
        spec = _ailab.submit_request(ctx.base_url, key, t, tp)
        return await ctx.call_json(spec, _ailab.parse_result)

    async def credits(self) -> _ailab.Credits:
        """The account's remaining credits (``GET /api/common/query-credits``, as the SDK asks)."""
        ctx = self._ctx
        spec = _ailab.credits_request(ctx.base_url, ctx.key() or "")
        return _ailab.credits(await ctx.call_json(spec, _ailab.parse_result))

    def _policy(self, poll: PollPolicy | None) -> PollPolicy:
        """``poll`` (or the client's) with the provider's floor between two polls, unless it sets one."""
        settings = self._ctx.settings
        return (poll or settings.poll).with_floor(_ailab.POLL_FLOOR, settings.time_scale)

    async def task(self, task_id: str) -> tuple[int | None, str | None]:
        """One poll: (task_status, result URL when done); the status is None when the answer holds none."""
        ctx = self._ctx
        spec = _ailab.poll_request(ctx.base_url, ctx.key() or "", task_id)
        return _ailab.task_state(await ctx.call_json(spec, _ailab.parse_result))

    def wait(
        self,
        task_id: str,
        *,
        poll: PollPolicy | None = None,
        first_delay: bool = True,
        submitted_at: float | None = None,
    ) -> Coroutine[Any, Any, str]:
        """Poll until the task is done; return the result URL.

        Polls where AILab swaps tend to finish (learned from the last ones; see :class:`PollPolicy`),
        with backoff until enough have been seen; jittered so that thousands submitted together do
        not poll in the same instant. The first poll comes after the first wait: a task just
        submitted is never done at once. ``submitted_at`` (``anyio.current_time()`` at submission)
        for a task not submitted just now: its polls and learned duration count from then.
        ``first_delay=False`` checks at once (for a task of unknown age: it is polled with backoff
        and teaches nothing).

        Every wait of the client and its views is a row in the provider's one scheduler (a heap of
        due times polled by at most ``connections`` workers), so ``client.map(lambda t:
        client.ailab.wait(t), ids, concurrency=100_000)`` costs a row per task, not a loop and timer.
        ``await`` it as any coroutine (it is the scheduler's: no frame of its own per waiting task).
        """
        return self._wait(task_id, poll, first_delay, submitted_at, None)

    def _wait(
        self,
        task_id: str,
        poll: PollPolicy | None,
        first_delay: bool,
        submitted_at: float | None,
        seen: int | None,
    ) -> Coroutine[Any, Any, str]:
        """:meth:`wait`; ``seen``: the status already announced (a swap announces ``queued`` at submit).

        The task becomes a row in the provider's one scheduler (:class:`~aioface.tasks._scheduler.Scheduler`,
        shared by the client and its views): no loop or timer of its own; this only awaits its end."""
        ctx = self._ctx
        plan = self._plan(poll, learn=first_delay or submitted_at is not None)
        return ctx.scheduler.wait(  # not a coroutine of its own: one frame less for each waiting task
            plan, task_id, concurrency=ctx.connections, start=submitted_at, first_delay=first_delay, seen=seen
        )

    def _plan(self, poll: PollPolicy | None, *, learn: bool) -> _Waits:
        """The plan of a wait made now through this namespace (the same object for every wait made
        through the same client or view, in the same scope, with the same ``poll``: 100,000 waits
        share one)."""
        ctx = self._ctx
        scope = current_scope()
        key = (id(ctx), id(scope), id(poll), learn)
        cache: dict[tuple[int, int, int, bool], _Waits] = self.__dict__.setdefault("_plans", {})
        plan = cache.get(key)
        if plan is not None and plan.ctx is ctx and plan.scope is scope and plan.poll_arg is poll:
            return plan
        settings = ctx.settings
        learner = settings.durations.get(ctx.name, "swap") if learn else None
        plan = _Waits(ctx, poll, self._policy(poll), learner, settings.rng, scope, settings.on_status is not None)
        if len(cache) >= 64:
            cache.clear()
        cache[key] = plan
        return plan

    def wait_many(
        self,
        tasks: Iterable[TaskRef] | AsyncIterable[TaskRef],
        *,
        poll: PollPolicy | None = None,
        submitted_at: float | None = None,
        concurrency: int | None = None,
    ) -> WaitMany[str]:
        """Wait for many tasks at once: ``async with client.ailab.wait_many(ids) as results:
        async for outcome in results``, one :class:`~aioface.Outcome` per task as it ends
        (``outcome.item`` the task id, ``outcome.index`` its position, ``outcome.value`` the result
        URL, or ``outcome.error`` a :class:`TaskFailedError` / :class:`TaskTimeoutError` carrying
        ``task_id``, or the error of a poll that failed after its retries).

        The same polling as :meth:`wait` (learned, jittered, ``poll.deadline`` per task from its
        submission; ``on_status`` hears ``queued``, ``processing``, ``failed``), but a waiting task is
        a row in a heap of due times (about 0.25 KB, nothing for the cyclic GC to scan) instead of a
        coroutine, task and timer of its own: ``concurrency`` workers (default: the client's
        ``connections``) poll whatever is due. For thousands of tasks; 100,000 fit on one loop.

        ``tasks``: ids, or ``(id, submitted_at)`` pairs (``anyio.current_time()`` at submission), a
        plain or async iterable (read as it comes, so submitting and waiting can overlap);
        ``submitted_at`` is the submission time of the plain ids (default: now). Leaving the block
        early stops every poll; tasks not ended are given up (recorded as still running).
        A bad id is an InvalidRequestError before any poll; an iterable of ids that raises ends,
        after the outcomes of every id read, in a :class:`FeedError` (see :class:`WaitMany`).
        """
        ctx = self._ctx
        settings = ctx.settings
        policy = self._policy(poll)
        logged: set[str] = set()

        async def poll_once(task_id: str) -> tuple[PollKind, int, str | None]:
            spec = _ailab.poll_request(ctx.base_url, ctx.key() or "", task_id)
            status, url = _ailab.task_state(await ctx.call_json(spec, _ailab.parse_result))
            kind = _KINDS.get(status)
            if kind is None:  # unknown: polled on (as still processing) until the deadline
                _unknown(task_id, status, logged)
                kind = "processing"
            return kind, -1 if status is None else status, url

        async def announce(kind: PollKind, task_id: str, code: int) -> None:
            await ctx.status(kind, task_id=task_id, code=code)

        return WaitMany(
            tasks,
            poll=poll_once,
            announce=announce,
            failed=_failed,
            timed_out=_timed_out,
            policy=policy,
            learner=settings.durations.get(ctx.name, "swap"),
            rng=settings.rng,
            concurrency=ctx.connections if concurrency is None else concurrency,
            submitted_at=submitted_at,
        )

    async def swap(
        self,
        dest: Dest = None,
        *,
        source: ImageInput,
        target: ImageInput,
        poll: PollPolicy | None = None,
        download: bool = True,
    ) -> ImageResult:
        """Put the face of ``source`` into the picture ``target`` (each a path, bytes or URL) and save it.

        ``source`` is uploaded as AILab's ``image_template``, ``target`` as its ``image_target``.
        ``dest``: a file path, a folder (the file named after the task), None (in memory,
        ``result.data``) or a binary file object / async sink. ``download=False`` fetches
        nothing: the result carries the provider's URL (``source_url``, valid for 24 hours).
        """
        check_dest(dest)
        answer = await self._submit(source, target)
        task_id = _ailab.task_id_of(answer)
        try:  # the task is paid for from here: an error that ends the wait says which task it was
            await self._ctx.status("queued", task_id=task_id)
            url = await self._wait(task_id, poll, True, None, _ailab.QUEUED)  # a poll saying 0 repeats nothing
        except AiofaceError as exc:
            exc.add_ids(task_id=task_id)
            raise
        # The submit answer's ids: that request created (and billed) the task.
        ids = _ailab.answer_ids(answer)
        return await self._ctx.save_result(url, dest, download=download, task_id=task_id, **ids)

    async def result(
        self, task_id: str, dest: Dest = None, *, poll: PollPolicy | None = None, download: bool = True
    ) -> ImageResult:
        """Go on waiting for task ``task_id`` (a swap submitted earlier, e.g. by a run that ended or
        timed out) and save its image: polled at once, then with backoff; nothing is paid again."""
        check_dest(dest)
        url = await self.wait(task_id, poll=poll, first_delay=False)
        return await self._ctx.save_result(url, dest, download=download, task_id=task_id)
