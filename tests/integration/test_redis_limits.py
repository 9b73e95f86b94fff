"""The Redis limits store against a real redis-server: the scripts' edge cases, then several
processes sharing one key against the emulator counting a strict sliding window.

Times are short windows on the real clock; bounds say "never early" exactly and "not much later"
generously.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from aioface import ConfigurationError, LimiterTimeoutError, Rate, RedisStore
from aioface.emulator import Emulator, EmulatorConfig, EmulatorProcess
from aioface.limits._rate import key_digest
from aioface.limits.redis._limiter import RedisLimiter
from aioface.testing import RedisServer, redis_server_binary

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    s = RedisStore(redis_url, lease=0.6)
    await s.open()
    yield s
    await s.aclose()


def make(store: RedisStore, key: str, *rates: Rate, **kw: Any) -> RedisLimiter:
    opts: dict[str, Any] = {"margin": 0.01, "adaptive": False, "stamp_bound": None, **kw}
    return store.limiter("test", key, rates, **opts)


def new_key() -> str:
    return uuid.uuid4().hex[:16]


async def grant_times(limiters: list[RedisLimiter], n: int, hold: float = 0.0) -> list[float]:
    """Acquire ``n`` slots round-robin over ``limiters`` at once; seconds from start to each grant."""
    t0 = time.monotonic()
    times: list[float] = []

    async def one(i: int) -> None:
        permit = await limiters[i % len(limiters)].acquire(timeout=10)
        times.append(time.monotonic() - t0)
        if hold:
            await asyncio.sleep(hold)
        permit.responded()

    await asyncio.gather(*(one(i) for i in range(n)))
    return sorted(times)


# ------------------------------------------------------------------ the scripts, one process
async def test_several_windows_at_once_across_limiters(store: RedisStore) -> None:
    key = new_key()
    lims = [make(store, key, Rate(3, 0.2), Rate(5, 0.6), stamp_bound=0.0) for _ in range(2)]
    t = await grant_times(lims, 8)
    assert t[2] < 0.15  # a burst of 3 at once
    assert t[3] >= 0.2 and t[4] >= 0.2  # the short window frees after 0.2 s
    assert t[5] >= 0.6 and t[7] >= 0.6  # the long one (5 per 0.6 s) after 0.6 s
    assert t[7] < 1.5


async def test_slot_held_a_window_after_the_answer(store: RedisStore) -> None:
    key = new_key()
    a, b = make(store, key, Rate(2, 0.3)), make(store, key, Rate(2, 0.3))
    t = await grant_times([a, b], 3, hold=0.2)
    assert t[1] < 0.15 and t[2] >= 0.2 + 0.3  # answered at 0.2, held until 0.5
    assert a.in_flight == b.in_flight == 0


async def test_cooldown_pauses_every_process(store: RedisStore) -> None:
    key = new_key()
    a, b = make(store, key, Rate(100, 1.0)), make(store, key, Rate(100, 1.0))
    a.cooldown(0.4)
    await store.flush()
    t0 = time.monotonic()
    (await b.acquire(timeout=5)).responded()
    assert time.monotonic() - t0 >= 0.35
    assert a.throttled == 1


async def test_adaptive_limit_is_shared(store: RedisStore) -> None:
    key = new_key()
    a, b = (make(store, key, Rate(8, 0.2), adaptive=True) for _ in range(2))
    a.cooldown(0.2)
    a.cooldown(0.2)  # two 429s of one burst: halved once
    await store.flush()
    (await b.acquire(timeout=5)).responded()
    assert b.effective_limits == (4,)
    for _ in range(5):  # successes win the limit back, one step per `limit` answers
        (await b.acquire(timeout=5)).responded()
    await store.flush()
    (await a.acquire(timeout=5)).responded()
    assert a.effective_limits == (5,)


async def test_facts_are_shared_between_processes(store: RedisStore, redis_url: str) -> None:
    key = new_key()
    store.save_meta("test", key, {"tier": "professional"})
    await store.flush()
    other = RedisStore(redis_url)  # another process: reads them at open, and at each grant
    await other.open([("test", key)])
    assert other.load_meta("test", key) == {"tier": "professional"}
    store.save_meta("test", key, {"tier": "enterprise"})
    await store.flush()
    (await make(other, key, Rate(5, 1.0)).acquire(timeout=1)).responded()
    assert other.load_meta("test", key) == {"tier": "enterprise"}
    await other.aclose()


async def test_learned_tier_reaches_the_next_process(redis_url: str, tmp_path: Path) -> None:
    key = f"tier-key-{uuid.uuid4().hex[:8]}"
    cfg = EmulatorConfig(strict=True, keys={key: "professional"}, time_scale=600.0)
    async with Emulator(cfg) as emu:
        async with emu.client(keys={"facestudio": key}, limits_store=redis_url) as first:
            assert first.facestudio.tier == "basic"  # assumed until an answer says
            await first.facestudio.generate(tmp_path / "a", age=30)
            assert first.facestudio.tier == "professional"
        async with emu.client(keys={"facestudio": key}, limits_store=redis_url) as second:
            assert second.limiter("facestudio").rates[0].limit == 30  # Professional before any answer
            assert second.facestudio.tier == "professional"


async def test_a_probe_never_goes_over_the_windows_and_is_alone_in_flight(store: RedisStore) -> None:
    # Issue 21 (2, 3): unconfirmed rates never send over the windows, and one request at a time.
    key = new_key()
    lim = make(store, key, Rate(1, 0.5))
    (await lim.acquire(timeout=1)).responded()
    await store.flush()
    lim.probe_first()
    with pytest.raises(LimiterTimeoutError):
        await lim.acquire(timeout=0.2)  # the window is full: no probe through it
    other = make(store, key, Rate(5, 0.5), stamp_bound=0.0)  # another process, the same key
    other.probe_first()
    probe = await other.acquire(timeout=1)  # once the window has room
    assert other.in_flight == 1  # held in flight until its answer, stamp bound or not
    with pytest.raises(LimiterTimeoutError):
        await other.acquire(timeout=0.2)  # one in flight, its answer not yet in
    probe.responded()
    await store.flush()
    other.set_rates([Rate(5, 0.5)])  # the answer named the rates
    for _ in range(3):
        await other.acquire(timeout=1)


async def test_a_probe_takes_the_rates_another_process_confirmed_instead_of_waiting(store: RedisStore) -> None:
    # A process probing while another (confirmed) has requests in flight is told the shared facts:
    # a confirmation ends its probing at once, instead of a wait for every answer in flight.
    key = new_key()
    busy = make(store, key, Rate(30, 5.0))
    await busy.acquire(timeout=1)  # in flight, its answer slow to come
    store.save_meta("test", key, {"tier": "pro", "confirmed": f"{time.time():.3f}"})
    await store.flush()
    other = RedisStore(store.url, lease=0.6)  # another process
    waiting = make(other, key, Rate(30, 5.0))
    waiting.probe_first()
    with pytest.raises(LimiterTimeoutError):
        await waiting.acquire(timeout=0.3)  # no one to tell: it waits for the answer in flight
    told: list[dict[str, str]] = []
    newer = make(other, key, Rate(30, 5.0))
    def adopt(facts: Mapping[str, str]) -> None:  # what a namespace does with another process's confirmation
        told.append(dict(facts))
        newer.set_rates([Rate(30, 5.0)])

    newer.probe_first(adopt)
    await newer.acquire(timeout=1)
    assert told and told[0]["tier"] == "pro"
    await other.aclose()


async def test_a_long_wait_is_reported_with_the_window_holding_it(store: RedisStore) -> None:
    key = new_key()
    lim = make(store, key, Rate(5, 0.2), Rate(1, 0.5), stamp_bound=0.0)
    await lim.acquire(timeout=1)
    told: list[tuple[float, Rate | None]] = []
    await lim.acquire(timeout=2, on_wait=lambda s, r: told.append((s, r)), notice=0.1)
    assert len(told) == 1 and told[0][1] == Rate(1, 0.5) and 0.3 < told[0][0] <= 0.52


async def test_tier_switch_counts_history_already_spent(store: RedisStore) -> None:
    key = new_key()
    a = make(store, key, Rate(2, 2.0), stamp_bound=0.0)
    b = make(store, key, Rate(5, 2.0), stamp_bound=0.0)
    for _ in range(2):
        await a.acquire(timeout=1)
    with pytest.raises(LimiterTimeoutError):
        await a.acquire(timeout=0.05)
    (await b.acquire(timeout=1)).responded()  # the other tier sees the two already spent: 3 of 5
    a.set_rates([Rate(5, 2.0)])  # learned a bigger tier
    await a.acquire(timeout=1)
    await a.acquire(timeout=1)
    with pytest.raises(LimiterTimeoutError):
        await b.acquire(timeout=0.05)
    a.set_rates([Rate(2, 2.0)])  # and back: five spent still count
    with pytest.raises(LimiterTimeoutError):
        await a.acquire(timeout=0.05)


async def test_a_waiter_that_times_out_takes_nothing(store: RedisStore) -> None:
    key = new_key()
    a, b, c = (make(store, key, Rate(1, 0.3), stamp_bound=0.0) for _ in range(3))
    await a.acquire(timeout=1)
    with pytest.raises(LimiterTimeoutError, match="shared in Redis"):
        await b.acquire(timeout=0.05)
    await store.flush()
    t0 = time.monotonic()
    await c.acquire(timeout=2)  # b left the queue: c is next
    assert time.monotonic() - t0 < 0.6
    r = store.client()
    assert await r.zcard(store.keys("test", key)["q"]) == 0


async def test_no_process_starves(store: RedisStore) -> None:
    """A process with one request gets a slot within two turns, not after another's 30 queued."""
    key = new_key()
    busy, quiet = make(store, key, Rate(2, 0.1), stamp_bound=0.0), make(store, key, Rate(2, 0.1), stamp_bound=0.0)
    crowd = [asyncio.ensure_future(busy.acquire(timeout=10)) for _ in range(30)]
    await asyncio.sleep(0.05)
    t0 = time.monotonic()
    await quiet.acquire(timeout=10)
    waited = time.monotonic() - t0
    done = sum(f.done() for f in crowd)
    for f in crowd:
        f.cancel()
    await asyncio.gather(*crowd, return_exceptions=True)
    assert done <= 8, done  # served after a few of the crowd, not after all 30
    assert waited < 0.5


