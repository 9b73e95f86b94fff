"""``client.with_options(...)`` views are Clients in every respect: every method (coroutine, async
context manager, fan-out) and every provider method runs with the view's ``poll`` deadline,
``timeout``, ``retry``, ``on_status`` and ``limits``; over the emulator, requests recorded."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio
import pytest

import aioface
from aioface import (
    AILab,
    Client,
    FaceStudio,
    LimiterTimeoutError,
    PollPolicy,
    RetryPolicy,
    TaskEvent,
    TaskTimeoutError,
)
from aioface.emulator import Emulator, Faults
from aioface.transports import AiohttpTransport
from aioface.transports._base import RequestSpec, Response
from tests.support.files import image_bytes

pytestmark = pytest.mark.anyio
IMAGE = "https://cdn.acedata.cloud/f5687u.png"
#: The client's own settings: the view's must differ from each of them.
CLIENT_POLL = PollPolicy(initial=0.02, max_interval=0.05, deadline=300)
VIEW_TIMEOUT = 7.5


class Recording(AiohttpTransport):
    """The real transport, recording each request's URL path and timeout."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, float]] = []

    def stream(  # type: ignore[override]  # the same stream, typed as the protocol's
        self, spec: RequestSpec, *, timeout: float, connect_timeout: float
    ) -> AbstractAsyncContextManager[Response]:
        self.sent.append((spec.url, timeout))
        return super().stream(spec, timeout=timeout, connect_timeout=connect_timeout)


async def _ailab_ids(root: Client, n: int = 1) -> list[str]:
    img = image_bytes()
    return [await root.ailab.submit(source=img, target=img) for _ in range(n)]


async def _wait_many(view: Client, root: Client, dest: Path) -> object:
    ids = await _ailab_ids(root)
    async with view.ailab.wait_many(ids) as results:
        outcomes = [o async for o in results]
    return [o.unwrap() for o in outcomes]


async def _wait(view: Client, root: Client, dest: Path) -> object:
    (task_id,) = await _ailab_ids(root)
    return await view.ailab.wait(task_id)


async def _result(view: Client, root: Client, dest: Path) -> object:
    (task_id,) = await _ailab_ids(root)
    return await view.ailab.result(task_id, dest / "r")


async def _map(view: Client, root: Client, dest: Path) -> object:
    # The function calls through the client itself: the view's map runs it with the view's options.
    out = await view.map(lambda i: root.facestudio.generate(dest / f"m{i}", age=30), [0])
    return [o.unwrap() for o in out]


async def _fan_out(view: Client, root: Client, dest: Path) -> object:
    def swap(i: int) -> Awaitable[object]:
        return root.ailab.swap(dest / f"f{i}", source=image_bytes(), target=image_bytes())

    async with view.fan_out(swap, [0]) as outs:
        outcomes = [o async for o in outs]
    return [o.unwrap() for o in outcomes]


async def _ailab_swap_via_provider(view: Client, root: Client, dest: Path) -> object:
    return await view.provider("ailab").swap(dest / "p", source=image_bytes(), target=image_bytes())


#: (name, provider whose requests it sends after setup, call(view, client, dest)).
CALLS: list[tuple[str, str, Callable[[Client, Client, Path], Awaitable[object]]]] = [
    ("facestudio.generate", "facestudio", lambda v, c, d: v.facestudio.generate(d / "g", age=30)),
    ("acedata.change_age", "acedata", lambda v, c, d: v.acedata.change_age(IMAGE, [30], d / "a")),
    ("acedata.analyze", "acedata", lambda v, c, d: v.acedata.analyze(IMAGE)),
    ("ailab.swap", "ailab", lambda v, c, d: v.ailab.swap(d / "s", source=image_bytes(), target=image_bytes())),
    ("provider('ailab').swap", "ailab", _ailab_swap_via_provider),
    ("ailab.wait", "ailab", _wait),
    ("ailab.result", "ailab", _result),
    ("ailab.wait_many", "ailab", _wait_many),
    ("client.map", "facestudio", _map),
    ("client.fan_out", "ailab", _fan_out),
]
POLLED = [c for c in CALLS if c[2] in (_wait, _result, _wait_many, _fan_out) or c[0].endswith("swap")]
IDS = [c[0] for c in CALLS]


def _client(emu: Emulator, transport: Recording | None = None, **kw: Any) -> Client:
    kw.setdefault("poll", CLIENT_POLL)
    return emu.client(transport=transport or Recording(), **kw)


@pytest.mark.parametrize(("name", "provider", "call"), CALLS, ids=IDS)
async def test_the_views_timeout_goes_with_every_request(
    emu: Emulator, tmp_path: Path, name: str, provider: str, call: Callable[..., Awaitable[object]]
) -> None:
    transport = Recording()
    async with _client(emu, transport) as client:
        view = client.with_options(timeout=VIEW_TIMEOUT)
        with anyio.fail_after(20):
            await call(view, client, tmp_path)
    # Submissions made through the client itself (the setup) carry its 60 s; every request the
    # view's call sent (polls, downloads included) carries the view's.
    setup = 1 if call in (_wait, _result, _wait_many) else 0
    timeouts = [t for _, t in transport.sent[setup:]]
    assert timeouts and set(timeouts) == {VIEW_TIMEOUT}, transport.sent


