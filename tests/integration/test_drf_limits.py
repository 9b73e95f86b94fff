"""Issue 21: aioface's limits against the DRF Face Studio double, where the model met the real server.

Each test counts what the client *sent* per sliding window from the server's own log (DRF's throttle
is not atomic), not only 429s. Several "processes" are several clients, each with its own
``RedisStore`` (its own connections, limiters, heartbeat): what two processes share is what Redis
holds. Time is scaled 30x: Basic's 5/minute is 5 per 2 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aioface import Client, LocalStore, RedisStore
from aioface.limits._rate import key_digest
from aioface.testing import RedisServer
from tests.support.drf_server import DrfFaceStudio, count_429, max_in_window, status_counts

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90), pytest.mark.anyio]

SCALE = 30.0  # Basic: 5 per 2 s; Professional: 30 per 2 s
BURST = 60.0 / SCALE
ACCOUNTS = {
    "acme": {"user_class": "Basic", "keys": ["acme-1", "acme-2"]},
    "local": {"user_class": "Basic", "keys": ["local-1", "local-2"]},
    "shrunk": {"user_class": "Basic", "keys": ["shrunk-1"]},
    "oneshot": {"user_class": "Basic", "keys": ["os-1"]},
    "flush": {"user_class": "Basic", "keys": ["fl-1"]},
    "viewer": {"user_class": "Basic", "keys": ["view-1"]},
}


@pytest.fixture(scope="module")
def drf_redis(module_redis: RedisServer | str) -> RedisServer | str:
    """The module's Redis (``conftest.module_redis``): a server this module may flush, or ``REDIS_URL``."""
    return module_redis


def base_url(server: RedisServer | str) -> str:
    return server if isinstance(server, str) else server.url


def db(server: RedisServer | str, n: int) -> str:
    """The same server, database ``n`` (DRF's cache is in 0; aioface's limits elsewhere)."""
    return base_url(server).rsplit("/", 1)[0] + f"/{n}"


@pytest.fixture(scope="module")
def studio(drf_redis: RedisServer | str) -> Iterator[DrfFaceStudio]:
    with DrfFaceStudio(ACCOUNTS, redis_url=base_url(drf_redis), time_scale=SCALE) as fs:
        yield fs


@pytest.fixture
async def stores(drf_redis: RedisServer | str) -> AsyncIterator[list[RedisStore]]:
    """Stores made by a test (one per "process"), closed after it."""
    made: list[RedisStore] = []
    yield made
    for s in made:
        await s.aclose()


def client(fs: DrfFaceStudio, key: str, store: RedisStore | LocalStore, **kw: object) -> Client:
    return Client(
        facestudio_base_url=fs.url,
        facestudio_key=key,
        time_scale=SCALE,
        limits_store=store,
        persist_limits=False,
        env={},
        acquire_timeout=30,
        **kw,  # type: ignore[arg-type]
    )


async def generate(c: Client, n: int) -> None:
    results = await c.map(lambda i: c.facestudio.generate(None), range(n), concurrency=n)
    assert [r.error for r in results if not r.ok] == []


def sent_fine(fs: DrfFaceStudio, account: str, limit: int = 5, period: float = BURST) -> dict[int, int]:
    """0 429s and at most ``limit`` sent per window for ``account``; the status counts."""
    log = fs.read_log()
    assert count_429(log, account=account) == 0, status_counts(log, account=account)
    assert max_in_window(log, period, account=account) <= limit
    return status_counts(log, account=account)


# ------------------------------------------------------------------ 1. keys of one account
async def test_keys_of_one_account_share_every_window_through_redis(
    studio: DrfFaceStudio, drf_redis: RedisServer | str, stores: list[RedisStore]
) -> None:
    a, b = RedisStore(db(drf_redis, 1)), RedisStore(db(drf_redis, 1))
    stores += [a, b]
    ca = client(studio, "acme-1", a, accounts={"facestudio": "acme"})
    cb = client(studio, "acme-2", b, accounts={"facestudio": "acme"})
    async with ca, cb:
        await asyncio.gather(generate(ca, 6), generate(cb, 6))  # twice what a window holds, and more
        assert ca.facestudio.tier == cb.facestudio.tier == "basic"
    assert sent_fine(studio, "acme") == {200: 12}
    # Shared under the account's hash, never a key's: the label and keys are nowhere in Redis.
    names = [str(k) for k in await a.client().keys("*")]
    assert not any(secret in n for n in names for secret in ("acme", key_digest("acme-1"), key_digest("acme-2")))


