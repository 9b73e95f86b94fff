"""``on_request`` gets real timestamps for every attempt (they are taken only when someone reads them)."""

from __future__ import annotations

from pathlib import Path

import pytest

import aioface
from aioface import RequestTiming
from tests.support.files import image_bytes

pytestmark = pytest.mark.anyio


async def test_on_request_times_each_attempt_in_order(tmp_path: Path) -> None:
    answers = iter([aioface.MockResponse(503), aioface.MockResponse(200, content=image_bytes())])
    timings: list[RequestTiming] = []
    async with aioface.Client(
        facestudio_key="k",
        facestudio_base_url="https://fs.test",
        transport=aioface.MockTransport(lambda r: next(answers)),
        persist_limits=False,
        env={},
        on_request=timings.append,
        retry=aioface.RetryPolicy(max_retries=2, base=0.0, cap=0.0),
    ) as client:
        await client.facestudio.generate(tmp_path / "f", age=30)
    assert [t.status for t in timings] == [503, 200]
    for t in timings:
        assert t.headers is not None
        assert 0 < t.queued <= t.sent <= t.headers <= t.done
        assert (t.provider, t.method, t.path) == ("facestudio", "GET", "https://fs.test/v1/generate")
    assert timings[0].error is not None and timings[1].error is None