HOLDER = """
import asyncio, sys
from aioface import Rate, RedisStore

async def main(url, key, lease, period):
    s = RedisStore(url, lease=lease)
    lim = s.limiter("test", key, [Rate(2, period)], margin=0.01, adaptive=False, stamp_bound=None)
    await lim.acquire()
    await lim.acquire()
    print("held", flush=True)
    await asyncio.sleep(60)

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])))
"""


async def test_killed_process_slots_come_back_within_lease_plus_window(redis_url: str) -> None:
    key = new_key()
    lease, period = 0.5, 0.3
    args = [redis_url, key, str(lease), str(period)]
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", HOLDER, *args, stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert child.stdout is not None
        assert (await asyncio.wait_for(child.stdout.readline(), 20)).strip() == b"held"
        await asyncio.sleep(0.5)  # renewed in the meantime: alive, still in flight
        s = RedisStore(redis_url, lease=lease)
        lim = make(s, key, Rate(2, period))
        with pytest.raises(LimiterTimeoutError):
            await lim.acquire(timeout=0.2)
        child.send_signal(signal.SIGKILL)
        await child.wait()
        t0 = time.monotonic()
        (await lim.acquire(timeout=5)).responded()
        waited = time.monotonic() - t0
        await s.aclose()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    # The last renewal came at most lease/3 before the kill; the lease ends a lease later, its
    # stamp a window after that.
    assert lease + period - lease / 3 - 0.05 <= waited <= lease + period + 0.5, waited


