"""7. Against the DRF double: aioface (default and limit_stamp_bound) and pyrate-limiter, 1 and 3 processes.

The Face Studio double of the tests (``tests/support/drf_server.py``): Django REST framework's own
throttles (burst and sustained scopes per user class), DRF's cache in a throw-away redis-server shared
by two gunicorn workers (16 threads each, so that slow answers do not queue at the server), time
scaled by overriding ``parse_rate`` only. One Professional account per run (30 a "minute", a minute
lasting 60/--time-scale seconds), -n requests split between the processes, all asked for at once,
with fast answers and with slow ones (1-2 s before the image).

- ``aioface``: ``limits_store=RedisStore``, the tier learned from ``X-User-Class`` (a fresh account:
  one probe, then Professional); a slot held a window after the answer
- ``aioface bound``: the same with ``limit_stamp_bound=0.05`` (held until send + 0.05 s + window)
- ``pyrate-limiter``: its RedisBucket at the same 30 per window (``try_acquire_async``); a 429 is
  retried after its Retry-After

Counted from the server's own log (DRF's throttle is not atomic): requests received, 429s, the most
requests *sent* (received) in any sliding window vs the limit, and ideal/actual: the shortest possible
span (30 at once, then 30 a window) over the span achieved, first arrival to last.

    python benchmarks/bench_drf.py [--quick] [-n 90] [--time-scale 20] [--procs 1,3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import report

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from aioface.testing import RedisServer  # noqa: E402
from tests.support.drf_server import DrfFaceStudio, count_429, max_in_window  # noqa: E402

RATE = 30  # Professional's burst
LIBS = ("aioface", "aioface bound", "pyrate-limiter")


# ------------------------------------------------------------------------------------ workers
async def pyrate_loop(url: str, key: str, n: int, redis_url: str, period: float) -> None:
    import aiohttp
    from pyrate_limiter import Duration, Limiter, Rate, RedisBucket
    from redis.asyncio import Redis

    r = Redis.from_url(redis_url)
    bucket = await RedisBucket.init([Rate(RATE, int(Duration.SECOND * period))], r, f"pyrate-{key}")
    limiter = Limiter(bucket)
    async with aiohttp.ClientSession() as s:

        async def one() -> None:
            while True:
                await limiter.try_acquire_async(key)
                async with s.get(url + "/v1/generate", headers={"Authorization": f"Token {key}"}) as resp:
                    await resp.read()
                    if resp.status != 429:
                        assert resp.status == 200, resp.status
                        return
                    await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))

        await asyncio.gather(*(one() for _ in range(n)))
    await r.aclose()


async def aioface_loop(a: argparse.Namespace) -> None:
    import aioface

    store = aioface.RedisStore(a.redis)
    async with aioface.Client(
        facestudio_key=a.key,
        facestudio_base_url=a.url,
        time_scale=a.time_scale,
        limits_store=store,
        limit_stamp_bound=0.05 if a.worker.endswith("bound") else None,
        persist_limits=False,
        acquire_timeout=600,
        env={},
    ) as client:
        res = await client.map(lambda i: client.facestudio.generate(None), range(a.n), concurrency=a.n)
        assert all(o.ok for o in res), [str(o.error) for o in res if not o.ok][:3]
    await store.aclose()


def worker_main(a: argparse.Namespace) -> None:
    print("ready", flush=True)
    sys.stdin.readline()
    if a.worker.startswith("aioface"):
        asyncio.run(aioface_loop(a))
    else:
        asyncio.run(pyrate_loop(a.url, a.key, a.n, a.redis, 60.0 / a.time_scale))
    print("done", flush=True)


# ---------------------------------------------------------------------------------- the runs
def run(lib: str, procs: int, total: int, fs: DrfFaceStudio, redis_url: str, account: str, key: str) -> dict[str, Any]:
    counts = [total // procs + (1 if i < total % procs else 0) for i in range(procs)]
    cmd = [sys.executable, __file__, "--worker", lib, "--url", fs.url, "--redis", redis_url, "--key", key]
    children = [
        subprocess.Popen(
            [*cmd, "-n", str(n), "--time-scale", str(fs.time_scale)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in counts
    ]
    try:
        for c in children:
            assert c.stdout is not None
            ready, _, _ = select.select([c.stdout], [], [], 60)
            assert ready and c.stdout.readline().strip() == "ready", f"{lib} worker did not start"
        for c in children:
            assert c.stdin is not None
            c.stdin.write("go\n")
            c.stdin.flush()
        for c in children:
            c.communicate(timeout=900)
            assert c.returncode == 0, f"{lib} worker failed"
    finally:
        for c in children:
            if c.poll() is None:
                c.kill()
    period = 60.0 / fs.time_scale
    log = [e for e in fs.read_log() if e.get("account") == account]
    arrivals = sorted(float(e["t"]) for e in log)
    span = arrivals[-1] - arrivals[0]
    ideal = (math.ceil(total / RATE) - 1) * period
    return {
        "limiter": lib,
        "processes": procs,
        "requests": len(log),
        "429s": count_429(log, account=account),
        "most_in_window": max_in_window(log, period, account=account),
        "limit": RATE,
        "span_s": span,
        "ideal_over_actual": ideal / span if span else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=90, help="requests in all, split between the processes")
    ap.add_argument("--time-scale", type=float, default=20.0, help="a divisor of 60: 20 makes a minute last 3 s")
    ap.add_argument("--procs", default="1,3")
    ap.add_argument("--libs", default=",".join(LIBS))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--redis", help=argparse.SUPPRESS)
    ap.add_argument("--key", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker_main(a)
        return
    if a.quick:
        a.n, a.procs = 60, "3"
    plan = [(lat, lib, int(p)) for lat in ("fast", "slow") for p in a.procs.split(",") for lib in a.libs.split(",")]
    accounts = {f"acct{i}": {"user_class": "Professional", "keys": [f"key-{i}"]} for i in range(len(plan))}
    rows = []
    t0 = time.monotonic()
    with RedisServer() as server:
        limits_url = server.url.rsplit("/", 1)[0] + "/1"
        for latency in ("fast", "slow"):
            lat = None if latency == "fast" else (1.0, 2.0)
            with DrfFaceStudio(accounts, redis_url=server.url, time_scale=a.time_scale, latency=lat, threads=16) as fs:
                for i, (lt, lib, procs) in enumerate(plan):
                    if lt != latency:
                        continue
                    row = {"answers": latency, **run(lib, procs, a.n, fs, limits_url, f"acct{i}", f"key-{i}")}
                    rows.append(row)
                    most, ratio = row["most_in_window"], row["ideal_over_actual"]
                    print(f"  {latency} {lib}, {procs} processes: {row['429s']} x 429, "
                          f"most in a window {most}/{RATE}, {ratio:.3f} of ideal", flush=True)  # fmt: skip
    report(
        "drf",
        rows,
        [
            "answers",
            "limiter",
            "processes",
            "requests",
            "429s",
            "most_in_window",
            "limit",
            "span_s",
            "ideal_over_actual",
        ],
        {"n": a.n, "window_s": 60.0 / a.time_scale, "seconds": time.monotonic() - t0},
    )
    print(json.dumps({"done": True}))


if __name__ == "__main__":
    main()