# Tasks still running at their first poll (under load a 0.1 s task could end before it, and an
# ended task announces nothing before its result).
@pytest.mark.aioface_emulator(task_duration=2.0)
@pytest.mark.parametrize(("name", "provider", "call"), CALLS, ids=IDS)
async def test_the_views_on_status_hears_every_call(
    emu: Emulator, tmp_path: Path, name: str, provider: str, call: Callable[..., Awaitable[object]]
) -> None:
    mine: list[TaskEvent] = []
    theirs: list[TaskEvent] = []
    async with _client(emu, on_status=theirs.append) as client:
        view = client.with_options(on_status=mine.append)
        await _ailab_ids(client)  # the client's own call: its callback, not the view's
        heard = len(theirs)
        with anyio.fail_after(20):
            await call(view, client, tmp_path)
    if name in ("acedata.analyze",):  # facts, not a task: nothing to announce
        return
    assert mine and {e.provider for e in mine} == {provider}
    assert len(theirs) == heard  # the view's calls told the view only


@pytest.mark.parametrize(("name", "provider", "call"), CALLS, ids=IDS)
async def test_the_views_retry_policy_is_the_one_used(
    emu: Emulator, tmp_path: Path, name: str, provider: str, call: Callable[..., Awaitable[object]]
) -> None:
    # The client never retries; the view does. The view's first request (after the setup's
    # submission through the client, where there is one) is throttled once.
    async with _client(emu, retry=RetryPolicy(max_retries=0)) as client:
        view = client.with_options(retry=RetryPolicy(max_retries=2, base=0.0, cap=0.0))
        count = emu.state.route_counts[provider] + (1 if call in (_wait, _result, _wait_many) else 0)
        emu.config.faults = Faults(schedule={provider: [None] * count + ["429"]})
        before = client.stats(provider)["retries"]
        with anyio.fail_after(20):
            await call(view, client, tmp_path)
        assert client.stats(provider)["retries"] == before + 1


@pytest.mark.parametrize(("name", "provider", "call"), CALLS, ids=IDS)
async def test_the_views_own_limits_hold_its_calls(
    emu: Emulator, tmp_path: Path, name: str, provider: str, call: Callable[..., Awaitable[object]]
) -> None:
    async with _client(emu) as client:
        view = client.with_options(limits={provider: "1/hour"}, acquire_timeout=0.05)
        with anyio.fail_after(20), pytest.raises(LimiterTimeoutError):
            for _ in range(2):  # one request an hour: the call's second request waits for no slot
                await call(view, client, tmp_path)
        sent = client.stats(provider)["requests"]
        await call(client, client, tmp_path)  # the client itself is not held by the view's limits
        assert client.stats(provider)["requests"] > sent


@pytest.mark.parametrize(("name", "provider", "call"), POLLED, ids=[c[0] for c in POLLED])
async def test_the_views_poll_deadline_ends_stuck_tasks(
    emu: Emulator, tmp_path: Path, name: str, provider: str, call: Callable[..., Awaitable[object]]
) -> None:
    """The bug: ``view.ailab.wait_many`` waited on the client's 300 s deadline, not the view's."""
    emu.config.faults = Faults(task_stuck=1.0)
    async with _client(emu) as client:
        view = client.with_options(poll=PollPolicy(initial=0.02, max_interval=0.05, deadline=0.4))
        with anyio.fail_after(10), pytest.raises(TaskTimeoutError) as ei:
            await call(view, client, tmp_path)
        assert "0.4s" in str(ei.value)


async def test_a_views_namespaces_are_real_and_share_the_clients_state(emu: Emulator) -> None:
    async with emu.client() as client:
        view = client.with_options(timeout=5).with_options(poll=PollPolicy(deadline=1))
        assert type(view.ailab) is AILab and type(view.facestudio) is FaceStudio
        assert isinstance(view.provider("ailab"), AILab) and view.provider("ailab") is view.ailab
        assert view.ailab is not client.ailab
        assert isinstance(view, Client)
        await client.facestudio.generate(None, age=30)  # the client learns the tier...
        assert view.facestudio.tier == client.facestudio.tier  # ...and its views know it
        assert view.limiter("ailab") is client.limiter("ailab")
        # Every public method of the client is there on the view, and is the view's own.
        for name, _ in inspect.getmembers(Client, callable):
            if not name.startswith("_"):
                assert getattr(view, name).__self__ is view, name


async def test_a_wait_many_made_by_a_view_keeps_its_options_when_used_elsewhere(emu: Emulator) -> None:
    emu.config.faults = Faults(task_stuck=1.0)
    events: list[TaskEvent] = []
    async with emu.client(poll=CLIENT_POLL) as client:
        ids = await _ailab_ids(client, 3)
        waits = client.with_options(
            poll=PollPolicy(initial=0.02, deadline=0.3), on_status=events.append
        ).ailab.wait_many(ids)

        async def consume() -> AsyncIterator[object]:
            async with waits as results:
                async for o in results:
                    yield o

        with anyio.fail_after(10):
            outcomes = [o async for o in consume()]
    assert len(outcomes) == 3 and all(isinstance(o.error, TaskTimeoutError) for o in outcomes)  # type: ignore[attr-defined]
    assert {e.task_id for e in events} == set(ids)


def test_public_names_report_the_package() -> None:
    for name in aioface.__all__:
        obj = getattr(aioface, name)
        if isinstance(obj, type) or inspect.isfunction(obj):
            assert obj.__module__ == "aioface", name
    assert repr(aioface.Client).endswith("'aioface.Client'>")


def test_provider_and_emulator_client_are_typed() -> None:
    """``client.provider("ailab")`` is typed AILab (one overload per built-in, ProviderNamespace
    otherwise), and ``Emulator.client()`` a Client, not Any."""
    import typing

    from aioface.providers import ProviderNamespace

    hints = [typing.get_type_hints(f, vars(aioface._client))["return"] for f in typing.get_overloads(Client.provider)]
    assert hints == [aioface.FaceStudio, aioface.AceData, AILab, ProviderNamespace]
    assert typing.get_type_hints(Emulator.client, vars(aioface._client))["return"] is Client