async def test_keys_hashed_namespaced_and_expiring(redis_url: str, tmp_path: Path) -> None:
    secret = f"sk-live-{uuid.uuid4().hex}"
    async with Emulator(EmulatorConfig(time_scale=600.0)) as emu:
        async with emu.client(facestudio_key=secret, env={"AIOFACE_LIMITS_STORE": redis_url}) as client:
            assert isinstance(client.limiter("facestudio"), RedisLimiter)
            for i in range(3):
                await client.facestudio.generate(tmp_path / str(i), age=30)
    s = RedisStore(redis_url)
    r = s.client()
    names = [k async for k in r.scan_iter(match=f"aioface:*{key_digest(secret)}*")]
    assert {n.rsplit(":", 1)[1] for n in names} >= {"s", "h", "m"}  # stamps, state, shared facts
    for name in names:
        assert name.startswith("aioface:{facestudio:") and secret not in name
        assert await r.pttl(name) > 0
        kind = await r.type(name)
        content = await (r.zrange(name, 0, -1) if kind == "zset" else r.hgetall(name))
        assert secret not in repr(content)
    await s.aclose()


async def test_unreachable_at_start_names_the_url_without_password() -> None:
    from aioface._net import free_port

    port = free_port()
    client_kw: dict[str, Any] = {"env": {}, "persist_limits": False}
    from aioface import Client

    client = Client(limits_store=f"redis://app:hunter2@127.0.0.1:{port}/3", **client_kw)
    with pytest.raises(ConfigurationError) as info:
        await client.open()
    assert f"redis://127.0.0.1:{port}/3" in str(info.value) and "hunter2" not in str(info.value)
    with pytest.raises(ConfigurationError, match="limits store"):
        Client(limits_store="memcached://x", **client_kw)
    with pytest.raises(ConfigurationError, match="port is not a number") as bad:
        Client(limits_store="redis://app:hunter2@127.0.0.1:63x9/0", **client_kw)
    assert "hunter2" not in str(bad.value)


