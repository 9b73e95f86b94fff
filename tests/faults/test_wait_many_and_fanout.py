"""wait_many and fan_out under hostile use: a failing id feed, bad ids, the caller's own errors."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from aiohttp import web

import aioface
from aioface import FeedError, InvalidRequestError, PollPolicy, QuotaExceededError
from tests.support.servers import JPEG, RESULT, SUBMIT, serve

pytestmark = pytest.mark.anyio
FAST = PollPolicy(initial=0.01, factor=1.5, max_interval=0.05, deadline=5, floor=0)  # the feed, not the floor


def ailab_app(hits: Counter[str], *, credit: int = 1000, polls_to_done: int = 2) -> web.Application:
    """AILab on 127.0.0.1: ``credit`` submits are accepted (ids t-1, t-2, ...), then out of credit;
    each task is done at its ``polls_to_done``-th poll."""
    app = web.Application()
    polled: Counter[str] = Counter()

    async def submit(request: web.Request) -> web.Response:
        await request.read()
        hits["submit"] += 1
        if hits["submit"] > credit:
            body = {"error_code": 429, "error_code_str": "ERROR_NOT_ENOUGH_CREDITS", "error_msg": "no credit"}
            return web.json_response(body, status=429)
        return web.json_response({"error_code": 0, "task_id": f"t-{hits['submit']}"})

    async def poll(request: web.Request) -> web.Response:
        hits["poll"] += 1
        task_id = request.query["task_id"]
        polled[task_id] += 1
        if polled[task_id] < polls_to_done:
            return web.json_response({"error_code": 0, "task_status": 1})
        img = f"http://{request.host}/img/{task_id}.jpg"
        return web.json_response({"error_code": 0, "task_status": 2, "data": {"image": img}})

    app.router.add_post(SUBMIT, submit)
    app.router.add_get(RESULT, poll)
    return app


def client_for(url: str, **kw: Any) -> aioface.Client:
    return aioface.Client(
        ailab_key="ailab-key",
        ailab_base_url=url,
        env={},
        persist_limits=False,
        limits={"ailab": "1000/s"},
        poll=FAST,
        **kw,
    )


# -- 5: the id feed fails ---------------------------------------------------------------------
async def test_a_failing_feed_delivers_every_taken_id_then_a_typed_error() -> None:
    hits: Counter[str] = Counter()
    async with serve(ailab_app(hits, credit=2)) as url, client_for(url) as c:

        async def submitted() -> AsyncIterator[str]:
            for _ in range(5):
                yield await c.ailab.submit(source=JPEG, target=JPEG)

        got: list[aioface.Outcome[str, str]] = []
        with anyio.fail_after(10), pytest.raises(FeedError) as info:
            async with c.ailab.wait_many(submitted()) as results:
                async for o in results:
                    got.append(o)
    assert hits["submit"] == 3  # two paid, the third out of credit
    assert sorted(o.item for o in got) == ["t-1", "t-2"] and all(o.ok for o in got)
    err = info.value
    assert isinstance(err.error, QuotaExceededError) and err.__cause__ is err.error
    assert err.pending == () and err.taken == 2  # every paid id got its outcome before the error


async def test_a_failing_feed_left_early_names_the_ids_not_ended() -> None:
    hits: Counter[str] = Counter()
    async with serve(ailab_app(hits, credit=3, polls_to_done=10_000)) as url, client_for(url) as c:
        out_of_credit = anyio.Event()

        async def submitted() -> AsyncIterator[str]:
            try:
                for _ in range(5):
                    yield await c.ailab.submit(source=JPEG, target=JPEG)
            except QuotaExceededError:
                out_of_credit.set()
                raise

        with anyio.fail_after(10), pytest.raises(FeedError) as info:
            async with c.ailab.wait_many(submitted()):
                await out_of_credit.wait()
                # the body leaves without reading: the paid tasks still running are named
    assert sorted(info.value.pending) == ["t-1", "t-2", "t-3"]
    assert isinstance(info.value.error, QuotaExceededError)


# -- 6: bad ids ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [5, None, ("x", "soon"), "", ("x",), (5, 1.0), b"t-1"])
async def test_a_bad_id_is_refused_before_any_poll(bad: object) -> None:
    hits: Counter[str] = Counter()
    async with serve(ailab_app(hits)) as url, client_for(url) as c:
        with anyio.fail_after(10), pytest.raises(InvalidRequestError) as info:
            async with c.ailab.wait_many(["t-1", bad]) as results:  # type: ignore[list-item]
                [o async for o in results]
    assert repr(bad)[:20] in str(info.value) and "index 1" in str(info.value)
    assert hits["poll"] == 0


async def test_a_bare_string_is_refused_with_a_hint() -> None:
    hits: Counter[str] = Counter()
    async with serve(ailab_app(hits)) as url, client_for(url) as c:
        with pytest.raises(InvalidRequestError, match=r"\[task_id\]"):
            c.ailab.wait_many("t-1")
        with pytest.raises(InvalidRequestError, match=r"\[task_id\]"):
            c.ailab.wait_many(b"t-1")  # type: ignore[arg-type]
    assert hits["poll"] == 0


async def test_a_bad_id_in_a_lazy_feed_is_a_feed_error_naming_it() -> None:
    hits: Counter[str] = Counter()
    async with serve(ailab_app(hits)) as url, client_for(url) as c:

        def ids() -> Any:
            yield "t-1"
            yield None

        got = []
        with anyio.fail_after(10), pytest.raises(FeedError) as info:
            async with c.ailab.wait_many(ids()) as results:
                async for o in results:
                    got.append(o.item)
    assert got == ["t-1"]
    assert isinstance(info.value.error, InvalidRequestError) and "None" in str(info.value.error)


# -- 7: the caller's own exception comes out as itself ----------------------------------------
class Mine(Exception):
    pass


async def test_the_callers_exception_in_wait_many_comes_out_as_itself() -> None:
    hits: Counter[str] = Counter()
    async with serve(ailab_app(hits)) as url, client_for(url) as c:
        with anyio.fail_after(10), pytest.raises(Mine):
            async with c.ailab.wait_many(["t-1", "t-2"]) as results:
                async for _ in results:
                    raise Mine("mine")
        with anyio.fail_after(10), pytest.raises(InvalidRequestError):  # the README's: download in the body
            async with c.ailab.wait_many(["t-1"]) as results:
                async for _ in results:
                    await c.download("http://[::1/x", None)


async def test_the_callers_exception_in_fan_out_comes_out_as_itself() -> None:
    async def slow(i: int) -> int:
        await anyio.sleep(0.01 * i)
        return i

    async with aioface.Client(env={}, persist_limits=False) as c:
        with anyio.fail_after(10), pytest.raises(Mine):
            async with c.fan_out(slow, range(20), concurrency=4) as results:
                async for _ in results:
                    raise Mine("mine")
        with anyio.fail_after(10), pytest.raises(KeyError):
            async with c.fan_out(slow, range(3)) as results:
                async for o in results:
                    json.loads("{}")[o.value]
        # A clean block still ends cleanly.
        async with c.fan_out(slow, range(3)) as results:
            assert sorted([o.value async for o in results]) == [0, 1, 2]


async def test_a_failing_fan_out_feed_delivers_what_started_then_a_typed_error() -> None:
    async def ok(i: int) -> int:
        await anyio.sleep(0.05)
        return i

    def items() -> Any:
        yield 1
        yield 2
        raise OSError("the source broke")

    async with aioface.Client(env={}, persist_limits=False) as c:
        got = []
        with anyio.fail_after(10), pytest.raises(FeedError) as info:
            async with c.fan_out(ok, items()) as results:
                async for o in results:
                    got.append(o.value)
    assert sorted(got) == [1, 2]
    assert isinstance(info.value.error, OSError) and info.value.pending == () and info.value.taken == 2


async def test_a_feed_failing_at_once_is_a_feed_error_with_nothing_taken() -> None:
    hits: Counter[str] = Counter()
    async with serve(ailab_app(hits)) as url, client_for(url) as c:

        async def nothing() -> AsyncIterator[str]:
            raise QuotaExceededError("no credit", provider="ailab", status=429, code="ERROR_NOT_ENOUGH_CREDITS")
            yield "never"

        with anyio.fail_after(10), pytest.raises(FeedError) as info:
            async with c.ailab.wait_many(nothing()) as results:
                async for _ in results:
                    pass
    assert info.value.taken == 0 and info.value.pending == () and hits["poll"] == 0
    assert isinstance(info.value.error, QuotaExceededError)


async def test_the_callers_exception_and_a_feed_error_both_come_out() -> None:
    hits: Counter[str] = Counter()
    async with serve(ailab_app(hits, polls_to_done=10_000)) as url, client_for(url) as c:

        async def submitted() -> AsyncIterator[str]:
            yield await c.ailab.submit(source=JPEG, target=JPEG)
            raise OSError("the source broke")  # at once after the first id: no await in between

        with anyio.fail_after(10), pytest.raises(ExceptionGroup) as info:
            async with c.ailab.wait_many(submitted()) as results:
                while results.waiting < 1:  # noqa: ASYNC110 (no event to wait on)
                    await anyio.sleep(0.01)
                raise Mine("mine")
    mine, feed = info.value.exceptions
    assert isinstance(mine, Mine) and isinstance(feed, FeedError) and feed.pending == ("t-1",)
    assert isinstance(feed.error, OSError)
