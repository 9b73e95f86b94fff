"""1. Client overhead: N Face Studio generations saved to disk, aioface vs bare aiohttp, httpx, requests.

Every variant does the same GETs against one emulator process and writes each image to its own file.
The client runs pinned to one core and the emulator to the other (where there are two), so the
client's own CPU time per request is measured apart from the server's. Reported, best of the
interleaved rounds: CPU microseconds per request and requests per second, each as a ratio to bare
aiohttp measured in the same run (goals: CPU within 1.15x; throughput >= 0.9x on disk, 0.75x tmpfs).

    python benchmarks/bench_overhead.py [--quick] [-n 800] [-c 32] [--rounds 20] [--dir /dev/shm]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
from _common import KEY, ChildEmulator, report

PARAMS = {"age": "30", "seed": "7", "resolution": "256"}


async def run_aioface(url: str, n: int, c: int, out: Path) -> None:
    import aioface

    async with aioface.Client(
        facestudio_key=KEY,
        facestudio_base_url=url,
        limits={"facestudio": "1000000/s"},
        persist_limits=False,
        env={},
        connections=c,
    ) as client:
        outcomes = await client.map(
            lambda i: client.facestudio.generate(out / f"a{i}", age=30, seed=7, resolution=256),
            range(n),
            concurrency=c,
        )
    bad = [o.error for o in outcomes if not o.ok]
    assert not bad, bad[:3]


async def run_aiohttp(url: str, n: int, c: int, out: Path) -> None:
    sem = asyncio.Semaphore(c)
    headers = {"Authorization": f"Token {KEY}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)) as s:

        async def one(i: int) -> None:
            async with sem, s.get(url + "/v1/generate", params=PARAMS, headers=headers) as r:
                assert r.status == 200, r.status
                with open(out / f"b{i}.jpg", "wb") as f:  # noqa: ASYNC230 - same as aioface does
                    async for chunk in r.content.iter_chunked(1 << 16):
                        f.write(chunk)

        await asyncio.gather(*(one(i) for i in range(n)))


async def run_httpx(url: str, n: int, c: int, out: Path) -> None:
    import httpx

    sem = asyncio.Semaphore(c)
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    async with httpx.AsyncClient(limits=limits, headers={"Authorization": f"Token {KEY}"}) as s:

        async def one(i: int) -> None:
            async with sem, s.stream("GET", url + "/v1/generate", params=PARAMS) as r:
                assert r.status_code == 200
                with open(out / f"h{i}.jpg", "wb") as f:  # noqa: ASYNC230
                    async for chunk in r.aiter_bytes(1 << 16):
                        f.write(chunk)

        await asyncio.gather(*(one(i) for i in range(n)))


def run_requests(url: str, n: int, c: int, out: Path) -> None:
    import requests

    local = __import__("threading").local()

    def one(i: int) -> None:
        s = getattr(local, "s", None) or requests.Session()
        local.s = s
        r = s.get(url + "/v1/generate", params=PARAMS, headers={"Authorization": f"Token {KEY}"})
        assert r.status_code == 200
        with open(out / f"r{i}.jpg", "wb") as f:
            f.write(r.content)

    with ThreadPoolExecutor(c) as pool:
        list(pool.map(one, range(n)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=600)
    ap.add_argument("-c", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where to write the images (default: the temp dir)")
    ap.add_argument("--latency", type=float, default=0.0, help="seconds the emulator adds to each answer")
    ap.add_argument("--only", nargs="*", help="variants besides bare aiohttp (default: all)")
    a = ap.parse_args()
    n, rounds = (60, 1) if a.quick else (a.n, a.rounds)
    variants: dict[str, Callable[[str, Path], None]] = {
        "bare aiohttp": lambda u, o: asyncio.run(run_aiohttp(u, n, a.c, o)),
        "aioface": lambda u, o: asyncio.run(run_aioface(u, n, a.c, o)),
        "httpx.AsyncClient": lambda u, o: asyncio.run(run_httpx(u, n, a.c, o)),
        "requests + threads": lambda u, o: run_requests(u, n, a.c, o),
    }
    if a.only:
        variants = {k: v for k, v in variants.items() if k in ("bare aiohttp", *a.only)}
    best: dict[str, float] = {}
    cpu: dict[str, list[float]] = {}
    pinned = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
    with ChildEmulator("--key", f"{KEY}=enterprise", "--time-scale", "1000000", "--latency", str(a.latency)) as emu:
        if pinned:
            os.sched_setaffinity(emu.proc.pid, {1})
            os.sched_setaffinity(0, {0})
        for _ in range(rounds):
            for name, fn in variants.items():  # interleaved rounds: noise hits all alike
                out = Path(tempfile.mkdtemp(prefix="aioface-bench-", dir=a.dir))
                t, c0 = time.perf_counter(), time.process_time()
                fn(emu.url, out)
                dt, dc = time.perf_counter() - t, time.process_time() - c0
                assert len(os.listdir(out)) == n
                shutil.rmtree(out)
                best[name] = min(best.get(name, float("inf")), dt)
                cpu.setdefault(name, []).append(dc / n * 1e6)
        throttled = emu.stats().get("throttled", 0)
    base = n / best["bare aiohttp"]
    base_cpu = statistics.median(cpu["bare aiohttp"])
    rows = [
        {
            "client": k,
            "cpu_us_per_req": statistics.median(cpu[k]),
            "cpu_ratio": statistics.median(cpu[k]) / base_cpu,
            "req_per_s": n / v,
            "throughput_ratio": (n / v) / base,
        }
        for k, v in best.items()
    ]
    report(
        "client overhead",
        rows,
        ["client", "cpu_us_per_req", "cpu_ratio", "req_per_s", "throughput_ratio"],
        {
            "n": n,
            "concurrency": a.c,
            "rounds": rounds,
            "latency": a.latency,
            "dir": a.dir or tempfile.gettempdir(),
            "pinned": pinned,
            "emulator_429s": throttled,
        },
    )


if __name__ == "__main__":
    main()