@pytest.mark.skipif(redis_server_binary() is None, reason="needs a redis-server binary to stop")
async def test_redis_lost_mid_run_fails_closed(tmp_path: Path) -> None:
    cfg = EmulatorConfig(strict=True, keys={"lost-key": "professional"}, time_scale=60.0)
    with RedisServer() as server:
        server.mark_live()  # a used store: its first grant costs no grace (issue 21), the 1.2 s are for sending
        store = RedisStore(server.url, lease=1.0, give_up_after=1.0, connect_timeout=0.5, socket_timeout=1.0)
        async with Emulator(cfg) as emu:
            client = emu.client(keys={"facestudio": "lost-key"}, limits_store=store, acquire_timeout=3.0)
            async with client:

                async def killer() -> None:
                    await asyncio.sleep(1.2)
                    server.stop()

                kill = asyncio.ensure_future(killer())
                t0 = time.monotonic()
                outcomes = await client.map(
                    lambda i: client.facestudio.generate(tmp_path / str(i), age=30, resolution=128),
                    range(120),
                    concurrency=120,
                )
                elapsed = time.monotonic() - t0
                await kill
                sent = client.stats("facestudio")["requests"]
            await store.aclose()
            ok = [o for o in outcomes if o.ok]
            failed = [o.error for o in outcomes if not o.ok]
            assert 30 <= len(ok) < 120 and failed
            assert all(isinstance(e, LimiterTimeoutError) for e in failed), failed[:3]
            assert all(server.url in str(e) for e in failed)
            assert emu.stats["facestudio_requests"] == sent == len(ok)  # nothing sent without a slot
            assert emu.stats["throttled"] == 0
            assert elapsed < 8.0


@pytest.mark.skipif(redis_server_binary() is None, reason="needs a redis-server binary to restart")
async def test_redis_restarted_empty_mid_window_still_nothing_over_the_limit() -> None:
    """The state is lost; each process puts back its own stamps (and holds grants for a grace)."""
    key, period = new_key(), 1.5
    server = RedisServer()
    try:
        a_store = RedisStore(server.url, lease=0.6, connect_timeout=0.5)
        b_store = RedisStore(server.url, lease=0.6, connect_timeout=0.5)
        a, b = make(a_store, key, Rate(3, period)), make(b_store, key, Rate(3, period))
        t0 = time.monotonic()
        for lim in (a, a, b):
            (await lim.acquire(timeout=1)).responded()
        await a_store.flush()
        await b_store.flush()
        server.stop()
        server = RedisServer(port=server.port)  # empty
        restarted = time.monotonic() - t0
        late = [restarted + x for x in await grant_times([a, b], 2)]
        await a_store.aclose()
        await b_store.aclose()
    finally:
        server.stop()
    assert min(late) >= period  # both wait for the window the lost stamps still fill


# ----------------------------------------------------- several processes, one key, a strict server
KEYS = ("k-redis", "k-local", "k-clock", "k-kill")
N_PROC, N_REQ, RATE = 4, 40, 30  # Face Studio Professional: 30 a "minute" of 1 s (time scale 60)


@pytest.fixture(scope="module")
def strict_server() -> Iterator[EmulatorProcess]:
    args = ["--time-scale", "60", "--strict", *(f"--key={k}=professional" for k in KEYS)]
    with EmulatorProcess(*args) as emu:
        yield emu


