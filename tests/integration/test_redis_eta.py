"""``RedisLimiter.time_for`` against a real redis-server: what this process knows, a lower bound."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from aioface import Rate, RedisStore

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    s = RedisStore(redis_url, lease=0.6)
    await s.open()
    yield s
    await s.aclose()


async def test_time_for_counts_the_windows_its_requests_in_flight_and_a_pause(store: RedisStore) -> None:
    limiter = store.limiter(
        "test", uuid.uuid4().hex[:16], (Rate(2, 1.0), Rate(3, 10.0)), margin=0.0, adaptive=False, stamp_bound=None
    )
    assert limiter.time_for(2) == 0.0
    assert limiter.time_for(3) == pytest.approx(1.0)  # the second's window: 2 now, 1 a second later
    assert limiter.time_for(4) == pytest.approx(10.0)  # the ten seconds' window decides
    permit = await limiter.acquire(timeout=5)
    assert limiter.time_for(2) == pytest.approx(1.0)  # its slot is held until its answer + 1 s
    permit.responded()
    limiter.cooldown(5.0)
    assert 4.5 < limiter.time_for(1) <= 5.0
