"""1b. The whole CLI run, process start included: `aioface generate --count N` against a bare script.

Both are separate processes doing the same N Face Studio GETs against one emulator process and saving
each image; the bare script is ~20 lines of aiohttp. Reported: wall seconds (best of the rounds) and
the ratio of the bare script's time to aioface's (1.0 = no cost).

    python benchmarks/bench_cli.py [--quick] [-n 3000] [-c 32] [--rounds 3] [--before TREE] [--dir /dev/shm]

``--before TREE`` also runs the command from another source tree (``git worktree add /tmp/before
<commit>``) in the same rounds, interleaved, so a change is measured against its parent under the
same load. ``--startup`` measures start-up alone: ``generate -n 1`` against ``import aiohttp``.

Each tree's package is byte-compiled first (``compileall``), as an installed package is: where
``PYTHONDONTWRITEBYTECODE`` is set (this project's sandbox sets it), a source tree would otherwise be
compiled again at every start, ~0.1 s that the bare script (aiohttp, compiled at install) never pays.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from _common import KEY, ChildEmulator, report

BARE = """
import asyncio, sys, aiohttp
url, n, c, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
async def main():
    sem = asyncio.Semaphore(c)
    h = {"Authorization": "Token " + sys.argv[5]}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)) as s:
        async def one(i):
            async with sem, s.get(url + "/v1/generate", params={"resolution": "256"}, headers=h) as r:
                assert r.status == 200
                with open(f"{out}/face-{i:04d}.jpg", "wb") as f:
                    async for chunk in r.content.iter_chunked(1 << 18):
                        f.write(chunk)
        await asyncio.gather(*(one(i) for i in range(n)))
asyncio.run(main())
"""


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=3000)
    ap.add_argument("-c", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--before", help="another source tree to run too, e.g. a worktree of the parent commit")
    ap.add_argument("--dir", help="where the images go (default: the temp folder; /dev/shm takes the disk out)")
    ap.add_argument("--startup", action="store_true", help="start-up alone: -n 1, and a bare 'import aiohttp'")
    a = ap.parse_args()
    n, rounds = (100, 1) if a.quick else (a.n, a.rounds)
    if a.startup:
        n = 1
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    trees = {"aioface generate": here}
    if a.before:
        trees["aioface generate (before)"] = os.path.abspath(a.before)
    for tree in trees.values():  # bytecode, as pip leaves it: no compiling at every start
        subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(tree, "aioface")], check=True)
    best: dict[str, float] = {}
    cpu: dict[str, float] = {}  # CPU seconds of the process (user + system): less moved by the load
    with ChildEmulator("--key", f"{KEY}=enterprise", "--time-scale", "1000000") as emu:
        env = {
            **os.environ,
            "AIOFACE_FACESTUDIO_KEY": KEY,
            "AIOFACE_FACESTUDIO_BASE_URL": emu.url,
            "AIOFACE_FACESTUDIO_LIMITS": "1000000/s",
        }
        for _ in range(rounds):
            for name in ("bare script", *trees):
                out = tempfile.mkdtemp(prefix="aioface-cli-", dir=a.dir)
                env["AIOFACE_CACHE_DIR"] = os.path.join(out, ".cache")
                env.pop("PYTHONPATH", None)
                if name == "bare script":
                    cmd = [sys.executable, "-c", BARE, emu.url, str(n), str(a.c), out, KEY]
                else:
                    env["PYTHONPATH"] = trees[name]
                    cmd = [sys.executable, "-m", "aioface", "generate", "-n", str(n), "--resolution", "256"]
                    cmd += ["-c", str(a.c), "-q", "--out", out]
                t, c0 = time.perf_counter(), _children_cpu()
                subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
                dt = time.perf_counter() - t
                cpu[name] = min(cpu.get(name, float("inf")), _children_cpu() - c0)
                assert len([f for f in os.listdir(out) if f.endswith(".jpg")]) == n
                shutil.rmtree(out)
                best[name] = min(best.get(name, float("inf")), dt)
            if a.startup:
                t = time.perf_counter()
                subprocess.run([sys.executable, "-c", "import aiohttp"], check=True)
                best["python -c 'import aiohttp'"] = min(
                    best.get("python -c 'import aiohttp'", 1e9), time.perf_counter() - t
                )
    base, base_cpu = best["bare script"], cpu["bare script"]
    rows = [
        {
            "run": k,
            "seconds": v,
            "ratio_bare_over_this": base / v,
            "cpu_seconds": cpu.get(k),
            "cpu_ratio_this_over_bare": cpu[k] / base_cpu if k in cpu else None,
        }
        for k, v in best.items()
    ]
    report(
        "cli run",
        rows,
        ["run", "seconds", "ratio_bare_over_this", "cpu_seconds", "cpu_ratio_this_over_bare"],
        {"n": n, "concurrency": a.c, "rounds": rounds, "load": os.getloadavg()[0]},
    )


if __name__ == "__main__":
    main()