def faketime_library() -> str | None:
    """libfaketime.so from the libfaketime wheel (dev extra) or Debian's faketime package."""
    try:
        import libfaketime
    except ImportError:
        libfaketime = None
    candidates = [Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")]
    if libfaketime is not None:
        candidates.insert(0, Path(libfaketime.__file__).parent / "vendor/libfaketime/src/libfaketime.so.1")
    return next((str(c) for c in candidates if c.is_file()), None)


def run_workers(
    emu: EmulatorProcess,
    key: str,
    store: str,
    *,
    extra: list[str] | None = None,
    envs: list[dict[str, str]] | None = None,
    kill_first_after: float | None = None,
) -> list[dict[str, Any] | None]:
    """Start N_PROC workers, let them go at once, return their reports (None: killed)."""
    procs = []
    for i in range(N_PROC):
        env = {**os.environ, **(envs[i] if envs else {})}
        cmd = [sys.executable, "-m", "tests.support.limits_worker", "--url", emu.url, "--key", key, "--store", store]
        procs.append(
            subprocess.Popen(
                [*cmd, "-n", str(N_REQ), *(extra or [])],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=ROOT,
                env=env,
                text=True,
            )
        )
    try:
        for p in procs:
            assert p.stdout is not None and p.stdin is not None
            ready, _, _ = select.select([p.stdout], [], [], 20)
            assert ready and p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        if kill_first_after is not None:
            time.sleep(kill_first_after)
            procs[0].send_signal(signal.SIGKILL)
        reports: list[dict[str, Any] | None] = []
        for p in procs:
            out, _ = p.communicate(timeout=40)
            reports.append(json.loads(out.splitlines()[-1]) if p.returncode == 0 else None)
        return reports
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)


def throttled(emu: EmulatorProcess) -> int:
    return int(emu.stats().get("throttled", 0))


