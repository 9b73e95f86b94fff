"""The scheduler's pace: fewer polls at once when the event loop runs late, never none, deadlines kept."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter

import anyio
import pytest

import aioface
from aioface import PollPolicy, TaskTimeoutError
from aioface.tasks._scheduler import Pace
from tests.support.servers import serve
from tests.unit.tasks.test_scheduler import client_for, tasks_app


def client(url: str) -> aioface.Client:
    return client_for(
        url, poll=PollPolicy(initial=0.01, factor=1.5, max_interval=0.05, deadline=60, floor=0), connections=32
    )


def test_pace_cuts_on_lag_down_to_its_floor_and_grows_back_to_the_pool() -> None:
    pace = Pace(floor=4, high=0.015, low=0.005)
    assert pace.of(100) == 100  # not cut yet: the pool's size
    seen = [pace.adapt(0.05, 100) for _ in range(20)]
    assert seen[:3] == [75, 56, 42]  # multiplicative decrease
    assert all(a >= b for a, b in itertools.pairwise(seen))
    assert seen[-1] == 4  # the floor, never below
    assert pace.adapt(0.010, 100) == 4  # lag between the bounds: unchanged
    assert pace.adapt(0.001, 100) == 4  # one probe on time may be chance
    assert pace.adapt(0.010, 100) == 4
    grown = [pace.adapt(0.001, 100) for _ in range(80)]
    assert grown[:3] == [4, 5, 6]  # twice on time in a row: additive increase from the floor
    assert grown[-1] == 100  # back to the pool's size, never above
    assert pace.of(8) == 8  # a smaller pool caps it
    assert Pace(floor=4).adapt(1.0, 2) == 2  # a pool under the floor: the pool


@pytest.mark.anyio
async def test_a_late_loop_cuts_the_polls_in_flight_yet_every_task_is_polled_and_deadlines_hold() -> None:
    hits: Counter[str] = Counter()
    release = anyio.Event()
    stop_hog = anyio.Event()

    async def hog() -> None:
        """The program's own CPU-bound work: every loop turn takes 50 ms."""
        while not stop_hog.is_set():
            time.sleep(0.05)  # noqa: ASYNC251 (blocking on purpose: a busy loop)
            await asyncio.sleep(0)

    async with serve(tasks_app(hits, release)) as url, client(url) as c:
        sched = c.ailab._ctx.scheduler
        short = c.with_options(poll=PollPolicy(initial=0.01, max_interval=0.05, deadline=1.0, floor=0))
        ids = [f"slow-{i}" for i in range(100)]
        running = asyncio.ensure_future(c.map(lambda t: c.ailab.wait(t), ids, concurrency=len(ids)))
        with anyio.fail_after(10):
            while hits["polls"] < len(ids):  # noqa: ASYNC110 (no event to wait on): every task polled once
                await anyio.sleep(0.005)
        timing_out = asyncio.ensure_future(short.ailab.wait("never-1"))
        async with anyio.create_task_group() as tg:
            tg.start_soon(hog)
            with anyio.fail_after(10):
                while sched.limit > 4:  # noqa: ASYNC110 (no event to wait on)
                    await anyio.sleep(0.01)
            polls = hits["polls"]
            peak = 0
            for _ in range(10):  # half a second of the late loop: a few polls in flight (32 before), never none
                peak = max(peak, sched.workers)
                await anyio.sleep(0.05)
            assert 1 <= peak <= 8
            assert hits["polls"] > polls
            with anyio.fail_after(10), pytest.raises(TaskTimeoutError):
                await timing_out  # its deadline holds under the late loop
            stop_hog.set()
        release.set()
        with anyio.fail_after(20):
            results = await running
        assert [o.error for o in results if not o.ok] == []
        assert all(hits[t] >= 1 for t in ids)
        assert sched.waiting == 0
