"""``client.swap`` over several providers: failover only when nothing was created, spread over both limits.

Against the emulator and small servers of the tests' own (127.0.0.1, free ports)."""

from __future__ import annotations

import socket
import time
from collections import Counter
from typing import Any

import anyio
import pytest
from aiohttp import web

import aioface
from aioface import PollPolicy, RetryPolicy, ServerError
from aioface._route import nothing_created
from aioface.emulator import Emulator, EmulatorConfig
from tests.support.servers import paid, picture, provider_app, serve

pytestmark = pytest.mark.anyio

FAST = PollPolicy(initial=0.02, deadline=10, learn=False, jitter=0.0)
FACE = picture("JPEG", (160, 160))


def closed_port() -> int:
    """A loopback port nobody listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def images_app() -> web.Application:
    app = web.Application()

    async def face(request: web.Request) -> web.Response:
        return web.Response(body=FACE, content_type="image/jpeg")

    app.router.add_get("/face.jpg", face)
    return app


def client(base_urls: dict[str, str], **kw: Any) -> aioface.Client:
    kw.setdefault("retry", RetryPolicy(max_retries=1, base=0.01))
    return aioface.Client(
        keys={"facestudio": "k", "acedata": "k", "ailab": "k"},
        base_urls={"facestudio": base_urls.get("facestudio", "http://127.0.0.1:9"), **base_urls},
        poll=FAST,
        persist_limits=False,
        env={},
        **kw,
    )


async def test_failover_when_ace_is_unreachable_saves_the_swap_through_ailab_with_one_paid_call(tmp_path: Any) -> None:
    events: list[aioface.TaskEvent] = []
    async with serve(images_app()) as images, Emulator(EmulatorConfig(task_duration=0.05)) as emu:
        ace = f"http://127.0.0.1:{closed_port()}"
        async with client({"acedata": ace, "ailab": emu.url}, on_status=events.append) as c:
            r = await c.swap(tmp_path / "out", source=f"{images}/face.jpg", target=f"{images}/face.jpg")
    assert r.provider == "ailab"
    assert r.extra["failed_over"] == ["acedata"]
    assert r.path is not None and r.path.stat().st_size == r.bytes
    assert emu.stats["ailab_tasks"] == 1  # one paid call
    assert emu.stats["acedata_requests"] == 0
    # Each event names its provider: Ace's request left (its slot taken) and found no server;
    # AILab's task then ran to the end.
    assert [e.provider for e in events if e.status in ("queued", "done")] == ["ailab", "ailab"]
    assert events[-1].status == "done" and events[-1].task_id == r.task_id


async def test_no_failover_once_a_task_id_exists() -> None:
    """AILab takes the task, then its polls fail with 500: the error names the task; Ace is never asked."""
    hits: Counter[str] = Counter()
    app = provider_app(hits, FACE)
    failing = web.Application()

    async def submit(request: web.Request) -> web.Response:
        hits[request.path] += 1
        await request.read()
        return web.json_response({"error_code": 0, "task_id": "task-42"})

    async def poll(request: web.Request) -> web.Response:
        hits[request.path] += 1
        return web.json_response({"error_code": 500, "error_msg": "down"}, status=500)

    failing.router.add_post("/api/portrait/editing/ai-face-swap", submit)
    failing.router.add_get("/api/common/query-async-task-result", poll)
    async with serve(app) as good, serve(failing) as bad:
        async with client({"acedata": good, "ailab": bad}) as c:
            with pytest.raises(ServerError) as info:
                await c.swap(None, source=FACE, target=FACE, providers=("ailab", "acedata"))
    assert info.value.task_id == "task-42"
    assert hits["/api/portrait/editing/ai-face-swap"] == 1
    assert not any(p.startswith("/face/") for p in hits)  # the other provider was never paid
    assert paid(hits) == 1


async def test_failover_after_a_429_to_the_submit_and_the_error_when_every_provider_refuses() -> None:
    hits: Counter[str] = Counter()
    throttled = web.Application()

    async def busy(request: web.Request) -> web.Response:
        hits[request.path] += 1
        return web.json_response({"error": {"code": "too_many_requests", "message": "slow down"}}, status=429)

    throttled.router.add_post("/face/swap", busy)
    throttled.router.add_post("/api/portrait/editing/ai-face-swap", busy)
    async with serve(images_app()) as images, serve(throttled) as bad, Emulator() as emu:
        url = f"{images}/face.jpg"
        async with client({"acedata": bad, "ailab": emu.url}, retry=RetryPolicy(max_retries=0)) as c:
            r = await c.swap(None, source=url, target=url)
            assert r.provider == "ailab" and r.data
        async with client({"acedata": bad, "ailab": bad}, retry=RetryPolicy(max_retries=0)) as c:
            with pytest.raises(aioface.RateLimitError) as info:
                await c.swap(None, source=url, target=url)
    assert info.value.provider == "ailab"  # the last one asked; the note names the first
    assert any("acedata was tried first" in n for n in info.value.__notes__)


def test_the_failover_rule_reads_the_error_alone() -> None:
    ace_5xx = ServerError("x", provider="acedata", status=502, code="bad_gateway")
    assert nothing_created(ace_5xx)
    assert nothing_created(aioface.QuotaExceededError("x", provider="ailab", status=429, code="quota"))
    assert nothing_created(aioface.ConnectError("refused"))
    assert nothing_created(aioface.LimiterTimeoutError("no slot"))
    assert not nothing_created(aioface.RequestTimeoutError("may have arrived"))
    assert not nothing_created(aioface.ProtocolError("cut answer"))
    assert not nothing_created(aioface.TaskFailedError("x", provider="ailab", task_id="t"))
    assert not nothing_created(aioface.BadRequestError("x", provider="ailab", status=400, code="bad"))
    polled = ServerError("x", provider="acedata", status=503, code="down")
    polled.add_ids(task_id="t-1")  # a 5xx to a poll: the task exists
    assert not nothing_created(polled)
    download = ServerError("x", provider="download", status=503, code="down")
    assert not nothing_created(download)
    refused_after = aioface.ConnectError("result host down")
    refused_after.add_ids(result_url="http://x/img.jpg")
    assert not nothing_created(refused_after)


async def test_bad_routes_are_refused_before_anything_is_sent() -> None:
    async with client({"acedata": "http://127.0.0.1:9", "ailab": "http://127.0.0.1:9"}) as c:
        with pytest.raises(aioface.InvalidRequestError):
            await c.swap(None, source="a", target="b", route="random")  # type: ignore[arg-type]
        with pytest.raises(aioface.InvalidRequestError):
            await c.swap(None, source="a", target="b", providers=("facestudio",))
        with pytest.raises(aioface.InvalidRequestError):
            await c.swap(None, source="a", target="b", providers=("ailab", "ailab"))
        assert c.stats("acedata")["requests"] == c.stats("ailab")["requests"] == 0


async def test_spread_uses_both_limits() -> None:
    """N swaps through one provider's limit, then spread over both (the same limit each): the spread
    run takes clearly less time, and each provider served a fair share."""
    n = 12
    limits = {"acedata": "4/second", "ailab": "4/second"}
    config = EmulatorConfig(task_duration=0.02, swap_duration=0.02)
    async with serve(images_app()) as images, Emulator(config) as emu:
        url = f"{images}/face.jpg"

        async def run(**route: Any) -> tuple[float, Counter[str]]:
            async with client({"acedata": emu.url, "ailab": emu.url}, limits=limits) as c:
                start = time.monotonic()
                results = await c.map(lambda _: c.swap(None, source=url, target=url, **route), range(n))
                took = time.monotonic() - start
            assert all(o.error is None for o in results), [o.error for o in results if o.error]
            return took, Counter(o.value.provider for o in results if o.value is not None)

        alone, served_alone = await run(providers=("acedata",))
        await anyio.sleep(1.1)  # the emulator's own counting aside, a fresh client starts with empty windows
        spread, served = await run(route="spread")
    assert served_alone == {"acedata": n}
    assert served["acedata"] >= 3 and served["ailab"] >= 3, served
    assert spread < 0.8 * alone, (spread, alone, served)


@pytest.mark.parametrize("provider", ["acedata", "ailab"])
async def test_a_local_file_and_bytes_work_for_either_provider(tmp_path: Any, provider: str) -> None:
    """Inputs work for both: Ace uploads a local file or bytes through its platform's file API first;
    AILab sends them as its multipart fields."""
    me = tmp_path / "me.jpg"
    me.write_bytes(FACE)
    config = EmulatorConfig(task_duration=0.05, swap_duration=0.05)
    async with Emulator(config) as emu, client({"acedata": emu.url, "ailab": emu.url}) as c:
        r = await c.swap(tmp_path / "out", source=me, target=FACE, providers=(provider,))
        uploads = emu.stats.get("acedata_uploads", 0)
    assert r.provider == provider
    assert r.path is not None and r.path.stat().st_size == r.bytes
    assert uploads == (2 if provider == "acedata" else 0)
