"""1. Client overhead: N Face Studio generations saved to disk, aioface vs bare aiohttp, httpx, requests.

Every variant does the same GETs against one emulator process and writes each image to its own file.
Reported: requests per second and the ratio to bare aiohttp measured in the same run (goal >= 0.9).

    python benchmarks/bench_overhead.py [--quick] [-n 600] [-c 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
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
    a = ap.parse_args()
    n, rounds = (60, 1) if a.quick else (a.n, a.rounds)
    variants = {
        "bare aiohttp": lambda u, o: asyncio.run(run_aiohttp(u, n, a.c, o)),
        "aioface": lambda u, o: asyncio.run(run_aioface(u, n, a.c, o)),
        "httpx.AsyncClient": lambda u, o: asyncio.run(run_httpx(u, n, a.c, o)),
        "requests + threads": lambda u, o: run_requests(u, n, a.c, o),
    }
    best: dict[str, float] = {}
    with ChildEmulator("--key", f"{KEY}=enterprise", "--time-scale", "1000000", "--latency", str(a.latency)) as emu:
        for _ in range(rounds):
            for name, fn in variants.items():  # interleaved rounds, best of each: noise hits all alike
                out = Path(tempfile.mkdtemp(prefix="aioface-bench-", dir=a.dir))
                t = time.perf_counter()
                fn(emu.url, out)
                dt = time.perf_counter() - t
                assert len(os.listdir(out)) == n
                shutil.rmtree(out)
                best[name] = min(best.get(name, float("inf")), dt)
        throttled = emu.stats().get("throttled", 0)
    base = n / best["bare aiohttp"]
    rows = [
        {"client": k, "seconds": v, "req_per_s": n / v, "ratio_vs_aiohttp": (n / v) / base} for k, v in best.items()
    ]
    report(
        "client overhead",
        rows,
        ["client", "seconds", "req_per_s", "ratio_vs_aiohttp"],
        {"n": n, "concurrency": a.c, "rounds": rounds, "latency": a.latency, "emulator_429s": throttled},
    )


if __name__ == "__main__":
    main()
