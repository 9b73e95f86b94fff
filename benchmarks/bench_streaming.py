"""4. Streaming: peak RSS while downloading many large results, aioface (streamed) vs reading whole bodies.

Each variant runs in a fresh process (peak RSS is per process): M Ace Data results of about S MB each,
C at a time, saved to disk.

    python benchmarks/bench_streaming.py [--quick] [-m 200] [--mb 20] [-c 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import KEY, ChildEmulator, report


async def aioface_variant(url: str, m: int, c: int, out: Path) -> None:
    import aioface

    async with aioface.Client(
        acedata_token=KEY,
        acedata_base_url=url,
        limits={"acedata": "100000/s"},
        persist_limits=False,
        env={},
        max_download_bytes=1 << 30,
    ) as client:
        res = await client.map(
            lambda i: client.acedata.cartoon("https://a.b/c.png", out / f"r{i}"), range(m), concurrency=c
        )
    assert all(o.ok for o in res), [o.error for o in res if not o.ok][:2]


async def whole_body_variant(url: str, m: int, c: int, out: Path) -> None:
    import aiohttp

    sem = asyncio.Semaphore(c)
    async with aiohttp.ClientSession() as s:

        async def one(i: int) -> None:
            async with sem:
                async with s.post(
                    url + "/face/cartoon",
                    json={"image_url": "https://a.b/c.png"},
                    headers={"authorization": f"Bearer {KEY}"},
                ) as r:
                    link = (await r.json())["image_url"]
                async with s.get(link) as r:
                    body = await r.read()
                (out / f"w{i}.png").write_bytes(body)

        await asyncio.gather(*(one(i) for i in range(m)))


def child(variant: str, url: str, m: int, c: int) -> None:
    out = Path(tempfile.mkdtemp(prefix="aioface-stream-"))
    t = time.perf_counter()
    fn = aioface_variant if variant == "aioface" else whole_body_variant
    asyncio.run(fn(url, m, c, out))
    dt = time.perf_counter() - t
    total = sum(p.stat().st_size for p in out.iterdir())
    for p in out.iterdir():
        p.unlink()
    print(
        json.dumps(
            {"seconds": dt, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "bytes": total}
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-m", type=int, default=200)
    ap.add_argument("--mb", type=int, default=20)
    ap.add_argument("-c", type=int, default=8)
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        v, url, m, c = a.child
        child(v, url, int(m), int(c))
        return
    m, mb = (8, 5) if a.quick else (a.m, a.mb)
    rows = []
    with ChildEmulator("--result-padding", str(mb * 1024 * 1024)) as emu:
        for variant in ("aioface", "whole body"):
            r = subprocess.run(
                [sys.executable, __file__, "--child", variant, emu.url, str(m), str(a.c)],
                capture_output=True,
                text=True,
                timeout=600,
                check=True,
            )
            data = json.loads(r.stdout.strip().splitlines()[-1])
            rows.append({"variant": variant, **data, "mb_per_s": data["bytes"] / data["seconds"] / 1e6})
    base = rows[1]["peak_rss_mb"]
    for row in rows:
        row["rss_ratio_vs_whole_body"] = row["peak_rss_mb"] / base
    report(
        "streaming",
        rows,
        ["variant", "seconds", "peak_rss_mb", "rss_ratio_vs_whole_body", "mb_per_s"],
        {"results": m, "mb_each": mb, "concurrency": a.c},
    )


if __name__ == "__main__":
    main()
