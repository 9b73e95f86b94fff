"""AILab as its official SDK reads it (issue 20): ``task_status`` 3 is a failure, any other unknown
value is polled on until the deadline, the status is read from ``data.taskStatus``,
``data.task_status`` or the top level, credits come from ``GET /api/common/query-credits``, and no
task is polled twice within the SDK's 5 s (divided by ``time_scale``) unless the policy says so."""

from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import aioface
from aioface import PollPolicy
from aioface.emulator import Emulator, EmulatorConfig
from tests.support.files import image_bytes
from tests.support.servers import picture, serve

pytestmark = pytest.mark.anyio
QUICK = PollPolicy(initial=0.01, max_interval=0.02, learn=False, deadline=5, floor=0)


def ailab_server(answers: list[dict[str, Any]], polls: dict[str, list[float]], img: bytes) -> web.Application:
    """Submits answer task ids a-1, a-2...; each task's polls walk through ``answers`` (the last repeats)."""
    envelope = {"request_id": "req-1", "log_id": "log-1", "error_code": 0, "error_msg": ""}

    async def submit(request: web.Request) -> web.Response:
        await request.post()
        task_id = f"a-{len(polls) + 1}"
        polls[task_id] = []
        return web.json_response({**envelope, "task_type": "async", "task_id": task_id})

    async def result(request: web.Request) -> web.Response:
        seen = polls[request.query["task_id"]]
        seen.append(time.monotonic())
        answer = answers[min(len(seen), len(answers)) - 1]
        if answer.get("data") == "IMAGE":
            answer = {**answer, "data": {"image": f"http://{request.host}/r.jpg"}}
        return web.json_response({**envelope, **answer})

    async def credits(request: web.Request) -> web.Response:
        assert request.headers["ailabapi-api-key"] == "k-1"
        entry = {"unique_sign": "u", "name": "n", "balance": 41.5, "total": 100, "balance_warning": 5}
        return web.json_response({**envelope, "data": [entry]})

    async def file(request: web.Request) -> web.Response:
        return web.Response(body=img, content_type="image/jpeg")

    app = web.Application()
    app.router.add_post("/api/portrait/editing/ai-face-swap", submit)
    app.router.add_get("/api/common/query-async-task-result", result)
    app.router.add_get("/api/common/query-credits", credits)
    app.router.add_get("/r.jpg", file)
    return app


def _client(base: str, **kw: Any) -> aioface.Client:
    return aioface.Client(ailab_key="k-1", ailab_base_url=base, persist_limits=False, env={}, **kw)


async def test_unknown_statuses_are_polled_on_and_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    answers: list[dict[str, Any]] = [
        {"data": {"taskStatus": 0}},
        {"data": {"taskStatus": 7}},
        {"data": {"task_status": 1}},
        {"task_status": 9, "data": {}},
        {"data": {"taskStatus": 7}},
        {"task_status": 2, "data": "IMAGE"},
    ]
    polls: dict[str, list[float]] = {}
    img = picture("JPEG")
    caplog.set_level(logging.WARNING, logger="aioface")
    async with serve(ailab_server(answers, polls, img)) as base, _client(base, poll=QUICK) as c:
        r = await c.ailab.swap(tmp_path / "s", source=image_bytes(), target=image_bytes())
    assert r.task_id == "a-1" and r.path is not None and r.path.read_bytes() == img
    assert len(polls["a-1"]) == 6
    unknown = [rec for rec in caplog.records if "unknown task_status" in rec.getMessage()]
    assert len(unknown) == 1 and "a-1" in unknown[0].getMessage()


@pytest.mark.parametrize("answer", [{"data": {"taskStatus": 3}}, {"task_status": 3, "data": {}}])
async def test_status_3_is_a_failure_with_the_task_id(tmp_path: Path, answer: dict[str, Any]) -> None:
    polls: dict[str, list[float]] = {}
    async with serve(ailab_server([{"data": {"taskStatus": 1}}, answer], polls, b"")) as base:
        async with _client(base, poll=QUICK) as c:
            with pytest.raises(aioface.TaskFailedError) as ei:
                await c.ailab.swap(tmp_path / "s", source=image_bytes(), target=image_bytes())
    assert ei.value.task_id == "a-1" and "task_status 3" in str(ei.value)


