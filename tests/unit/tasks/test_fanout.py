"""Fan-out: lazy input, bounded memory, one outcome per item, clean cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from aioface import FanOut
from aioface.tasks._fanout import map_all

pytestmark = pytest.mark.anyio


async def test_lazy_100k_items_with_bounded_buffering() -> None:
    pulled = 0
    consumed = 0
    peak_ahead = 0

    def items() -> Iterator[int]:
        nonlocal pulled, peak_ahead
        for i in range(100_000):
            pulled += 1
            peak_ahead = max(peak_ahead, pulled - consumed)
            yield i

    async def double(x: int) -> int:
        await anyio.lowlevel.checkpoint()
        return x * 2

    total = 0
    async with FanOut(double, items(), concurrency=32) as results:
        async for o in results:
            consumed += 1
            total += o.unwrap()
    assert consumed == 100_000 and total == 2 * sum(range(100_000))
    assert peak_ahead <= 2 * 32 + 2  # never more than workers + buffer ahead of the reader


async def test_failures_are_outcomes_and_do_not_cancel_others() -> None:
    async def maybe(x: int) -> int:
        await anyio.sleep(0.001 * (x % 5))
        if x % 7 == 0:
            raise ValueError(f"bad {x}")
        return x

    out = await map_all(maybe, range(50), concurrency=8)
    assert [o.index for o in out] == list(range(50))
    assert {o.item for o in out if not o.ok} == {0, 7, 14, 21, 28, 35, 42, 49}
    assert all(isinstance(o.error, ValueError) for o in out if not o.ok)
    assert sum(o.ok for o in out) == 42


async def test_async_iterable_input_and_early_exit_cancels_running_calls() -> None:
    started: list[int] = []
    finished: list[int] = []

    async def gen() -> AsyncIterator[int]:
        for i in range(1000):
            yield i

    async def work(x: int) -> int:
        started.append(x)
        await anyio.sleep(0 if x < 3 else 10)
        finished.append(x)
        return x

    with anyio.fail_after(5):
        async with FanOut(work, gen(), concurrency=4) as results:
            got = []
            async for o in results:
                got.append(o.value)
                if len(got) == 3:
                    break
    assert sorted(got) == [0, 1, 2]  # type: ignore[type-var]
    assert len(started) <= 3 + 4 and all(x < 3 for x in finished)


async def test_outer_cancellation_propagates() -> None:
    async def forever(x: int) -> int:
        await anyio.sleep(60)
        return x

    with anyio.move_on_after(0.2) as scope:
        async with FanOut(forever, range(10), concurrency=3) as results:
            async for _ in results:
                pass
    assert scope.cancelled_caught


async def test_leaving_early_while_calls_finish_shielded_raises_nothing() -> None:
    """A call that completes after the consumer left (its last step shielded from cancellation, as
    a thread hop is) must not break the exit with BrokenResourceError: Ctrl-C or SIGTERM during a
    batch would otherwise end in a traceback and exit 1 instead of 130/143."""

    async def fn(x: int) -> int:
        if x:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.05)
        return x

    with anyio.fail_after(5):
        async with FanOut(fn, range(4), concurrency=4) as results:
            async for outcome in results:
                assert outcome.value == 0
                break


async def test_each_call_is_its_task_with_nothing_wrapped_around_it() -> None:
    """A waiting item costs its call's own coroutine and task, no wrapper frame (100,000 waits)."""
    seen: list[bool] = []

    async def call(x: int) -> int:
        me = asyncio.current_task()
        assert me is not None
        seen.append(me.get_coro() is coros[x])  # the task runs the call's coroutine itself
        await anyio.lowlevel.checkpoint()
        return x

    coros: dict[int, Coroutine[Any, Any, int]] = {}

    def start(x: int) -> Awaitable[int]:
        if x == 3:
            raise ValueError("refused before any await")  # a typed error made before the call runs
        if x == 4:
            fut = asyncio.get_running_loop().create_future()  # any awaitable, not only a coroutine
            fut.set_result(40)
            return fut
        coros[x] = call(x)
        return coros[x]

    out = await map_all(start, range(6), concurrency=2)
    assert [o.value for o in out] == [0, 1, 2, None, 40, 5]
    assert isinstance(out[3].error, ValueError)
    assert seen == [True] * 4  # items 0, 1, 2 and 5
