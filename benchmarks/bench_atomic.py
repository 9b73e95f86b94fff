"""1c. What the atomic file path costs per result, step by step, against a bare open/write/close.

Each variant writes N files of one ~12 kB JPEG into a fresh folder (interleaved rounds, best of):
the bare script's ``open(name, "wb")``; aioface's pre-send checks (``prepare_dest``: the name, the
folder, writable, not read-only, space left); its part file renamed into place; and the whole of
``stream_to_file`` (checks of the body included: an image, sizes, no bomb). No fsync anywhere:
aioface promises that ``dest`` is either absent or complete (a crash leaves a ``.part`` file,
never a truncated image), not that it survives a power cut.

    python benchmarks/bench_atomic.py [-n 2000] [--rounds 7] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from io import FileIO

from _common import report

from aioface.emulator._images import render
from aioface.results._dest import part_path, prepare_dest, with_suffix
from aioface.results._stream import stream_to_file


def bare(d: str, n: int, data: bytes) -> None:
    for i in range(n):
        with open(f"{d}/face-{i:04d}.jpg", "wb") as f:
            f.write(data)


def checks(d: str, n: int, data: bytes) -> None:
    for i in range(n):
        prepare_dest(f"{d}/face-{i:04d}")


def part_rename(d: str, n: int, data: bytes) -> None:
    for i in range(n):
        dest = f"{d}/face-{i:04d}"
        tmp = part_path(dest)
        with FileIO(tmp, "w") as f:
            f.write(data)
        os.replace(tmp, with_suffix(dest, "jpeg"))


def whole(d: str, n: int, data: bytes) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    async def go() -> None:
        for i in range(n):
            dest = prepare_dest(f"{d}/face-{i:04d}")
            assert isinstance(dest, str)
            await stream_to_file(chunks(), dest, content_length=len(data))

    asyncio.run(go())


VARIANTS: dict[str, Callable[[str, int, bytes], None]] = {
    "bare open/write/close": bare,
    "pre-send checks only": checks,
    "part file + rename": part_rename,
    "aioface: checks + stream_to_file": whole,
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    a = ap.parse_args()
    data = render(7, 30, 256, "jpeg")
    best: dict[str, float] = {}
    for _ in range(a.rounds):
        for name, fn in VARIANTS.items():
            d = tempfile.mkdtemp(prefix="aioface-atomic-", dir=a.dir)
            t = time.perf_counter()
            fn(d, a.n, data)
            dt = (time.perf_counter() - t) / a.n * 1e6
            shutil.rmtree(d)
            best[name] = min(best.get(name, float("inf")), dt)
    base = best["bare open/write/close"]
    rows = [{"step": k, "us_per_file": v, "ratio_to_bare": v / base} for k, v in best.items()]
    extra = {"n": a.n, "rounds": a.rounds, "dir": a.dir, "bytes": len(data), "load": os.getloadavg()[0]}
    report("atomic file path", rows, ["step", "us_per_file", "ratio_to_bare"], extra)


if __name__ == "__main__":
    main()
