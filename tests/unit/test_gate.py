"""The per-provider gate: at most ``capacity`` requests past it, waiters in order, and timed waiters
(polls) woken once, only when they are due and hold a place."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from aioface._gate import Gate

pytestmark = pytest.mark.anyio


async def _turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_due_timed_waiters_wake_only_as_places_free_up() -> None:
    gate = Gate(2)
    await gate.acquire()
    await gate.acquire()
    now = asyncio.get_running_loop().time()
    woken: list[int] = []

    async def poll(i: int) -> None:
        await gate.acquire(at=now + 0.01 + i * 1e-6)  # due soon, in order of i
        woken.append(i)

    tasks = [asyncio.create_task(poll(i)) for i in range(50)]
    await asyncio.sleep(0.03)  # all are due now
    await _turns()
    assert woken == []  # due, but no place: nobody woke
    assert gate.waiting == 50
    gate.release()
    await _turns()
    assert woken == [0]  # one place, one wake
    gate.release()
    gate.release()  # a place only for as long as nobody waits
    await _turns()
    assert woken == [0, 1, 2]
    for _ in range(47):
        gate.release()
    await asyncio.gather(*tasks)
    assert woken == list(range(50))
    assert gate.free == 0 and gate.waiting == 0


async def test_a_timed_waiter_is_not_let_in_before_its_time() -> None:
    gate = Gate(1)
    loop = asyncio.get_running_loop()
    at = loop.time() + 0.05
    got: list[float] = []

    async def poll() -> None:
        await gate.acquire(at=at)
        got.append(loop.time())

    task = asyncio.create_task(poll())
    await _turns()
    assert got == [] and gate.free == 1  # a free place, but not yet its time
    await task
    assert got[0] >= at and gate.free == 0


async def test_untimed_and_due_waiters_are_served_first_come_first_served() -> None:
    gate = Gate(1)
    loop = asyncio.get_running_loop()
    await gate.acquire()
    order: list[str] = []

    async def take(name: str, at: float | None) -> None:
        await gate.acquire(at=at)
        order.append(name)
        gate.release()

    tasks = [asyncio.create_task(take("due first", loop.time() + 0.01))]
    await asyncio.sleep(0.03)  # due, waiting in the heap
    tasks.append(asyncio.create_task(take("asked", None)))  # asked after that due time
    await _turns()
    tasks.append(asyncio.create_task(take("due last", loop.time() + 0.01)))
    await asyncio.sleep(0.03)
    assert order == []
    gate.release()
    await asyncio.gather(*tasks)
    assert order == ["due first", "asked", "due last"]
    assert gate.free == 1


async def test_cancelled_waiters_leave_and_a_place_handed_to_one_is_passed_on() -> None:
    gate = Gate(1)
    loop = asyncio.get_running_loop()
    await gate.acquire()
    got: list[str] = []

    async def take(name: str, at: float | None) -> None:
        await gate.acquire(at=at)
        got.append(name)

    far = asyncio.create_task(take("far", loop.time() + 3600))
    first = asyncio.create_task(take("first", loop.time() - 1))
    second = asyncio.create_task(take("second", None))
    await _turns()
    with anyio.move_on_after(0):  # a deadline that has passed, while waiting in the heap
        await gate.acquire(at=loop.time() + 3600)
    gate.release()  # handed to `first`, which is cancelled before it runs: `second` gets it
    first.cancel()
    await _turns()
    assert got == ["second"] and first.cancelled() and second.done()
    far.cancel()
    await _turns()
    gate.release()
    assert gate.free == 1 and got == ["second"]
    await gate.acquire(at=loop.time() - 1)  # the cancelled ones are gone: no wait
    assert gate.free == 0


async def test_try_acquire_takes_a_free_place_but_never_jumps_the_line() -> None:
    gate = Gate(2)
    assert gate.try_acquire() and gate.free == 1
    assert gate.try_acquire() and gate.free == 0
    assert not gate.try_acquire()  # full
    waiter = asyncio.create_task(gate.acquire())
    await _turns()
    gate.release()  # handed to the waiter, not freed
    await _turns()
    assert waiter.done() and gate.free == 0
    gate.release()
    assert gate.free == 1
    now = asyncio.get_running_loop().time()
    timed = asyncio.create_task(gate.acquire(at=now + 60))  # a poll due later holds no place yet...
    await _turns()
    assert gate.free == 1 and gate.waiting == 1
    assert not gate.try_acquire()  # ...but try_acquire leaves the place to the slow path (which judges due times)
    await gate.acquire()  # the untimed acquire does take it: the poll is not due
    assert gate.free == 0
    timed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await timed
    gate.release()
    gate.release()
    assert gate.free == 2 and gate.waiting == 0
