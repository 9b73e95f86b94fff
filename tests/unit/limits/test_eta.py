"""Time remaining under the limits in force: ``RateLimiter.time_for`` and the CLI's estimate."""

from __future__ import annotations

import pytest

from aioface import RateLimiter, parse_limits
from aioface.cli._progress import Tracker, time_remaining
from aioface.limits._clock import FakeClock
from aioface.limits._eta import grant_time

pytestmark = pytest.mark.anyio


async def steady(limiter: RateLimiter, clock: FakeClock, every: float, seconds: float) -> None:
    """Send one request every ``every`` seconds for ``seconds`` (each answered at once)."""
    for _ in range(round(seconds / every)):
        permit = limiter.try_acquire()
        assert permit is not None
        permit.responded()
        await clock.advance(every)


async def test_fifty_left_at_a_full_thirty_a_minute_is_about_a_hundred_seconds() -> None:
    clock = FakeClock()
    limiter = RateLimiter(parse_limits("30/minute"), clock=clock, margin=0.0)
    await steady(limiter, clock, 2.0, 180.0)  # the window is full, its slots freeing every 2 s
    assert limiter.time_for(50) == pytest.approx(100.0, abs=3.0)
    assert limiter.time_for(1) == 0.0  # the oldest slot freed just now
    assert limiter.time_for(2) == pytest.approx(2.0, abs=0.01)
    # the recent rate says ~2 s left (the first 30 went fast); the limits say 100: 100 is shown
    assert time_remaining(50, 2.0, limiter.time_for(50)) == pytest.approx(100.0, abs=3.0)


async def test_a_fresh_window_lets_its_limit_through_at_once_then_waits_a_period() -> None:
    clock = FakeClock()
    limiter = RateLimiter(parse_limits("30/minute"), clock=clock, margin=0.05)
    assert limiter.time_for(0) == 0.0
    assert limiter.time_for(30) == 0.0
    assert limiter.time_for(31) == pytest.approx(60.05)
    assert limiter.time_for(91) == pytest.approx(3 * 60.05)


async def test_requests_in_flight_hold_their_slots_and_a_pause_holds_all() -> None:
    clock = FakeClock()
    limiter = RateLimiter(parse_limits("2/second"), clock=clock, margin=0.0)
    permits = [limiter.try_acquire(), limiter.try_acquire()]
    assert all(permits) and limiter.in_flight == 2
    assert limiter.time_for(1) == pytest.approx(1.0)  # answered now, free a second later at best
    limiter.cooldown(30.0)
    assert limiter.time_for(1) == pytest.approx(30.0)
    await clock.advance(10.0)
    assert limiter.time_for(1) == pytest.approx(20.0)


async def test_the_slowest_window_decides() -> None:
    clock = FakeClock()
    limiter = RateLimiter(parse_limits("10/second,20/minute"), clock=clock, margin=0.0)
    assert limiter.time_for(10) == 0.0
    assert limiter.time_for(21) == pytest.approx(60.0)  # the minute, not the second
    assert limiter.time_for(15) == pytest.approx(1.0)  # the second: 10 now, 5 a second later


async def test_time_for_does_not_change_the_limiter() -> None:
    clock = FakeClock()
    limiter = RateLimiter(parse_limits("3/second"), clock=clock, margin=0.0)
    await steady(limiter, clock, 0.4, 2.0)
    before = (limiter.granted, limiter.in_flight, limiter.time_for(4))
    assert limiter.time_for(1000) > limiter.time_for(4) > 0
    assert (limiter.granted, limiter.in_flight, limiter.time_for(4)) == before


def test_grant_time_counts_taken_slots_in_the_order_they_free() -> None:
    assert grant_time(1, [(2, 10.0, [3.0, 7.0])]) == pytest.approx(3.0)
    assert grant_time(2, [(2, 10.0, [3.0, 7.0])]) == pytest.approx(7.0)
    assert grant_time(3, [(2, 10.0, [3.0, 7.0])]) == pytest.approx(13.0)  # the 1st new one's slot
    assert grant_time(1, [(1, 10.0, [])], in_flight=1) == pytest.approx(10.0)
    assert grant_time(5, [], pause=4.0) == 4.0
    assert grant_time(1, [(2, 10.0, [1.0, 3.0, 7.0])], now=2.0) == pytest.approx(1.0)  # 1.0 is free already


def test_time_remaining_is_the_longer_estimate() -> None:
    assert time_remaining(0, 5.0, 100.0) == 0.0
    assert time_remaining(10, None, None) is None
    assert time_remaining(10, 5.0, None) == 5.0
    assert time_remaining(10, None, 7.0) == 7.0
    assert time_remaining(10, 5.0, 7.0) == 7.0
    assert time_remaining(10, 9.0, 7.0) == 9.0


async def test_the_tracker_counts_the_limits_for_items_not_yet_granted() -> None:
    clock = FakeClock()
    limiter = RateLimiter(parse_limits("30/minute"), clock=clock, margin=0.0)
    await steady(limiter, clock, 2.0, 180.0)
    tracker = Tracker(140, "generate", quiet=True)
    tracker.enabled = True  # as on a terminal (no bar drawn here): without one nothing is estimated
    tracker.ok = 90  # 50 left: none running
    tracker.watch(lambda: 0, lambda: 0, limiter)
    eta = tracker.eta(1.5)
    assert eta is not None and eta == pytest.approx(100.0, abs=3.0)
    tracker.watch(lambda: 20, lambda: 0, limiter)  # 20 of the 50 already hold a slot: 30 to grant
    eta = tracker.eta(1.5)
    assert eta is not None and eta == pytest.approx(60.0, abs=3.0)
    tracker.watch(lambda: 0, lambda: 0, None)  # no limiter: the recent rate alone
    assert tracker.eta(1.5) == 1.5
