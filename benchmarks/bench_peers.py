"""7. Against the peers: Ace change-age (the library's JSON path, nothing downloaded), aioface vs bare
aiohttp vs the official ``acedatacloud`` SDK (httpx inside), against one emulator process.

Every variant sends the same N POSTs at the same concurrency and checks every answer carries an image
URL. The client runs pinned to one core and the emulator to the other (where there are two).
Reported, best of interleaved rounds: requests per second and CPU microseconds per request, each as a
ratio to bare aiohttp measured in the same run (issue goals: aioface >= 0.9x bare's throughput at
<= 1.2x its CPU; >= 5x the SDK's throughput).

    python benchmarks/bench_peers.py [--quick] [-n 1500] [-c 32] [--rounds 3] [--before TREE]

The SDK is in the ``dev`` extra (the tests run it against the emulator); without it that row is left out.
``--before TREE`` also runs aioface from another source tree (``git worktree add /tmp/before
<commit>``) in the same rounds: then every variant runs in a fresh process of its own (imports and a
warm-up of 200 calls untimed), so that two versions of the package can be measured side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import aiohttp
from _common import KEY, ChildEmulator, report

IMAGE = "https://cdn.acedata.cloud/f5687u.png"
BODY = {"image_url": IMAGE, "age_infos": [{"age": 60}]}


async def run_aioface(url: str, n: int, c: int) -> None:
    import aioface

    async with aioface.Client(
        acedata_token=KEY,
        acedata_base_url=url,
        limits={"acedata": "1000000/s"},
        persist_limits=False,
        env={},
        connections=c,
    ) as client:
        outcomes = await client.map(
            lambda i: client.acedata.change_age(IMAGE, [60], download=False), range(n), concurrency=c
        )
    bad = [o.error for o in outcomes if not o.ok]
    assert not bad, bad[:3]
    assert all(o.unwrap().source_url for o in outcomes)


async def run_aiohttp(url: str, n: int, c: int) -> None:
    sem = asyncio.Semaphore(c)
    headers = {"Authorization": f"Bearer {KEY}", "Accept": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)) as s:

        async def one() -> None:
            async with sem, s.post(url + "/face/change-age", json=BODY, headers=headers) as r:
                assert r.status == 200, r.status
                assert (await r.json())["image_url"]

        await asyncio.gather(*(one() for _ in range(n)))


async def run_sdk(url: str, n: int, c: int) -> None:
    from acedatacloud import AsyncAceDataCloud

    sem = asyncio.Semaphore(c)
    client = AsyncAceDataCloud(api_token=KEY, base_url=url, max_retries=0)
    try:

        async def one() -> None:
            async with sem:
                answer = await client.face.change_age(image_url=IMAGE, age_infos=[{"age": 60}])
                assert answer["image_url"]

        await asyncio.gather(*(one() for _ in range(n)))
    finally:
        await client.close()


def _has_sdk() -> bool:
    try:
        import acedatacloud  # noqa: F401
    except ImportError:
        return False
    return True


_RUNNERS = {"bare aiohttp": run_aiohttp, "aioface": run_aioface, "acedatacloud SDK": run_sdk}


def _child(name: str, url: str, n: int, c: int) -> None:
    """``--child``: one variant in this fresh process, warmed up; prints its wall and CPU seconds."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {0})
    run = _RUNNERS[name]
    asyncio.run(run(url, 200, c))  # imports, first connections: not timed
    t, c0 = time.perf_counter(), time.process_time()
    asyncio.run(run(url, n, c))
    print(json.dumps({"seconds": time.perf_counter() - t, "cpu": time.process_time() - c0}))


def _in_child(name: str, tree: str | None, url: str, *, n: int, c: int) -> tuple[float, float]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = tree
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name.removesuffix(" (before)"), url, "-n", str(n)]
    out = subprocess.run([*cmd, "-c", str(c)], env=env, check=True, capture_output=True, text=True, timeout=600)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    return got["seconds"], got["cpu"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=1500)
    ap.add_argument("-c", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--before", help="another source tree to run aioface from too (each variant in its own process)")
    ap.add_argument("--child", nargs=2, metavar=("VARIANT", "URL"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    n, rounds = (60, 1) if a.quick else (a.n, a.rounds)
    if a.child:
        _child(a.child[0], a.child[1], n, a.c)
        return
    # Each variant runs once against the URL; a child process returns its own (seconds, CPU seconds).
    variants: dict[str, Callable[[str], tuple[float, float] | None]] = {
        "bare aiohttp": lambda u: asyncio.run(run_aiohttp(u, n, a.c)),
        "aioface": lambda u: asyncio.run(run_aioface(u, n, a.c)),
    }
    if a.before:
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        trees: dict[str, str | None] = {"bare aiohttp": None, "aioface": here, "aioface (before)": a.before}
        if _has_sdk():
            trees["acedatacloud SDK"] = None
        variants = {k: functools.partial(_in_child, k, tree, n=n, c=a.c) for k, tree in trees.items()}
    elif _has_sdk():
        variants["acedatacloud SDK"] = lambda u: asyncio.run(run_sdk(u, n, a.c))
    best: dict[str, float] = {}
    cpu: dict[str, list[float]] = {}
    walls: dict[str, list[float]] = {}
    pinned = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
    with ChildEmulator("--time-scale", "1000000") as emu:
        if pinned:
            os.sched_setaffinity(emu.proc.pid, {1})
            os.sched_setaffinity(0, {0})
        for _ in range(rounds):
            for name, fn in variants.items():  # interleaved rounds: noise hits all alike
                t, c0 = time.perf_counter(), time.process_time()
                own = fn(emu.url)
                dt, dc = (time.perf_counter() - t, time.process_time() - c0) if own is None else own
                best[name] = min(best.get(name, float("inf")), dt)
                cpu.setdefault(name, []).append(dc / n * 1e6)
                walls.setdefault(name, []).append(dt)
    base, base_cpu = n / best["bare aiohttp"], statistics.median(cpu["bare aiohttp"])
    rows = [
        {
            "client": k,
            "req_per_s": n / v,
            "throughput_ratio": (n / v) / base,
            "cpu_us_per_req": statistics.median(cpu[k]),
            "cpu_ratio": statistics.median(cpu[k]) / base_cpu,
            # the median of each round's ratio to bare in the same round (steadier when the load moves)
            "cpu_ratio_paired": statistics.median(x / y for x, y in zip(cpu[k], cpu["bare aiohttp"], strict=True)),
            "req_per_s_rounds": [round(n / w) for w in walls[k]],
            "cpu_us_rounds": [round(x) for x in cpu[k]],
        }
        for k, v in best.items()
    ]
    extra: dict[str, object] = {"n": n, "concurrency": a.c, "rounds": rounds, "pinned": pinned}
    extra["load"] = os.getloadavg()[0]
    extra["processes"] = "one per variant and round" if a.before else "this one"
    if "acedatacloud SDK" in best:
        extra["aioface_over_sdk_throughput"] = best["acedatacloud SDK"] / best["aioface"]
    report(
        "peers: Ace change-age, JSON path",
        rows,
        ["client", "req_per_s", "throughput_ratio", "cpu_us_per_req", "cpu_ratio", "cpu_ratio_paired"],
        extra,
    )


if __name__ == "__main__":
    main()
