"""The provider's one scheduler for every single-task wait: shared by wait()s and views, each row its own."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import anyio
import pytest
from aiohttp import web

import aioface
from aioface import AiofaceError, ClientClosedError, PollPolicy, TaskEvent, TaskTimeoutError
from tests.support.servers import RESULT, serve

pytestmark = pytest.mark.anyio
FAST = PollPolicy(initial=0.01, factor=1.5, max_interval=0.05, deadline=10, floor=0)


def tasks_app(hits: Counter[str], release: anyio.Event) -> web.Application:
    """AILab polls on 127.0.0.1: ``slow-*`` runs until ``release`` is set, ``bad-*`` answers 400,
    ``never-*`` never ends, any other id is done at its second poll."""
    app = web.Application()

    async def poll(request: web.Request) -> web.Response:
        task_id = request.query["task_id"]
        hits[task_id] += 1
        hits["polls"] += 1
        if task_id.startswith("bad-"):
            return web.json_response({"error_code": 400, "error_msg": "no such task"}, status=400)
        running = (
            task_id.startswith("never-")
            or (task_id.startswith("slow-") and not release.is_set())
            or (hits[task_id] < 2 and not task_id.startswith("slow-"))
        )
        if running:
            return web.json_response({"error_code": 0, "task_status": 1})
        img = f"http://{request.host}/img/{task_id}.jpg"
        return web.json_response({"error_code": 0, "task_status": 2, "data": {"image": img}})

    app.router.add_get(RESULT, poll)
    return app


def client_for(url: str, **kw: Any) -> aioface.Client:
    kw = {"poll": FAST, "connections": 8, **kw}
    return aioface.Client(
        ailab_key="ailab-key",
        ailab_base_url=url,
        env={},
        persist_limits=False,
        limits={"ailab": "100000/s"},
        **kw,
    )


async def test_many_waits_share_one_scheduler_and_a_few_workers() -> None:
    hits: Counter[str] = Counter()
    release = anyio.Event()
    async with serve(tasks_app(hits, release)) as url, client_for(url) as c:
        sched = c.ailab._ctx.scheduler
        peak_workers = 0
        peak_tasks = 0

        async def watch() -> None:
            nonlocal peak_workers, peak_tasks
            while True:
                peak_workers = max(peak_workers, sched.workers)
                peak_tasks = max(peak_tasks, len(asyncio.all_tasks()))
                await anyio.sleep(0.005)

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            ids = [f"slow-{i}" for i in range(300)]
            running = asyncio.ensure_future(c.map(lambda t: c.ailab.wait(t), ids, concurrency=300))
            with anyio.fail_after(10):
                while hits["polls"] < 300:  # noqa: ASYNC110 (no event to wait on); every task polled once, still running
                    await anyio.sleep(0.01)
            assert sched.waiting == 300  # one scheduler holds every wait
            assert c.with_options(timeout=5).ailab._ctx.scheduler is sched  # views share it
            release.set()
            with anyio.fail_after(10):
                results = await running
            tg.cancel_scope.cancel()
        assert all(o.ok for o in results)
        assert [o.value for o in results] == [f"http://{url.split('//')[1]}/img/{t}.jpg" for t in ids]
        assert sched.waiting == 0
        assert 1 <= peak_workers <= 8  # polls in flight never beyond the pool's size
        # The 300 map tasks, the workers, the server's handlers and the test's own: nothing per wait
        # beyond them (a task per wait would be 600).
        assert peak_tasks <= 300 + 40
        assert c.durations.get("ailab", "swap").running == 0


async def test_a_cancelled_wait_leaves_the_others_running() -> None:
    hits: Counter[str] = Counter()
    release = anyio.Event()
    async with serve(tasks_app(hits, release)) as url, client_for(url) as c:
        sched = c.ailab._ctx.scheduler
        others = [asyncio.ensure_future(c.ailab.wait(f"slow-{i}")) for i in range(3)]
        victim = asyncio.ensure_future(c.ailab.wait("slow-victim"))
        with anyio.fail_after(10):
            while hits["slow-victim"] < 1:  # noqa: ASYNC110 (no event to wait on)
                await anyio.sleep(0.01)
        victim.cancel()
        with pytest.raises(asyncio.CancelledError):
            await victim
        assert sched.waiting == 3
        polled = hits["slow-victim"]
        release.set()
        with anyio.fail_after(10):
            urls = await asyncio.gather(*others)
        assert [u.rsplit("/", 1)[1] for u in urls] == ["slow-0.jpg", "slow-1.jpg", "slow-2.jpg"]
        await anyio.sleep(0.1)
        assert hits["slow-victim"] == polled  # given up: never polled again
        assert sched.waiting == 0
        assert c.durations.get("ailab", "swap").running == 0  # the learner heard it was given up


async def test_a_poll_error_reaches_only_its_task() -> None:
    hits: Counter[str] = Counter()
    release = anyio.Event()
    async with serve(tasks_app(hits, release)) as url, client_for(url) as c:
        with anyio.fail_after(10):
            results = await c.map(lambda t: c.ailab.wait(t), ["ok-1", "bad-1", "ok-2"], concurrency=3)
        assert [o.ok for o in results] == [True, False, True]
        assert isinstance(results[1].error, AiofaceError)


async def test_a_views_deadline_and_on_status_apply_to_its_own_waits_only() -> None:
    hits: Counter[str] = Counter()
    release = anyio.Event()
    root_events: list[TaskEvent] = []
    view_events: list[TaskEvent] = []
    async with serve(tasks_app(hits, release)) as url, client_for(url, on_status=root_events.append) as c:
        short = c.with_options(poll=PollPolicy(initial=0.01, max_interval=0.05, deadline=0.3, floor=0))
        view = short.with_options(on_status=view_events.append)
        root_wait = asyncio.ensure_future(c.ailab.wait("slow-root"))
        with anyio.fail_after(10):
            with pytest.raises(TaskTimeoutError) as info:
                await view.ailab.wait("slow-view")
        assert info.value.task_id == "slow-view"
        assert not root_wait.done()  # the root's wait keeps its own (10 s) deadline
        assert c.ailab._ctx.scheduler is view.ailab._ctx.scheduler
        release.set()
        with anyio.fail_after(10):
            assert (await root_wait).endswith("/slow-root.jpg")
        assert {e.task_id for e in view_events} == {"slow-view"}
        assert {e.task_id for e in root_events} == {"slow-root"}
        assert [e.status for e in view_events] == ["processing"]


async def test_closing_the_client_ends_the_waits_still_registered() -> None:
    hits: Counter[str] = Counter()
    release = anyio.Event()
    async with serve(tasks_app(hits, release)) as url:
        c = client_for(url)
        await c.open()
        waits = [asyncio.ensure_future(c.ailab.wait(f"never-{i}")) for i in range(5)]
        with anyio.fail_after(10):
            while hits["polls"] < 5:  # noqa: ASYNC110 (no event to wait on)
                await anyio.sleep(0.01)
        await c.aclose()
        with anyio.fail_after(5):
            outcomes = await asyncio.gather(*waits, return_exceptions=True)
        assert all(isinstance(o, ClientClosedError) for o in outcomes)
        polls = hits["polls"]
        await anyio.sleep(0.2)
        assert hits["polls"] == polls  # nothing polls after the close


async def test_on_status_is_called_in_the_waiters_own_task() -> None:
    """Callbacks that tell calls apart by their task (the CLI's progress does) see the waiter's."""
    hits: Counter[str] = Counter()
    release = anyio.Event()
    where: list[tuple[str, object]] = []

    def record(event: TaskEvent) -> None:
        where.append((event.status, asyncio.current_task()))

    async with serve(tasks_app(hits, release)) as url, client_for(url, on_status=record) as c:
        waiters = {t: asyncio.ensure_future(c.ailab.wait(t)) for t in ("ok-1", "ok-2")}
        with anyio.fail_after(10):
            await asyncio.gather(*waiters.values())
    assert sorted(s for s, _ in where) == ["processing", "processing"]
    assert {task for _, task in where} == set(waiters.values())
