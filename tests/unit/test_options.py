"""client.with_options(...): a light view with other timeouts, retries and polling, sharing the rest."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from aioface import (
    Client,
    MockRequest,
    MockResponse,
    MockTransport,
    PollPolicy,
    RetryPolicy,
    ServerError,
    TaskTimeoutError,
)
from aioface.emulator import Emulator
from aioface.transports._base import RequestSpec, Response
from tests.support.files import image_bytes

pytestmark = pytest.mark.anyio


class TimedMock(MockTransport):
    """A MockTransport that records the timeout each request was sent with."""

    def __init__(self, handler: object) -> None:
        super().__init__(handler)  # type: ignore[arg-type]
        self.timeouts: list[float] = []

    def stream(
        self, spec: RequestSpec, *, timeout: float, connect_timeout: float
    ) -> AbstractAsyncContextManager[Response]:
        self.timeouts.append(timeout)
        return super().stream(spec, timeout=timeout, connect_timeout=connect_timeout)


def _client(transport: MockTransport) -> Client:
    return Client(facestudio_key="k", transport=transport, persist_limits=False, env={},
                  retry=RetryPolicy(max_retries=3, base=0.0, cap=0.0))  # fmt: skip


async def test_timeout_and_retry_for_the_view_only(tmp_path: Path) -> None:
    fails = iter([503, 503, 200, 503])

    def handler(req: MockRequest) -> MockResponse:
        status = next(fails)
        if status != 200:
            return MockResponse(status, json={"detail": "busy"})
        return MockResponse(200, content=image_bytes(), headers={"X-User-Class": "Professional"})

    transport = TimedMock(handler)
    async with _client(transport) as client:
        await client.facestudio.generate(tmp_path / "a", age=30)  # two 503s retried
        assert transport.timeouts == [60.0, 60.0, 60.0]
        strict = client.with_options(timeout=5, retry=RetryPolicy(max_retries=0))
        with pytest.raises(ServerError):
            await strict.facestudio.generate(tmp_path / "b", age=30)
        assert transport.timeouts[-1] == 5.0
        # Shared: the limiter, the tier the first answer taught, the counters, the transport.
        assert strict.limiter("facestudio") is client.limiter("facestudio")
        assert strict.facestudio.tier == "professional"
        assert client.stats("facestudio") == strict.stats("facestudio") == {"requests": 4, "retries": 2, "throttled": 0}
        assert not strict.closed
    assert strict.closed


async def test_views_stack_and_the_innermost_wins() -> None:
    async with _client(TimedMock(lambda r: MockResponse(200, content=image_bytes()))) as client:
        a = client.with_options(timeout=5, acquire_timeout=1)
        b = a.with_options(timeout=7)
        assert b._options is not None and (b._options.timeout, b._options.acquire_timeout) == (7, 1)
        assert client._options is None and a._options is not None and a._options.timeout == 5


async def test_poll_deadline_per_view(emu: Emulator, tmp_path: Path) -> None:
    emu.config.task_duration = 5.0
    async with emu.client() as client:
        quick = client.with_options(poll=PollPolicy(initial=0.01, deadline=0.3))
        with pytest.raises(TaskTimeoutError) as ei:
            await quick.ailab.swap(tmp_path / "s", source=image_bytes(), target=image_bytes("PNG"))
        assert ei.value.task_id and "0.3s" in str(ei.value)


async def test_a_view_with_its_own_stricter_limit(tmp_path: Path) -> None:
    from aioface import ConfigurationError, LimiterTimeoutError

    async with _client(TimedMock(lambda r: MockResponse(200, content=image_bytes()))) as client:
        background = client.with_options(limits={"facestudio": "1/hour"}, acquire_timeout=0.05)
        await background.facestudio.generate(tmp_path / "a", age=30)
        with pytest.raises(LimiterTimeoutError):  # its own hour is spent...
            await background.facestudio.generate(tmp_path / "b", age=30)
        await client.facestudio.generate(tmp_path / "c", age=30)  # ...the client's budget is not
        assert client.stats("facestudio")["requests"] == 2
        with pytest.raises(ConfigurationError):
            client.with_options(limits={"nope": "1/s"})


async def test_a_view_of_a_view_keeps_both_limits(tmp_path: Path) -> None:
    from aioface import LimiterTimeoutError

    async with _client(TimedMock(lambda r: MockResponse(200, content=image_bytes()))) as client:
        strict = client.with_options(limits={"facestudio": "1/hour"}, acquire_timeout=0.05)
        looser = strict.with_options(limits={"facestudio": "60/hour"})  # cannot loosen the outer view
        await looser.facestudio.generate(tmp_path / "a", age=30)
        with pytest.raises(LimiterTimeoutError):
            await looser.facestudio.generate(tmp_path / "b", age=30)
        with pytest.raises(LimiterTimeoutError):  # the outer view's hour was spent by the inner one
            await strict.facestudio.generate(tmp_path / "c", age=30)
        assert client.stats("facestudio")["requests"] == 1
