"""Many waiting tasks, one scheduler: a heap of due times polled by a bounded pool of workers.

For ids the caller holds in bulk (single waits, ``wait()``, join the provider's shared scheduler,
:mod:`aioface.tasks._scheduler`, the same design with a row object per task). Here a waiting task is a row
of a few flat arrays (its id, submission time, last "running" answer, learner token, last status)
and a ``(due, row)`` pair in a heap: about 0.25 KB, and nothing the GC has to look at (the pairs
hold only a float and an int, so the GC stops tracking them). One scheduler coroutine sleeps until
the earliest due time and hands due rows to ``concurrency`` worker coroutines (the size of the
connection pool): a poll falling due when every worker is busy waits in the heap, costing nothing.

Provider-neutral: the provider gives ``poll(task_id) -> (kind, code, value)`` (``kind`` one of
``"queued"``, ``"processing"``, ``"done"``, ``"failed"``), how to announce status events and the
errors to raise; polling is learned as in ``wait()`` (:func:`~aioface.tasks._polling.next_delay`).

Nothing paid is lost: ids are checked as they are read (a bad one is an InvalidRequestError before
any poll of a list); when the iterable of ids raises, every id read before it is still polled to
its end and its outcome delivered, then a :class:`~aioface.FeedError` says why and names the ids
the caller got no outcome for. The caller's own exception in the block comes out as itself.
"""

from __future__ import annotations

import heapq
import math
import random
from array import array
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import Generic, Literal, TypeVar

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._errors import FeedError, InvalidRequestError
from ._fanout import Outcome, drain_unread, exit_task_group, feed_error_after
from ._learn import DurationLearner
from ._polling import PollPolicy, next_delay

T = TypeVar("T")

#: What one poll found: ``"queued"`` / ``"processing"`` (still running), ``"done"``, ``"failed"``.
PollKind = Literal["queued", "processing", "done", "failed"]
#: A task to wait for: its id, or ``(id, submitted_at)`` (``anyio.current_time()`` at submission).
TaskRef = str | tuple[str, float]

_RUNNING: dict[str, int] = {"queued": 1, "processing": 2}  # the status last seen, as kept in a bytearray
_FEED_CHUNK = 256  # rows added between loop turns while reading the ids


def check_task_ref(ref: object, index: int) -> tuple[str, float | None]:
    """``(task_id, submitted_at or None)`` of one entry of ``ids``, or an InvalidRequestError naming it."""
    if isinstance(ref, str) and ref:
        return ref, None
    if isinstance(ref, tuple) and len(ref) == 2:
        task_id, at = ref
        if (
            isinstance(task_id, str)
            and task_id
            and isinstance(at, (int, float))
            and not isinstance(at, bool)
            and math.isfinite(at)
        ):
            return task_id, float(at)
    raise InvalidRequestError(
        f"task id at index {index} must be a non-empty str or a (task_id, submitted_at) pair, got {ref!r:.80}",
        param="ids",
    )


