"""2. Limiter: achieved/configured rate and 429s, aioface vs aiolimiter alone vs pyrate-limiter.

The emulator enforces Face Studio's Professional tier (30/minute, 1000/day) with a minute lasting one
second (--time-scale 60), counting as Django REST framework does. Each client sends N requests at
concurrency C through its limiter set to the same 30 per second; a 429 is retried after its hint.
Also: the cost of one acquire/release on a limiter that never waits.

    python benchmarks/bench_limiter.py [--quick] [-n 150] [-c 16]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from _common import ChildEmulator, report

RATE = 30
PERIOD = 1.0  # seconds in a "minute": 60 / --time-scale, set in main()


async def bare_loop(url: str, key: str, n: int, c: int, acquire: Callable[[], Awaitable[object]]) -> int:
    """Requests through a third-party limiter; returns 429s received."""
    sem = asyncio.Semaphore(c)
    throttled = 0
    async with aiohttp.ClientSession() as s:

        async def one(i: int) -> None:
            nonlocal throttled
            async with sem:
                while True:
                    await acquire()
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

        await asyncio.gather(*(one(i) for i in range(n)))
    return throttled


async def run_aioface(url: str, key: str, n: int, c: int, stamp_bound: float | None = None) -> int:
    import aioface

    out = Path(tempfile.mkdtemp())
    async with aioface.Client(
        facestudio_key=key,
        facestudio_base_url=url,
        limits={"facestudio": f"{RATE}/{PERIOD}s"},
        persist_limits=False,
        env={},
        limit_margin=0.01,
        limit_stamp_bound=stamp_bound,
    ) as client:
        res = await client.map(
            lambda i: client.facestudio.generate(out / str(i), age=30, seed=7, resolution=128), range(n), concurrency=c
        )
        assert all(o.ok for o in res), [o.error for o in res if not o.ok][:3]
        return client.stats("facestudio")["throttled"]


async def run_aiolimiter(url: str, key: str, n: int, c: int) -> int:
    from aiolimiter import AsyncLimiter

    lim = AsyncLimiter(RATE, PERIOD)
    return await bare_loop(url, key, n, c, lim.acquire)


async def run_pyrate(url: str, key: str, n: int, c: int) -> int:
    from pyrate_limiter import Duration, Limiter, Rate

    lim = Limiter(Rate(RATE, int(Duration.SECOND * PERIOD)))

    async def acquire() -> None:
        await lim.try_acquire_async("k")

    return await bare_loop(url, key, n, c, acquire)


async def acquire_overhead(calls: int) -> dict[str, float]:
    from aiolimiter import AsyncLimiter
    from pyrate_limiter import Duration, Limiter, Rate

    import aioface

    lim = aioface.RateLimiter([aioface.Rate(10**9, 1.0), aioface.Rate(10**9, 86400.0)])
    t = time.perf_counter()
    for _ in range(calls):
        (await lim.acquire()).responded()
    ours = (time.perf_counter() - t) / calls * 1e6
    al = AsyncLimiter(10**9, 1.0)
    t = time.perf_counter()
    for _ in range(calls):
        await al.acquire()
    theirs = (time.perf_counter() - t) / calls * 1e6
    pl = Limiter([Rate(10**8, Duration.SECOND), Rate(10**9, Duration.DAY)])
    t = time.perf_counter()
    for _ in range(calls):
        await pl.try_acquire_async("k")
    pyrate = (time.perf_counter() - t) / calls * 1e6
    return {"aioface_us": ours, "aiolimiter_us": theirs, "pyrate_limiter_us": pyrate}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=150)
    ap.add_argument("-c", type=int, default=16)
    ap.add_argument("--jitter", type=float, default=0.04, help="emulator latency jitter (s), on top of 10 ms")
    ap.add_argument("--time-scale", type=float, default=60.0, help="60: a minute lasts 1 s; 6: it lasts 10 s")
    a = ap.parse_args()
    n = 45 if a.quick else a.n

    async def bounded(url: str, key: str, n: int, c: int) -> int:
        return await run_aioface(url, key, n, c, stamp_bound=0.05)

    variants = {
        "aioface": run_aioface,
        "aioface stamp_bound=0.05": bounded,
        "aiolimiter": run_aiolimiter,
        "pyrate-limiter": run_pyrate,
    }
    rows = []
    keys = [f"--key=k{i}=professional" for i in range(len(variants))]
    global PERIOD
    PERIOD = 60.0 / a.time_scale
    with ChildEmulator(
        "--time-scale", str(a.time_scale), "--latency", "0.01", "--latency-jitter", str(a.jitter), *keys
    ) as emu:
        for i, (name, fn) in enumerate(variants.items()):
            before = emu.stats().get("throttled", 0)
            t = time.perf_counter()
            client_429 = asyncio.run(fn(emu.url, f"k{i}", n, a.c))
            dt = time.perf_counter() - t
            server_429 = emu.stats().get("throttled", 0) - before
            # The best any client can do: N requests at RATE per PERIOD (the first RATE go at once).
            ideal = (math.ceil(n / RATE) - 1) * PERIOD
            rows.append(
                {
                    "limiter": name,
                    "seconds": dt,
                    "achieved_per_s": (n - RATE) / dt if dt else 0.0,
                    "ratio_to_ideal": ideal / dt if dt else 0.0,
                    "429s": server_429,
                    "client_saw_429": client_429,
                }
            )
    over = asyncio.run(acquire_overhead(20_000 if a.quick else 200_000))
    report(
        "limiter",
        rows,
        ["limiter", "seconds", "achieved_per_s", "ratio_to_ideal", "429s"],
        {"n": n, "concurrency": a.c, "configured": f"{RATE}/{PERIOD}s", "acquire_overhead": over},
    )
    print("acquire+release per call (us): " + ", ".join(f"{k[:-3]} {v:.2f}" for k, v in over.items()))


if __name__ == "__main__":
    main()