async def test_keys_of_one_account_share_in_one_process(studio: DrfFaceStudio) -> None:
    store = LocalStore()  # one process, two clients sharing one store
    ca = client(studio, "local-1", store, accounts={"facestudio": "local"})
    cb = Client(
        facestudio_base_url=studio.url,
        facestudio_key="local-2",
        time_scale=SCALE,
        limits_store=store,
        persist_limits=False,
        env={"AIOFACE_FACESTUDIO_ACCOUNT": "local"},  # the same account, from the environment
        acquire_timeout=30,
    )
    async with ca, cb:
        assert ca.limiter("facestudio") is cb.limiter("facestudio")
        await asyncio.gather(generate(ca, 5), generate(cb, 5))
    assert sent_fine(studio, "local") == {200: 10}


# ------------------------------------------------------------------ 2. a remembered tier no longer true
async def test_a_remembered_tier_that_is_no_longer_true_sends_one_request_first(
    studio: DrfFaceStudio, drf_redis: RedisServer | str, stores: list[RedisStore]
) -> None:
    old = RedisStore(db(drf_redis, 1))
    stores.append(old)
    old.save_meta("facestudio", key_digest("shrunk-1"), {"tier": "enterprise"})  # learned long ago
    await old.flush()
    s = RedisStore(db(drf_redis, 1))
    stores.append(s)
    async with client(studio, "shrunk-1", s) as c:
        assert c.facestudio.tier == "enterprise"  # remembered, not confirmed
        await generate(c, 10)
        assert c.facestudio.tier == "basic"
    assert sent_fine(studio, "shrunk") == {200: 10}


# ------------------------------------------------------------------ 3. one-shot processes, full windows
async def test_one_shot_processes_never_send_over_full_shared_windows(
    studio: DrfFaceStudio, drf_redis: RedisServer | str, stores: list[RedisStore]
) -> None:
    first = RedisStore(db(drf_redis, 1))
    stores.append(first)
    async with client(studio, "os-1", first) as c:
        await generate(c, 5)  # learns Basic, shares it, fills the window
    for _ in range(3):  # three one-shot processes, right after
        s = RedisStore(db(drf_redis, 1))
        stores.append(s)
        async with client(studio, "os-1", s) as c:
            await generate(c, 1)
    assert sent_fine(studio, "oneshot") == {200: 8}


# ------------------------------------------------------------------ 4. Redis flushed mid-window
async def test_a_flushed_store_grants_nothing_before_the_live_processes_put_their_stamps_back(
    studio: DrfFaceStudio, drf_redis: RedisServer | str, stores: list[RedisStore]
) -> None:
    url = db(drf_redis, 2)  # a database of its own: flushed below
    live = RedisStore(url)
    stores.append(live)
    async with client(studio, "fl-1", live) as a:
        await generate(a, 5)  # the window is full
        await live.client().flushdb()
        new = RedisStore(url)
        stores.append(new)
        async with client(studio, "fl-1", new) as b:  # a process that has taken no slot
            await asyncio.gather(generate(b, 5), generate(a, 2))
    assert sent_fine(studio, "flush") == {200: 12}


# ------------------------------------------------------------------ 5. a view's own limits
async def test_a_views_own_limits_are_shared_by_every_view_and_process(
    studio: DrfFaceStudio, drf_redis: RedisServer | str, stores: list[RedisStore]
) -> None:
    a, b = RedisStore(db(drf_redis, 1)), RedisStore(db(drf_redis, 1))
    stores += [a, b]

    async def calls(c: Client, n: int) -> None:
        for _ in range(n):  # a fresh view per call: "1/30s" is 1 per second at this scale
            await c.with_options(limits={"facestudio": "1/30s"}).facestudio.generate(None)

    ca, cb = client(studio, "view-1", a), client(studio, "view-1", b)
    async with ca, cb:
        await asyncio.gather(calls(ca, 2), calls(cb, 2))
    log = studio.read_log()
    assert status_counts(log, account="viewer") == {200: 4}
    assert max_in_window(log, 1.0, account="viewer") == 1


# ------------------------------------------------------------------ 3 processes, slow answers
@pytest.mark.parametrize("stamp_bound", [None, 0.5])
async def test_three_processes_on_one_key_with_slow_answers(
    drf_redis: RedisServer | str, stores: list[RedisStore], stamp_bound: float | None, tmp_path: Path
) -> None:
    accounts = {"slowpro": {"user_class": "Professional", "keys": ["sp-1"]}}
    with DrfFaceStudio(accounts, redis_url=base_url(drf_redis), time_scale=SCALE, latency=(1.0, 2.0)) as fs:
        made = [RedisStore(db(drf_redis, 3)) for _ in range(3)]
        stores += made
        clients = [client(fs, "sp-1", s, limit_stamp_bound=stamp_bound) for s in made]
        async with clients[0], clients[1], clients[2]:
            await asyncio.gather(*(generate(c, 14) for c in clients))
        assert sent_fine(fs, "slowpro", limit=30) == {200: 42}
