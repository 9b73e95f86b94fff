"""A view's own limits (issue 21): one limiter per (provider, key or account, spec), kept by the client."""

from __future__ import annotations

from pathlib import Path

import pytest

from aioface import Client, LimiterTimeoutError, MockResponse, MockTransport
from tests.support.files import image_bytes

pytestmark = pytest.mark.anyio


def answer(req: object) -> MockResponse:
    return MockResponse(200, headers={"Content-Type": "image/jpeg", "X-User-Class": "Basic"}, content=image_bytes())


def test_a_view_per_call_shares_one_limiter_per_spec() -> None:
    c = Client(facestudio_key="k", env={}, persist_limits=False)
    first = c.with_options(limits={"facestudio": "1/second"})._options
    again = c.with_options(limits={"facestudio": "1/s"})._options  # the same rates, written otherwise
    other = c.with_options(limits={"facestudio": "2/second"})._options
    assert first is not None and again is not None and other is not None
    assert first.limiters is not None and again.limiters is not None and other.limiters is not None
    assert first.limiters["facestudio"][0] is again.limiters["facestudio"][0]
    assert other.limiters["facestudio"][0] is not first.limiters["facestudio"][0]


async def test_a_views_long_windows_persist_like_the_clients(tmp_path: Path) -> None:
    kw = {"facestudio_key": "k", "env": {}, "state_dir": tmp_path, "acquire_timeout": 0.2}
    async with Client(transport=MockTransport(answer), **kw) as c:  # type: ignore[arg-type]
        await c.with_options(limits={"facestudio": "1/day"}).facestudio.generate(None)
        with pytest.raises(LimiterTimeoutError):
            await c.with_options(limits={"facestudio": "1/day"}).facestudio.generate(None)
    async with Client(transport=MockTransport(answer), **kw) as c:  # type: ignore[arg-type]  # a rerun
        with pytest.raises(LimiterTimeoutError):
            await c.with_options(limits={"facestudio": "1/day"}).facestudio.generate(None)
        await c.facestudio.generate(None)  # the client's own limits are another budget