async def test_an_unknown_status_is_not_a_failure_until_the_deadline(tmp_path: Path) -> None:
    polls: dict[str, list[float]] = {}
    async with serve(ailab_server([{"data": {"taskStatus": "weird"}}], polls, b"")) as base:
        async with _client(
            base, poll=PollPolicy(initial=0.01, max_interval=0.02, deadline=0.5, floor=0, learn=False)
        ) as c:
            with pytest.raises(aioface.TaskTimeoutError) as ei:
                await c.ailab.swap(tmp_path / "s", source=image_bytes(), target=image_bytes())
    assert ei.value.task_id == "a-1" and len(polls["a-1"]) >= 3


async def test_wait_many_polls_unknown_statuses_on() -> None:
    answers: list[dict[str, Any]] = [
        {"data": {"taskStatus": 5}},
        {"data": {"task_status": 6}},
        {"task_status": 2, "data": "IMAGE"},
    ]
    polls: dict[str, list[float]] = {}
    async with serve(ailab_server(answers, polls, b"")) as base, _client(base, poll=QUICK) as c:
        ids = [await c.ailab.submit(source=image_bytes(), target=image_bytes()) for _ in range(3)]
        async with c.ailab.wait_many(ids) as results:
            outcomes = [o async for o in results]
    assert sorted(o.item for o in outcomes if o.ok) == ["a-1", "a-2", "a-3"]
    assert all(len(p) == 3 for p in polls.values())


async def test_credits() -> None:
    async with serve(ailab_server([], {}, b"")) as base, _client(base) as c:
        credits = await c.ailab.credits()
    assert (credits.balance, credits.total, credits.request_id) == (41.5, 100.0, "req-1")
    assert credits.raw["data"][0]["balance_warning"] == 5
    async with Emulator(EmulatorConfig(ailab_credits=3, task_duration=0.01)) as emu, emu.client() as c:
        before = await c.ailab.credits()
        await c.ailab.submit(source=image_bytes(), target=image_bytes())
        after = await c.ailab.credits()
    assert (before.balance, after.balance, after.total) == (3.0, 2.0, 3.0)


async def test_polls_keep_the_sdks_5s_floor_scaled_by_time_scale() -> None:
    """wait() and wait_many() alike: the schedule is eager, the floor (5 s / 10) holds; floor=0 lowers it."""
    answers: list[dict[str, Any]] = [
        {"data": {"taskStatus": 1}},
        {"data": {"taskStatus": 1}},
        {"task_status": 2, "data": "IMAGE"},
    ]
    eager = PollPolicy(initial=0.01, max_interval=0.02, learn=False, jitter=0, deadline=10)
    polls: dict[str, list[float]] = {}
    async with serve(ailab_server(answers, polls, b"")) as base, _client(base, poll=eager, time_scale=10) as c:
        one = await c.ailab.submit(source=image_bytes(), target=image_bytes())
        await c.ailab.wait(one)
        many = [await c.ailab.submit(source=image_bytes(), target=image_bytes()) for _ in range(2)]
        async with c.ailab.wait_many(many) as results:
            assert all([o.ok async for o in results])
        fast = await c.ailab.submit(source=image_bytes(), target=image_bytes())
        await c.ailab.wait(fast, poll=PollPolicy(initial=0.01, max_interval=0.02, learn=False, jitter=0, floor=0))
    for task_id in (one, *many):
        times = polls[task_id]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert len(gaps) == 2 and min(gaps) >= 0.49, (task_id, gaps)
    times = polls[fast]
    assert max(b - a for a, b in itertools.pairwise(times)) < 0.3


def test_poll_floor_arithmetic() -> None:
    from aioface.tasks._polling import next_delay

    eager = PollPolicy(initial=0.01, max_interval=0.02, learn=False, jitter=0, deadline=10)
    assert eager.with_floor(5.0, time_scale=10).floor == 0.5
    assert PollPolicy(floor=0.0).with_floor(5.0).floor == 0.0  # given: kept, even 0
    assert PollPolicy(floor=2.0).scaled(4).floor == 0.5
    floored = eager.with_floor(5.0)
    assert next_delay(floored, 1.0, polled=True) == 5.0
    assert next_delay(floored, 0.0) == 0.01  # the first poll after submission: the schedule's
    assert next_delay(floored, 8.0, polled=True) == 2.0  # never past the deadline
    with pytest.raises(ValueError):
        PollPolicy(floor=-1)
