"""One process of a multi-process limits run (tests and benchmarks start several).

``python -m tests.support.limits_worker --url EMULATOR --key KEY --store redis://...|local -n 40``

Opens a Client, prints ``ready``, waits for a line on stdin, then generates N Face Studio faces at
once (concurrency N) through the store's limiter and prints one JSON line: sends (monotonic
seconds, comparable across processes on one machine), limiter waits, 429s seen, errors, and the
wall clock it saw (to show a faked clock).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import aioface
from aioface._dispatch import RequestTiming


async def run(a: argparse.Namespace) -> dict[str, object]:
    store: aioface.LimitsStore | str = a.store
    if a.store.startswith("redis"):
        from aioface import RedisStore

        store = RedisStore(a.store, lease=a.lease, give_up_after=a.give_up_after)
    timings: list[RequestTiming] = []
    out = Path(tempfile.mkdtemp(prefix="aioface-worker-"))
    client = aioface.Client(
        facestudio_key=a.key,
        facestudio_base_url=a.url,
        facestudio_tier="professional",
        time_scale=a.time_scale,
        limits_store=store,
        limit_margin=a.margin,
        acquire_timeout=a.acquire_timeout,
        persist_limits=False,
        env={},
        on_request=timings.append,
    )
    wall = time.time()
    async with client:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        results = await client.map(
            lambda i: client.facestudio.generate(out / str(i), age=30, seed=7, resolution=128),
            range(a.n),
            concurrency=a.n,
        )
        stats = client.stats("facestudio")
    if not isinstance(store, str):
        await store.aclose()
    fs = [t for t in timings if t.provider == "facestudio"]
    return {
        "ok": sum(1 for r in results if r.ok),
        "errors": [f"{type(r.error).__name__}: {r.error}" for r in results if not r.ok],
        "throttled": stats["throttled"],
        "sends": sorted(t.sent for t in fs),
        "waits": [t.sent - t.queued for t in fs],
        "wall_minus_monotonic": wall - time.monotonic(),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--store", default="local")
    ap.add_argument("-n", type=int, default=40)
    ap.add_argument("--time-scale", type=float, default=60.0)
    ap.add_argument("--margin", type=float, default=0.01)
    ap.add_argument("--lease", type=float, default=15.0)
    ap.add_argument("--give-up-after", type=float, default=10.0)
    ap.add_argument("--acquire-timeout", type=float, default=None)
    a = ap.parse_args()
    print(json.dumps(asyncio.run(run(a))), flush=True)


if __name__ == "__main__":
    main()