class WaitMany(Generic[T]):
    """``async with ...wait_many(ids) as results: async for outcome in results``: one
    :class:`~aioface.Outcome` per id (``item`` the task id, ``index`` its position in ``ids``,
    ``value`` the result or ``error`` the exception), in the order tasks end.

    Leaving the block early stops polling at once (polls in flight are cancelled) and tells the
    duration learner that the tasks still running were given up (right-censored).

    Nothing paid is lost: an id that is not a non-empty str or a ``(task_id, submitted_at)`` pair
    is an :class:`~aioface.InvalidRequestError` naming it (a sequence is checked whole here, before
    any poll; a bare str as ``tasks`` is refused with a hint to pass ``[task_id]``). When the
    iterable of ids raises (an async generator whose submit runs out of credit), every id read
    before it is still polled to its end and its outcome delivered; then the ``async for`` raises a
    :class:`~aioface.FeedError` (``error`` the cause, ``pending`` the ids without an outcome: empty
    there; the ones still running when the block is left early, raised on leaving it instead). The
    caller's own exception in the block comes out as itself, never inside an ExceptionGroup.
    """

    def __init__(
        self,
        tasks: Iterable[TaskRef] | AsyncIterable[TaskRef],
        *,
        poll: Callable[[str], Awaitable[tuple[PollKind, int, T | None]]],
        announce: Callable[[PollKind, str, int], Awaitable[None]],
        failed: Callable[[str, int], Exception],
        timed_out: Callable[[str, float], Exception],
        policy: PollPolicy,
        learner: DurationLearner | None,
        rng: random.Random | None,
        concurrency: int,
        submitted_at: float | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if isinstance(tasks, (str, bytes, bytearray)):
            raise InvalidRequestError(
                f"ids must be an iterable of task ids, got the single {type(tasks).__name__} {tasks!r:.60} "
                "(it would be read letter by letter): pass [task_id]",
                param="ids",
            )
        if not isinstance(tasks, (Iterable, AsyncIterable)):
            raise InvalidRequestError(f"ids must be an iterable of task ids, got {tasks!r:.60}", param="ids")
        if isinstance(tasks, Sequence):  # known up front: every id checked before any poll
            for i, ref in enumerate(tasks):
                check_task_ref(ref, i)
        self._tasks = tasks
        self._poll = poll
        self._announce = announce
        self._failed = failed
        self._timed_out = timed_out
        self._policy = policy
        self._learner = learner
        self._rng = rng
        self._concurrency = concurrency
        self._submitted_at = submitted_at
        # One row per task, in input order.
        self._ids: list[str] = []
        self._start = array("d")  # submission time (anyio.current_time())
        self._pending = array("d")  # seconds after submission of the last poll that found it running
        self._token = array("q")  # the learner's token
        self._seen = bytearray()  # 0 never polled, 1 queued, 2 processing
        self._ended = bytearray()  # 1 once its outcome is made
        self._heap: list[tuple[float, int]] = []  # (due, row)
        self._fed = False  # every id has been read
        self._open = 0  # rows read and not ended
        self._busy = 0  # rows out of the heap and not yet ended or back in it
        self._armed_at = math.inf  # when the sleeping scheduler wakes (inf: not sleeping on a time)
        self._wake: anyio.Event | None = None
        self._tg: TaskGroup | None = None
        self._out: MemoryObjectReceiveStream[Outcome[str, T]] | None = None
        self._entered = False
        self._feed_error: BaseException | None = None  # the iterable of ids raised this
        self._lost: list[str] = []  # ids whose outcome was made but never reached the caller

    # -- bookkeeping ------------------------------------------------------------------
    @property
    def waiting(self) -> int:
        """Tasks read and not yet ended (in the heap or being polled)."""
        return self._open

    def _push(self, due: float, row: int) -> None:
        heapq.heappush(self._heap, (due, row))
        if due < self._armed_at and self._wake is not None:
            self._wake.set()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _add(self, ref: TaskRef) -> None:
        task_id, submitted = check_task_ref(ref, len(self._ids))
        if submitted is None:
            submitted = self._submitted_at
        now = anyio.current_time()
        start = now if submitted is None else float(submitted)
        row = len(self._ids)
        self._ids.append(task_id)
        self._start.append(start)
        self._pending.append(0.0)
        self._token.append(self._learner.begin() if self._learner is not None else 0)
        self._seen.append(0)
        self._ended.append(0)
        self._open += 1
        delay = next_delay(self._policy, now - start, self._learner, self._rng)
        self._push(now + (delay or 0.0), row)  # past its deadline already: one poll still

    def _end(self, row: int, value: T | None, error: Exception | None, ended_at: float | None) -> Outcome[str, T]:
        """The row's outcome; the learner is told (an end at ``ended_at``, else given up)."""
        self._ended[row] = 1
        self._open -= 1
        if self._learner is not None:
            if ended_at is not None:
                self._learner.finish(self._token[row], self._pending[row], ended_at)
            else:
                self._learner.abandon(self._token[row], self._pending[row])
        task_id = self._ids[row]
        self._ids[row] = ""  # the id lives on in the outcome only
        return Outcome(row, task_id, value, error)

    # -- the coroutines ---------------------------------------------------------------
    async def _feed(self) -> None:
        tasks = self._tasks
        n = 0
        try:
            if isinstance(tasks, AsyncIterable):
                async for ref in tasks:
                    self._add(ref)
            else:
                for ref in tasks:
                    self._add(ref)
                    n += 1
                    if n % _FEED_CHUNK == 0:
                        await anyio.lowlevel.checkpoint()  # 100,000 ids never stall the loop
        except Exception as exc:  # the ids' source failed: the ids read are still waited for
            self._feed_error = exc
        finally:
            self._fed = True
            self._poke()

    async def _schedule(self, send: MemoryObjectSendStream[int]) -> None:
        """Sleep until the earliest due time; hand each due row to a free worker."""
        heap = self._heap
        async with send:
            while True:
                if heap:
                    due = heap[0][0]
                    if due <= anyio.current_time():
                        row = heapq.heappop(heap)[1]
                        self._busy += 1
                        try:
                            send.send_nowait(row)  # a worker is waiting: no extra loop turn
                        except anyio.WouldBlock:
                            await send.send(row)  # every worker busy: the heap waits, not the tasks
                        continue
                elif self._fed and self._busy == 0:
                    return
                else:
                    due = math.inf
                self._wake = wake = anyio.Event()
                self._armed_at = due
                try:
                    with anyio.move_on_after(due - anyio.current_time()):
                        await wake.wait()
                finally:
                    self._armed_at = math.inf
                    self._wake = None

    async def _work(self, rows: MemoryObjectReceiveStream[int], out: MemoryObjectSendStream[Outcome[str, T]]) -> None:
        async with rows, out:
            async for row in rows:
                outcome: Outcome[str, T] | None = None
                try:
                    outcome = await self._step(row)
                finally:  # cancelled while polling (the caller left): given up in __aexit__
                    self._busy -= 1
                    if self._busy == 0 and not self._heap:
                        self._poke()
                if outcome is not None:
                    sent = False
                    try:
                        try:
                            out.send_nowait(outcome)
                        except anyio.WouldBlock:
                            await out.send(outcome)
                        sent = True
                    finally:
                        if not sent:  # cancelled: the caller left the block
                            self._lost.append(outcome.item)

    async def _step(self, row: int) -> Outcome[str, T] | None:
        """Poll ``row`` once: its outcome when it ended, None when it went back in the heap."""
        policy = self._policy
        task_id = self._ids[row]
        start = self._start[row]
        deadline_at = start + policy.deadline
        now = anyio.current_time()
        if self._seen[row] and now >= deadline_at:
            return self._end(row, None, self._timed_out(task_id, policy.deadline), None)
        try:
            with anyio.move_on_after(deadline_at - now if now < deadline_at else math.inf) as scope:
                kind, code, value = await self._poll(task_id)
        except Exception as exc:  # the poll failed (after its retries): this task's outcome
            return self._end(row, None, exc, None)
        if scope.cancelled_caught:
            return self._end(row, None, self._timed_out(task_id, policy.deadline), None)
        at = anyio.current_time() - start  # the answer's time
        running = _RUNNING.get(kind)
        if running is not None and running != self._seen[row]:
            await self._announce(kind, task_id, code)
        if running is None:
            if kind == "done":
                return self._end(row, value, None, at)
            await self._announce("failed", task_id, code)
            return self._end(row, None, self._failed(task_id, code), at)
        self._seen[row] = running
        self._pending[row] = at
        delay = next_delay(policy, at, self._learner, self._rng, polled=True)
        if delay is None:
            return self._end(row, None, self._timed_out(task_id, policy.deadline), None)
        self._push(anyio.current_time() + delay, row)
        return None

    # -- the public face --------------------------------------------------------------
    async def __aenter__(self) -> WaitMany[T]:
        if self._entered:
            raise RuntimeError("a WaitMany can be entered once")
        self._entered = True
        rows_send, rows_recv = anyio.create_memory_object_stream[int](0)
        out_send, self._out = anyio.create_memory_object_stream[Outcome[str, T]](self._concurrency)
        self._tg = tg = anyio.create_task_group()
        await tg.__aenter__()
        tg.start_soon(self._feed)
        tg.start_soon(self._schedule, rows_send)
        with rows_recv, out_send:
            for _ in range(self._concurrency):
                tg.start_soon(self._work, rows_recv.clone(), out_send.clone())
        return self

    def __aiter__(self) -> AsyncIterator[Outcome[str, T]]:
        return self

    async def __anext__(self) -> Outcome[str, T]:
        if self._out is None:
            raise RuntimeError("use it inside `async with`: async with ...wait_many(ids) as results: ...")
        try:
            try:
                return self._out.receive_nowait()
            except anyio.WouldBlock:
                return await self._out.receive()
        except anyio.EndOfStream:
            error, self._feed_error = self._feed_error, None
            if error is not None:  # every id read has had its outcome: now the feed's error
                raise FeedError(error, taken=len(self._ids)) from error
            raise StopAsyncIteration from None

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._tg is not None and self._out is not None
        self._tg.cancel_scope.cancel()
        unread = drain_unread(self._out)
        self._out.close()
        try:
            result = await exit_task_group(self._tg, et, exc, tb)
        finally:
            running = [self._ids[row] for row in range(len(self._ids)) if not self._ended[row]]
            self._give_up_the_rest()
        pending = (*(o.item for o in unread), *self._lost, *running)
        feed_error_after(self._feed_error, exc, len(self._ids), pending)
        return result

    def _give_up_the_rest(self) -> None:
        """Every task read and not ended (left early, or an error): given up, for the learner."""
        ended, learner = self._ended, self._learner
        self._heap.clear()
        row = ended.find(0)
        while row >= 0:
            ended[row] = 1
            self._open -= 1
            if learner is not None:
                learner.abandon(self._token[row], self._pending[row])
            row = ended.find(0, row + 1)


__all__ = ["PollKind", "TaskRef", "WaitMany"]
