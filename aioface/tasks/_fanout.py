"""Run one coroutine function over many items: bounded concurrency, bounded memory, one outcome each.

Items are pulled lazily (sync or async iterables of any length); at most ``concurrency`` calls run
and at most ``concurrency`` finished outcomes wait to be read. A failure is an outcome, never a
reason to cancel the others. Leaving the ``async with`` block early cancels what is still running.
An exception of the caller's own code in the block comes out as itself (never in an ExceptionGroup);
an iterable of items that raises ends the run with a :class:`~aioface.FeedError`, after the
outcomes of the items already taken.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._errors import FeedError

T = TypeVar("T")
R = TypeVar("R")

_ITEM = "aioface.fan_out"  # every item task's name (one string, not a "Task-N" made for each)


async def _awaited(aw: Awaitable[R]) -> R:
    return await aw


async def exit_task_group(
    tg: TaskGroup, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
) -> bool | None:
    """Leave ``tg`` (entered by hand in an ``__aenter__``) so that the caller's own exception from
    the ``async with`` body comes out as itself, and a single error of the group's tasks as itself:
    only errors that truly happened together stay in an ExceptionGroup."""
    try:
        return await tg.__aexit__(et, exc, tb)
    except BaseExceptionGroup as group:
        if len(group.exceptions) != 1:
            raise
        only = group.exceptions[0]
    if only is exc:
        return False  # the body's exception propagates unchanged, its traceback intact
    raise only


def feed_error_after(
    feed_error: BaseException | None, body_exc: BaseException | None, taken: int, pending: tuple[Any, ...]
) -> None:
    """At the block's exit: raise the feed's error not yet reported (with the body's exception in
    an ExceptionGroup when the body failed too: both truly happened)."""
    if (
        feed_error is None
        or isinstance(body_exc, FeedError)
        or (body_exc is not None and not isinstance(body_exc, Exception))
    ):
        return
    err = FeedError(feed_error, taken=taken, pending=pending)
    err.__cause__ = feed_error
    if body_exc is not None:
        raise BaseExceptionGroup("the caller's block and the feed both failed", [body_exc, err])
    raise err


@dataclass(frozen=True, slots=True)  # slots: 100,000 outcomes kept by map() cost no dict each
class Outcome(Generic[T, R]):
    """What happened to one item: its position, the item, and a value or an error."""

    index: int
    item: T
    value: R | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        """True when the call returned."""
        return self.error is None

    def unwrap(self) -> R:
        """The value, or raise the error."""
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


class FanOut(Generic[T, R]):
    """``async with FanOut(fn, items, concurrency=8) as results: async for outcome in results``.

    When ``items`` raises, no item is taken any more, the calls started finish and their outcomes
    are delivered, then the ``async for`` raises :class:`~aioface.FeedError` (``pending``: the
    items without an outcome when the block is left early, raised on leaving it). An exception of
    the caller's own code in the block comes out as itself, not inside an ExceptionGroup.
    """

    def __init__(
        self,
        fn: Callable[[T], Awaitable[R]],
        items: Iterable[T] | AsyncIterable[T],
        *,
        concurrency: int = 8,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self._fn = fn
        self._items = items
        self._concurrency = concurrency
        self._lock = anyio.Lock()
        self._index = 0
        self._sync_it: Iterator[T] | None = None
        self._async_it: AsyncIterator[T] | None = None
        self._tg: TaskGroup | None = None
        self._recv: MemoryObjectReceiveStream[Outcome[T, R]] | None = None
        self._exhausted = False
        self._fed = False
        self._room: asyncio.Future[None] | None = None
        self._idle: asyncio.Future[None] | None = None  # set when the last item task ends
        self._on_done: Callable[[asyncio.Future[R]], None] = self._done  # one bound method for all
        #: The context _done runs in (it reads no context variable): one, not a copy per item.
        self._quiet = contextvars.Context()
        #: The item tasks still running and their (index, item) (plain asyncio tasks running the
        #: call itself, no wrapper coroutine: an anyio task and its cancel scope, or a frame, per
        #: item cost more than many a call; _feed waits for them, so the group still does).
        self._tasks: dict[asyncio.Future[R], tuple[int, T]] = {}
        self._send: MemoryObjectSendStream[Outcome[T, R]] | None = None
        #: Outcomes sent and not yet returned by ``__anext__`` (counted here: the stream's
        #: ``statistics()`` builds an object per look).
        self._unread = 0
        #: Calls running right now.
        self.in_flight = 0
        self._feed_error: BaseException | None = None  # the items' iterable raised this
        self._lost: list[T] = []  # items whose outcome never reached the consumer (cancelled)

    def _take(self, item: T) -> tuple[int, T]:
        i = self._index
        self._index += 1
        return i, item

    async def _next_item(self) -> tuple[int, T] | None:
        if self._exhausted:
            return None
        if self._sync_it is not None:
            # next() never awaits, so no other worker can interleave: no lock needed.
            try:
                return self._take(next(self._sync_it))
            except StopIteration:
                self._exhausted = True
                return None
        async with self._lock:  # an async iterator must not be advanced by two tasks at once
            if self._exhausted:
                return None
            assert self._async_it is not None
            try:
                return self._take(await self._async_it.__anext__())
            except StopAsyncIteration:
                self._exhausted = True
                return None

    def _done(self, task: asyncio.Future[R]) -> None:
        """An item's call ended: its outcome to the stream (a cancelled one is lost)."""
        i, item = self._tasks.pop(task)
        self.in_flight -= 1
        send = self._send
        assert send is not None
        exc = None if task.cancelled() else task.exception()
        if task.cancelled() or not (exc is None or isinstance(exc, Exception)):
            self._lost.append(item)  # the block was left early (or a BaseException: not an outcome)
        else:
            outcome: Outcome[T, R] = (
                Outcome(i, item, task.result(), None) if exc is None else Outcome(i, item, None, exc)
            )
            try:
                send.send_nowait(outcome)  # never blocks: _feed keeps the unread ones under the bound
                self._unread += 1
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._lost.append(item)  # the consumer left the block: nobody wants it
        self._wake()
        if self._fed and self.in_flight == 0:
            send.close()
        idle = self._idle
        if not self._tasks and idle is not None and not idle.done():
            idle.set_result(None)

    def _wake(self) -> None:
        room = self._room
        if room is not None and not room.done():
            room.set_result(None)

    def _full(self) -> bool:
        """``concurrency`` calls run, or as many outcomes wait to be read."""
        return self.in_flight >= self._concurrency or self._unread >= self._concurrency

    def _start(self, i: int, item: T) -> None:
        """The call for one item, as a task of its own (its outcome at once when ``fn`` raises)."""
        try:
            aw = self._fn(item)
        except Exception as exc:  # fn raised before returning an awaitable: the item's outcome
            assert self._send is not None
            try:
                self._send.send_nowait(Outcome(i, item, None, exc))
                self._unread += 1
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._lost.append(item)
            return
        loop = asyncio.get_running_loop()
        task = loop.create_task(aw if asyncio.iscoroutine(aw) else _awaited(aw), name=_ITEM)
        self.in_flight += 1
        self._tasks[task] = (i, item)
        task.add_done_callback(self._on_done, context=self._quiet)

    async def _feed(self, send: MemoryObjectSendStream[Outcome[T, R]]) -> None:
        """Start one task per item, never more than ``concurrency`` at once (nor more while as many
        outcomes wait to be read), and only as items come: a huge concurrency costs nothing until
        there is work for it."""
        loop = asyncio.get_running_loop()
        tasks = self._tasks
        self._send = send
        started = 0
        try:
            while True:
                while self._full():
                    self._room = loop.create_future()
                    await self._room
                try:
                    nxt = await self._next_item()
                except Exception as exc:  # the items' source failed: finish what started, then say so
                    self._feed_error, self._exhausted = exc, True
                    break
                if nxt is None:
                    break
                self._start(*nxt)
                started += 1
                if started % 256 == 0:
                    await anyio.lowlevel.checkpoint()  # let the started ones run: the loop never stalls
        finally:
            self._fed = True
            if self.in_flight == 0:
                send.close()
            try:
                await self._until_idle()  # the group ends when every item has: wait for them here
            finally:
                if tasks:  # cancelled (the block was left early): cancel the items, wait for them
                    for t in list(tasks):
                        t.cancel()
                    with anyio.CancelScope(shield=True):
                        await self._until_idle()

    async def _until_idle(self) -> None:
        """Until every item task has ended (one future set by the last, not a callback on each:
        ``asyncio.wait`` over 100,000 tasks would stall the loop adding and removing them)."""
        while self._tasks:
            self._idle = asyncio.get_running_loop().create_future()
            await self._idle

    async def __aenter__(self) -> FanOut[T, R]:
        if isinstance(self._items, AsyncIterable):
            self._async_it = aiter(self._items)
        else:
            self._sync_it = iter(self._items)
        # Unbounded: _feed stops while ``concurrency`` outcomes wait, so a call never waits to hand
        # its outcome over (no frame per call for that).
        send, self._recv = anyio.create_memory_object_stream[Outcome[T, R]](math.inf)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._feed, send)
        return self

    def __aiter__(self) -> FanOut[T, R]:
        return self

    async def __anext__(self) -> Outcome[T, R]:
        assert self._recv is not None
        try:
            try:
                outcome = self._recv.receive_nowait()
            except anyio.WouldBlock:
                outcome = await self._recv.receive()
            self._unread -= 1
            self._wake()  # room for one more outcome: the feed may go on
            return outcome
        except anyio.EndOfStream:
            error, self._feed_error = self._feed_error, None
            if error is not None:  # every item taken has had its outcome: now the feed's error
                raise FeedError(error, taken=self._index) from error
            raise StopAsyncIteration from None

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._tg is not None and self._recv is not None
        self._tg.cancel_scope.cancel()
        unread = drain_unread(self._recv)
        self._recv.close()
        result = await exit_task_group(self._tg, et, exc, tb)
        pending = (*(o.item for o in unread), *self._lost)
        feed_error_after(self._feed_error, exc, self._index, pending)
        return result


def drain_unread(recv: MemoryObjectReceiveStream[Outcome[T, R]]) -> list[Outcome[T, R]]:
    """The outcomes made and not read yet."""
    unread: list[Outcome[T, R]] = []
    while True:
        try:
            unread.append(recv.receive_nowait())
        except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
            return unread


async def map_all(
    fn: Callable[[T], Awaitable[R]],
    items: Iterable[T] | AsyncIterable[T],
    *,
    concurrency: int = 8,
) -> list[Outcome[T, R]]:
    """Every outcome, in input order. For unbounded input use :class:`FanOut` instead."""
    out: list[Outcome[T, R]] = []
    async with FanOut(fn, items, concurrency=concurrency) as results:
        async for o in results:
            out.append(o)
    placed: list[Outcome[T, R] | None] = [None] * len(out)  # input order by index: no sort, no key calls
    filled = 0
    for o in out:
        if o.index < len(placed) and placed[o.index] is None:
            placed[o.index] = o
            filled += 1
    if filled < len(out):  # not every index once (cannot happen: each item has one outcome); sort then
        out.sort(key=lambda o: o.index)
        return out
    return placed  # type: ignore[return-value]  # no None left