def check_exact(reports: list[dict[str, Any] | None], expect: int, max_gap: float = 1.5) -> dict[str, float]:
    """All done, no 429; the span (first to last send, all processes) near the ideal; fair shares."""
    done = [r for r in reports if r is not None]
    assert sum(r["ok"] for r in done) == expect, [r["errors"][:2] for r in done]
    assert all(r["throttled"] == 0 for r in done)
    sends = sorted(s for r in done for s in r["sends"])
    span = sends[-1] - sends[0]
    ideal = (-(-len(sends) // RATE) - 1) * 1.0
    gaps = []
    for r in done:  # no process starves: it starts in the first window and gets a slot in every one after
        assert r["sends"][0] - sends[0] < 1.2
        gaps.append(max(b - a for a, b in zip(r["sends"], r["sends"][1:], strict=False)))
    assert max(gaps) < max_gap, gaps
    waits = sorted(w for r in done for w in r["waits"])
    per_process = [round(max(r["waits"]), 2) for r in done]
    return {
        "span": round(span, 3),
        "ideal": ideal,
        "ratio": round(span / ideal, 3),
        "wait_p50": round(waits[len(waits) // 2], 3),
        "wait_max_per_process": per_process,
        "max_gap_per_process": [round(g, 2) for g in gaps],
    }


@pytest.mark.slow
def test_four_processes_one_key_zero_429s_at_full_rate(strict_server: EmulatorProcess, redis_url: str) -> None:
    before = throttled(strict_server)
    reports = run_workers(strict_server, "k-redis", redis_url)
    assert throttled(strict_server) == before  # the server refused nothing
    figures = check_exact(reports, N_PROC * N_REQ)
    print("redis store, 4 processes x 40:", figures)
    assert figures["ratio"] <= 1.15  # typically 1.02-1.09: a window + margin + the answers' latency per cycle


@pytest.mark.slow
def test_four_processes_with_local_limiters_overspend(strict_server: EmulatorProcess) -> None:
    before = throttled(strict_server)
    run_workers(strict_server, "k-local", "local")
    refused = throttled(strict_server) - before
    print("local store, 4 processes x 40: 429s =", refused)
    assert refused >= 30  # each process spends the whole window on its own


@pytest.mark.slow
@pytest.mark.skipif(faketime_library() is None, reason="libfaketime not found (dev extra or apt faketime)")
def test_clocks_half_a_second_apart_still_zero_429s(strict_server: EmulatorProcess, redis_url: str) -> None:
    lib = faketime_library()
    assert lib is not None
    envs = [{"LD_PRELOAD": lib, "FAKETIME": off, "DONT_FAKE_MONOTONIC": "1"} for off in ("-0.25", "+0.25") * 2]
    # Under a loaded box the preload has (2 of ~60 CI runs) left a process on the true clock; such a
    # run proves nothing about skewed clocks, so it is run again once (every run's 429s still count).
    for _ in range(2):
        before = throttled(strict_server)
        reports = run_workers(strict_server, "k-clock", redis_url, envs=envs)
        assert throttled(strict_server) == before
        skew = [r["wall_minus_monotonic"] for r in reports if r is not None]
        if max(skew) - min(skew) > 0.4:
            break
    assert max(skew) - min(skew) > 0.4, skew  # the processes' wall clocks really were apart
    # Under the preload a process has (rarely: 3 of ~45 runs) gone one window without a slot;
    # never seen without it. Still bounded: at most one window missed.
    figures = check_exact(reports, N_PROC * N_REQ, max_gap=2.2)
    print("redis store, clocks 0.5 s apart:", figures)
    assert figures["ratio"] <= 1.15  # typically 1.02-1.09: a window + margin + the answers' latency per cycle


@pytest.mark.slow
def test_sigkill_one_process_the_others_finish(strict_server: EmulatorProcess, redis_url: str) -> None:
    before = throttled(strict_server)
    reports = run_workers(strict_server, "k-kill", redis_url, extra=["--lease", "1.0"], kill_first_after=0.5)
    # 40 requests need two windows: killed at 0.5 s, the first process is surely mid-run.
    assert reports[0] is None and all(r is not None for r in reports[1:]), reports
    assert throttled(strict_server) == before
    done = [r for r in reports if r is not None]
    assert sum(r["ok"] for r in done) == 3 * N_REQ


def test_cli_limits_store_option(redis_url: str, tmp_path: Path) -> None:
    from aioface._net import free_port
    from tests.support.cli import EmulatorProcess as CliEmulator

    with CliEmulator("--time-scale", "600") as emu:
        env = emu.env(tmp_path)
        cmd = [sys.executable, "-m", "aioface", "generate", "-n", "3", "--out", str(tmp_path / "out")]
        dead = f"redis://:pw-secret@127.0.0.1:{free_port()}/0"
        r = subprocess.run([*cmd, "--limits-store", dead], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "cannot reach the limits store at redis://127.0.0.1:" in r.stderr
        assert "pw-secret" not in r.stdout + r.stderr
        r = subprocess.run([*cmd, "--limits-store", redis_url], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "3 ok, 0 failed" in r.stdout, r.stderr


# ------------------------------------------------------------------ audit regressions (issue 15)
async def test_cancelled_during_the_script_leaves_no_ticket(redis_url: str) -> None:
    """Cancelled while its first acquire script is in flight: the place it took in the queue goes too."""
    key = new_key()
    stores = [RedisStore(redis_url, lease=3.0) for _ in range(3)]
    a, b, c = (make(s, key, Rate(1, 0.2), stamp_bound=0.0) for s in stores)
    await a.acquire(timeout=1)
    real = stores[1].run

    async def slow(*args: Any, **kw: Any) -> Any:  # the reply arrives 50 ms after the script ran
        r = await real(*args, **kw)
        await asyncio.sleep(0.05)
        return r

    stores[1].run = slow  # type: ignore[method-assign]
    t = asyncio.ensure_future(b.acquire(timeout=5))
    await asyncio.sleep(0.02)
    t.cancel()
    await asyncio.gather(t, return_exceptions=True)
    await asyncio.sleep(0.1)
    await stores[1].flush()
    assert await stores[2].client().zcard(stores[2].keys("test", key)["q"]) == 0
    t0 = time.monotonic()
    await c.acquire(timeout=5)
    assert time.monotonic() - t0 < 0.5  # not the lease (3 s) a stale ticket would cost
    for s in stores:
        await s.aclose()


@pytest.mark.skipif(redis_server_binary() is None, reason="needs a redis-server binary to stop")
async def test_hung_redis_acquire_keeps_its_timeout() -> None:
    with RedisServer() as server:
        server.mark_live()  # a used store: the first grant costs no grace
        s = RedisStore(server.url)  # socket timeout 5 s, give_up_after 10 s
        lim = make(s, new_key(), Rate(5, 1.0))
        (await lim.acquire(timeout=1)).responded()
        await s.flush()
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            with pytest.raises(LimiterTimeoutError, match="unreachable"):
                await lim.acquire(timeout=0.5)
            assert time.monotonic() - t0 < 1.5
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        await s.aclose()


def test_unknown_store_never_echoes_the_value() -> None:
    from aioface import Client

    with pytest.raises(ConfigurationError) as info:
        Client(limits_store="default:s3cret@redis.internal:6379", env={}, persist_limits=False)
    assert "s3cret" not in str(info.value)


async def test_a_long_cooldown_outlives_the_idle_expiry(store: RedisStore) -> None:
    key = new_key()
    lim = make(store, key, Rate(5, 0.1))
    lim.cooldown(600.0)  # a Retry-After far longer than window + lease + 60 s
    await store.flush()
    assert await store.client().pttl(store.keys("test", key)["h"]) > 600_000


async def test_renewal_keeps_the_leases_key_alive(store: RedisStore) -> None:
    key = new_key()
    lim = make(store, key, Rate(1, 0.1))  # lease 0.6 s: renewed every 0.2 s
    permit = await lim.acquire(timeout=1)
    r, name = store.client(), store.keys("test", key)["l"]
    await r.pexpire(name, 300)  # as if the idle expiry came while the request is still in flight
    await asyncio.sleep(0.6)
    assert await r.exists(name) == 1
    permit.responded()


async def test_a_day_budget_is_shared_by_stores_of_separate_processes(redis_url: str) -> None:
    """Two stores (two connections, as two processes or hosts would have): a fast window and a day
    budget of 5; together they get 5 grants, the sixth waits for tomorrow (here: times out)."""
    key = new_key()
    stores = [RedisStore(redis_url, lease=0.6) for _ in range(2)]
    for s in stores:
        await s.open()
    try:
        lims = [make(s, key, Rate(100, 1.0), Rate(5, 86400.0), stamp_bound=0.0) for s in stores]
        granted = 0
        for i in range(5):
            permit = await lims[i % 2].acquire(timeout=1.0)
            permit.release()
            granted += 1
        for lim in lims:
            with pytest.raises(LimiterTimeoutError):
                await lim.acquire(timeout=0.3)
        assert granted == 5
    finally:
        for s in stores:
            await s.aclose()


async def test_aclose_stops_the_lease_renewal_even_when_the_client_turns_its_cancel_into_an_error(
    redis_url: str,
) -> None:
    """Seen in CI: the heartbeat was cancelled mid-renewal, the Redis client raised a connection error
    instead of the cancellation, the loop logged it and went on renewing, and aclose() waited forever."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    s = RedisStore(redis_url, lease=0.3)
    await s.open()
    lim = make(s, new_key(), Rate(1, 0.1))
    await lim.acquire(timeout=1)  # in flight, never answered: the heartbeat keeps renewing its lease
    real = s.run
    renewing = asyncio.Event()

    async def swallowing(script: str, keys: Any, args: Any) -> Any:
        if script != "renew":
            return await real(script, keys, args)
        renewing.set()
        try:
            await asyncio.sleep(5)  # a reply slow to come
        except asyncio.CancelledError:
            raise RedisConnectionError("Connection closed by server.") from None
        return await real(script, keys, args)

    s.run = swallowing  # type: ignore[method-assign]
    await asyncio.wait_for(renewing.wait(), 2)
    heartbeat = s._heartbeat
    assert heartbeat is not None
    t0 = time.monotonic()
    closing = asyncio.ensure_future(s.aclose())  # a task of its own: a close that hangs fails, not hangs, the test
    await asyncio.wait({closing}, timeout=4)
    if not closing.done():  # let a stuck loop end (nothing left to renew), so the failure is reported
        s._limiters.clear()
        s.run = real  # type: ignore[method-assign]
        await asyncio.wait({closing}, timeout=2)
        pytest.fail("aclose() waited for a heartbeat that swallowed its cancellation")
    await asyncio.sleep(0.3)  # a loop that swallowed its cancel would be asleep or renewing again by now
    assert heartbeat.done() and time.monotonic() - t0 < 1.5
    assert s._redis is None  # and no renewal reopened a connection after close
