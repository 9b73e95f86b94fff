"""The limiter on a fake clock: deterministic, no sleeping."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from aioface import ConfigurationError, LimiterTimeoutError, Rate, RateLimiter, parse_limits
from aioface.limits._clock import FakeClock
from aioface.limits._persist import BudgetStore, budget_path

pytestmark = pytest.mark.anyio


def test_parse_limits() -> None:
    assert parse_limits("5/minute,120/day") == (Rate(5, 60.0), Rate(120, 86400.0))
    assert parse_limits("30/2s") == (Rate(30, 2.0),)
    assert parse_limits("10/s, 1/hours") == (Rate(10, 1.0), Rate(1, 3600.0))
    assert parse_limits("3 / 1.5m") == (Rate(3, 90.0),)
    for bad in ["", "5", "5/fortnight", "0/s", "-1/s", "a/s", "5/0s", "5/minute,,x"]:
        with pytest.raises(ConfigurationError):
            parse_limits(bad)


async def test_burst_then_waits_a_full_window_after_the_answer() -> None:
    clock = FakeClock()
    lim = RateLimiter([Rate(2, 10.0)], margin=0.0, clock=clock)
    p1, p2 = await lim.acquire(), await lim.acquire()
    assert lim.try_acquire() is None
    await clock.advance(3.0)
    p1.responded()  # slot held until 3 + 10
    p2.responded()
    got: list[float] = []

    async def take() -> None:
        (await lim.acquire()).responded()
        got.append(clock.now())

    async with anyio.create_task_group() as tg:
        tg.start_soon(take)
        await clock.advance(9.9)
        assert got == []
        await clock.advance(0.1)
        assert got == [pytest.approx(1013.0)]


async def test_in_flight_requests_block_until_they_answer() -> None:
    clock = FakeClock()
    lim = RateLimiter([Rate(1, 1.0)], margin=0.0, clock=clock)
    p = await lim.acquire()
    await clock.advance(100.0)
    assert lim.try_acquire() is None  # still in flight: the server may stamp it any moment
    p.responded()
    assert lim.try_acquire() is None
    await clock.advance(1.0)
    assert lim.try_acquire() is not None


async def test_several_windows_at_once() -> None:
    clock = FakeClock()
    lim = RateLimiter([Rate(2, 1.0), Rate(3, 10.0)], margin=0.0, clock=clock)
    sent: list[float] = []
    async with anyio.create_task_group() as tg:

        async def worker() -> None:
            for _ in range(2):
                p = await lim.acquire()
                sent.append(clock.now())
                p.responded()

        for _ in range(2):
            tg.start_soon(worker)
        for _ in range(30):
            await clock.advance(0.5)
    t0 = 1000.0
    assert sent == [t0, t0, t0 + 1.0, t0 + 10.0]


async def test_never_more_than_n_in_any_window_and_near_full_rate() -> None:
    """Simulate 8 callers with random latency: every send sees < N answers younger than T."""
    clock = FakeClock(0.0)
    n, period = 5, 10.0
    lim = RateLimiter([Rate(n, period)], margin=0.0, clock=clock)
    rng = random.Random(7)
    log: list[tuple[float, float]] = []  # (send, answer)

    async def worker() -> None:
        while clock.now() < 200:
            p = await lim.acquire()
            sent = clock.now()
            await clock.sleep(rng.uniform(0.05, 0.5))
            p.responded()
            log.append((sent, clock.now()))

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(worker)
        while clock.now() < 220:
            await clock.advance(0.05)
        tg.cancel_scope.cancel()
    for s_j, _ in log:
        live = [1 for s_i, a_i in log if s_i < s_j and a_i + period > s_j]
        assert len(live) <= n - 1
    achieved = len(log) / 200.0
    assert achieved >= 0.9 * n / (period + 0.5)


async def test_fifo_and_cancelled_waiters_take_nothing() -> None:
    clock = FakeClock()
    lim = RateLimiter([Rate(1, 5.0)], margin=0.0, clock=clock)
    held = await lim.acquire()
    order: list[str] = []

    async def waiter(name: str) -> None:
        p = await lim.acquire()
        order.append(name)
        p.responded()

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, "a")
        await anyio.lowlevel.checkpoint()
        b_scope = anyio.CancelScope()

        async def cancellable_b() -> None:
            with b_scope:
                await waiter("b")

        tg.start_soon(cancellable_b)
        await anyio.lowlevel.checkpoint()
        tg.start_soon(waiter, "c")
        await anyio.lowlevel.checkpoint()
        assert lim.waiting == 3
        b_scope.cancel()
        await clock.advance(0)
        assert lim.waiting == 2
        held.responded()
        await clock.advance(5.0)
        assert order == ["a"]
        await clock.advance(5.0)
        assert order == ["a", "c"]
    assert lim.granted == 3  # held, a, c: the cancelled b took no slot


async def test_acquire_timeout() -> None:
    clock = FakeClock()
    lim = RateLimiter([Rate(1, 60.0)], margin=0.0, clock=clock)
    await lim.acquire()
    errors: list[Exception] = []

    async def take() -> None:
        try:
            await lim.acquire(timeout=5.0)
        except LimiterTimeoutError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(take)
        await clock.advance(4.9)
        assert errors == []
        await clock.advance(0.2)
    assert len(errors) == 1 and "1/60s" in str(errors[0])
    assert lim.waiting == 0


async def test_cooldown_pauses_everyone() -> None:
    clock = FakeClock()
    lim = RateLimiter([Rate(100, 1.0)], clock=clock)
    lim.cooldown(3.0)
    assert lim.try_acquire() is None
    await clock.advance(3.0)
    assert lim.try_acquire() is not None


async def test_set_rates_keeps_spent_history() -> None:
    clock = FakeClock()
    lim = RateLimiter([Rate(5, 10.0)], margin=0.0, clock=clock)
    for _ in range(3):
        (await lim.acquire()).responded()
    lim.set_rates([Rate(2, 10.0)])
    assert lim.try_acquire() is None
    lim.set_rates([Rate(30, 10.0)])
    assert lim.try_acquire() is not None


async def test_adaptive_halves_on_429_and_recovers() -> None:
    clock = FakeClock()
    lim = RateLimiter([Rate(8, 1.0)], margin=0.0, clock=clock, adaptive=True)
    lim.cooldown(0.0)
    assert lim.effective_limits == (4,)
    for _ in range(40):
        p = await lim.acquire()
        p.responded()
        await clock.advance(1.0)
    assert lim.effective_limits == (8,)


async def test_budget_survives_restart(tmp_path: Path) -> None:
    path = budget_path(tmp_path, "facestudio", "key-1")
    assert "key-1" not in str(path)
    a = RateLimiter([Rate(100, 1.0), Rate(2, 86400.0)], store=BudgetStore(path, 86400.0))
    for _ in range(2):
        (await a.acquire()).responded()
    b = RateLimiter([Rate(100, 1.0), Rate(2, 86400.0)], store=BudgetStore(path, 86400.0))
    assert b.try_acquire() is None  # the day's budget was spent by the earlier "process"
    other = RateLimiter([Rate(2, 86400.0)], store=BudgetStore(budget_path(tmp_path, "facestudio", "key-2"), 86400.0))
    assert other.try_acquire() is not None


def test_budget_file_shared_by_two_processes(tmp_path: Path) -> None:
    path = tmp_path / "shared.log"
    code = (
        "import sys, time; from pathlib import Path; from aioface.limits._persist import BudgetStore;"
        f"s = BudgetStore(Path({str(path)!r}), 86400.0)\n"
        "for i in range(300): s.append(time.time())"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    import time

    stamps = BudgetStore(path, 86400.0).load(time.time())
    assert len(stamps) == 600


async def test_stamp_bound_frees_slots_without_waiting_for_slow_answers() -> None:
    clock = FakeClock()
    lim = RateLimiter([Rate(1, 10.0)], margin=0.0, clock=clock, stamp_bound=0.5)
    slow = await lim.acquire()  # its answer will take 60 s
    await clock.advance(10.4)
    assert lim.try_acquire() is None  # the server may have counted it as late as t0 + 0.5
    await clock.advance(0.1)
    second = lim.try_acquire()
    assert second is not None and lim.in_flight == 0
    slow.responded()
    second.responded()
    assert lim.try_acquire() is None
    with pytest.raises(ConfigurationError):
        RateLimiter([Rate(1, 1.0)], stamp_bound=-1)


def test_budget_store_remembers_the_learned_tier_per_provider_and_key(tmp_path: Path) -> None:
    store = BudgetStore(budget_path(tmp_path, "facestudio", "key-1"), 86400.0)
    assert store.load_tier() is None
    store.save_tier("enterprise")
    again = BudgetStore(budget_path(tmp_path, "facestudio", "key-1"), 86400.0)  # the next process
    assert again.load_tier() == "enterprise" and "key-1" not in again.tier_path.read_text()
    assert BudgetStore(budget_path(tmp_path, "facestudio", "key-2"), 86400.0).load_tier() is None
    assert BudgetStore(budget_path(tmp_path, "other", "key-1"), 86400.0).load_tier() is None
    again.save_tier("basic")
    assert store.load_tier() == "basic"
    store.tier_path.write_bytes(b"{torn")
    assert store.load_tier() is None  # a damaged file is no tier, not an error
    assert sorted(p.name for p in (tmp_path / "limits").iterdir()) == [store.tier_path.name]


async def test_a_probe_never_goes_over_the_windows_in_force() -> None:
    # Issue 21 (3): "never holds back the first request" must not mean "over a limit that is known".
    clock = FakeClock()
    lim = RateLimiter([Rate(2, 100.0)], margin=0.0, clock=clock)
    for _ in range(2):
        lim.try_acquire().responded()  # type: ignore[union-attr]
    assert lim.try_acquire() is None  # the budget is spent
    lim.probe_first()
    assert lim.try_acquire() is None  # unconfirmed rates still hold: no request over them
    lim.cooldown(5.0)
    await clock.advance(100.0)
    probe = lim.try_acquire()
    assert probe is not None  # the window ended: the probe goes
    assert lim.try_acquire() is None  # and only it, until its answer
    probe.responded()
    assert lim.try_acquire() is not None  # answered without naming rates: the next one may go
    lim.set_rates([Rate(2, 100.0)])  # an answer named the rates: no more probing


async def test_unconfirmed_rates_allow_one_request_in_flight_until_an_answer_names_them() -> None:
    # Issue 21 (2): a remembered Enterprise tier must not send 15 requests before the first answer.
    clock = FakeClock()
    lim = RateLimiter([Rate(120, 100.0)], margin=0.0, clock=clock, stamp_bound=0.5)
    lim.probe_first()
    first = await lim.acquire()
    assert lim.in_flight == 1  # held in flight until its answer, stamp bound or not
    assert lim.try_acquire() is None
    got: list[object] = []
    async with anyio.create_task_group() as tg:

        async def waiter() -> None:
            got.append(await lim.acquire())

        for _ in range(3):
            tg.start_soon(waiter)
        await clock.advance(1.0)
        assert got == []
        first.responded()
        lim.set_rates([Rate(5, 100.0)])  # the answer named Basic: the rest go by it
        await clock.advance(0.0)
    assert len(got) == 3 and lim.in_flight == 0
    assert lim.try_acquire() is not None  # 1 + 3 stamped (stamp bound now), 5 allowed
    assert lim.try_acquire() is None


def test_rate_label_reads_as_written_and_parses_back() -> None:
    cases = {"1/minute": Rate(1, 60.0), "120/day": Rate(120, 86400.0), "5/second": Rate(5, 1.0)}
    cases |= {"30/2s": Rate(30, 2.0), "3/90s": Rate(3, 90.0), "1/2h": Rate(1, 7200.0), "10/0.5s": Rate(10, 0.5)}
    for text, rate in cases.items():
        assert rate.label() == text and parse_limits(text) == (rate,)
    assert Rate(1, 60.0).scaled(600).scaled(1 / 600).label() == "1/minute"  # float round trip


def test_budget_store_keeps_small_facts_beside_the_tier(tmp_path: Path) -> None:
    store = BudgetStore(budget_path(tmp_path, "prov", "key-1"), 86400.0)
    assert store.load_meta() == {}
    store.save_tier("enterprise")
    store.save_meta({"plan": "yearly"})
    again = BudgetStore(budget_path(tmp_path, "prov", "key-1"), 0.0)
    assert again.load_meta() == {"tier": "enterprise", "plan": "yearly"} and again.load_tier() == "enterprise"
    before = again.tier_path.stat().st_mtime_ns
    again.save_meta({"tier": "enterprise"})  # nothing changed: nothing written
    assert again.tier_path.stat().st_mtime_ns == before


async def test_a_long_wait_is_reported_once_by_the_head_naming_the_window() -> None:
    clock = FakeClock()
    lim = RateLimiter([Rate(1, 10.0), Rate(5, 100.0)], margin=0.0, clock=clock)
    lim.try_acquire().responded()  # type: ignore[union-attr]
    reports: list[tuple[str, float, Rate | None]] = []
    got: list[str] = []

    async def take(name: str, notice: float) -> None:
        (await lim.acquire(on_wait=lambda s, r: reports.append((name, s, r)), notice=notice)).responded()
        got.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(take, "a", 5.0)
        tg.start_soon(take, "b", 5.0)
        tg.start_soon(take, "quiet", 15.0)
        await clock.advance(0.0)
        assert reports == [("a", 10.0, Rate(1, 10.0))]  # only the head: b is not at the front yet
        await clock.advance(4.0)
        assert len(reports) == 1  # once per waiter, however often it wakes
        await clock.advance(6.0)
        assert got == ["a"] and reports[1] == ("b", 10.0, Rate(1, 10.0))
        await clock.advance(10.0)
        await clock.advance(10.0)
    assert got == ["a", "b", "quiet"] and len(reports) == 2  # 10 s is under the 15 s notice

    lim.cooldown(30.0)
    reports.clear()
    with pytest.raises(LimiterTimeoutError):
        await lim.acquire(timeout=0.0, on_wait=lambda s, r: reports.append(("p", s, r)))
    assert reports == [("p", 30.0, None)]  # a 429 pause names no window


def test_a_limit_wait_reads_as_a_sentence() -> None:
    from aioface import LimitWait

    assert str(LimitWait("facestudio", "1/minute", "Anon", 59.4)) == "facestudio 1/minute (Anon): next slot in 59s"
    assert str(LimitWait("myface", "5/second", None, 4.25)) == "myface 5/second: next slot in 4.2s"
    assert str(LimitWait("p", None, None, 754)).endswith("paused after HTTP 429: next slot in 12m 34s")
    assert str(LimitWait("p", "120/day", "Basic", 83_000)).endswith("next slot in 23h 03m")


@pytest.mark.parametrize(("margin", "stamp_bound"), [(-0.1, None), (0.0, -1.0)])
def test_negative_margin_or_stamp_bound_is_refused_by_local_and_shared_limiters(
    margin: float, stamp_bound: float | None
) -> None:
    from aioface.limits.redis._limiter import RedisLimiter
    from aioface.limits.redis._store import RedisStore

    rates = [Rate(1, 1.0)]
    with pytest.raises(ConfigurationError, match=">= 0"):
        RateLimiter(rates, margin=margin, stamp_bound=stamp_bound)
    # The shared limiter checks before it ever talks to Redis: nothing listens on this URL.
    with pytest.raises(ConfigurationError, match=">= 0"):
        RedisLimiter(RedisStore("redis://127.0.0.1:1/0"), "p", "h", rates, margin=margin, stamp_bound=stamp_bound)


ODD_REDIS_URLS = [
    "redis://u:secret@127.0.0.1:1/0?db=abc",
    "redis://u:secret@127.0.0.1:1/0?socket_timeout=x",
    "redis://u:secret@127.0.0.1:1/0?health_check_interval=soon",
    "rediss://u:secret@127.0.0.1:1/0?ssl_cert_reqs=bogus",
    "redis://u:secret@127.0.0.1:1/0?ssl_cert_reqs=none",  # an SSL option on a plain connection
    "redis://u:secret@[::1:6379/0",  # a broken IPv6 host
    "redis://u:secret@[::1]:99999/0",
    "unix://u:secret@/tmp/aioface-none.sock?db=q",
    "redis://:p%40secret@[::1:6379/0",  # the password as written and decoded both stay hidden
]


@pytest.mark.parametrize("url", ODD_REDIS_URLS)
def test_an_odd_redis_url_is_a_configuration_error_naming_the_store_without_its_password(url: str) -> None:
    """Seen: ``?db=abc``, a broken IPv6 host... raised ValueError/TypeError from deep in redis-py (or
    from the message's own URL cleaning). Now the store refuses them when made, before any connection."""
    from aioface import Client
    from aioface.limits import RedisStore

    for make in (lambda: RedisStore(url), lambda: Client(limits_store=url, env={})):
        with pytest.raises(ConfigurationError) as caught:
            make()
        message = str(caught.value)
        assert "bad limits store URL" in message and url.split("://")[0] + ":" in message, message
        assert "secret" not in message and "p@" not in message, message


async def test_try_acquire_grants_exactly_when_every_window_says_free() -> None:
    """The fast check in try_acquire agrees with the full one (seconds_until_free) in every state:
    windows filling and emptying, answers in flight, a 429 pause, a probe, stamp-bound slots."""
    rng = random.Random(7)
    for stamp_bound in (None, 0.5):
        clock = FakeClock()
        lim = RateLimiter([Rate(3, 1.0), Rate(5, 4.0)], margin=0.05, clock=clock, stamp_bound=stamp_bound)
        held: list[object] = []
        for step in range(600):
            roll = rng.random()
            if roll < 0.05:
                lim.cooldown(rng.choice([0.0, 0.3, 1.2]))
            elif roll < 0.08:
                lim.probe_first()
            elif roll < 0.1:
                lim.set_rates([Rate(3, 1.0), Rate(5, 4.0)])
            elif roll < 0.4 and held:
                held.pop(rng.randrange(len(held))).responded()  # type: ignore[attr-defined]
            elif roll < 0.6:
                await clock.advance(rng.choice([0.01, 0.1, 0.5, 1.0]))
            free = lim.waiting == 0 and lim.seconds_until_free() == 0.0
            permit = lim.try_acquire()
            assert (permit is not None) == free, step
            if permit is not None:
                held.append(permit)
