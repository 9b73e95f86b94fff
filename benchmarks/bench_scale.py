"""5. Scale: N AILab tasks polled at once on one event loop; memory per task and event-loop lag.

N tasks are submitted (tiny JPEGs), then all N are awaited together with backoff polling through one
Client (100 connections). A ticker measures how late a 10 ms sleep wakes up (event-loop lag) while
they run; RSS is sampled to get the memory each in-flight task costs.

    python benchmarks/bench_scale.py [--quick] [-n 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import time

import psutil
from _common import KEY, ChildEmulator, report

import aioface


def _jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buf, "JPEG")
    return buf.getvalue()


async def run(url: str, n: int, task_seconds: float) -> dict[str, float]:
    proc = psutil.Process()
    img = _jpeg()
    policy = aioface.PollPolicy(initial=task_seconds / 2, factor=1.5, max_interval=4.0, deadline=600)
    async with aioface.Client(
        ailab_key=KEY,
        ailab_base_url=url,
        limits={"ailab": "100000/s"},
        persist_limits=False,
        env={},
        connections=100,
        timeout=120,
    ) as client:
        t = time.perf_counter()

        async def submit(_: int) -> tuple[str, float]:
            task_id = await client.ailab.submit(source=img, target=img)
            return task_id, asyncio.get_running_loop().time()  # polls and learning count from here

        submitted = await client.map(submit, range(n), concurrency=200)
        submit_s = time.perf_counter() - t
        ids = [o.unwrap() for o in submitted]
        del submitted
        base_rss = proc.memory_info().rss
        lags: list[float] = []
        peak_rss = base_rss
        peak_waiting = 0
        done = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal peak_rss, peak_waiting
            while not stop.is_set():
                t0 = time.perf_counter()
                await asyncio.sleep(0.01)
                lags.append(time.perf_counter() - t0 - 0.01)
                peak_rss = max(peak_rss, proc.memory_info().rss)
                peak_waiting = max(peak_waiting, n - done)

        async def wait(item: tuple[str, float]) -> str:
            nonlocal done
            task_id, submitted_at = item
            try:
                return await client.ailab.wait(task_id, poll=policy, submitted_at=submitted_at)
            finally:
                done += 1

        tick = asyncio.ensure_future(ticker())
        t = time.perf_counter()
        results = await client.map(wait, ids, concurrency=n)
        wait_s = time.perf_counter() - t
        stop.set()
        await tick
        polls = client.stats("ailab")["requests"] - n
    failed = sum(not o.ok for o in results)
    lags.sort()
    return {
        "tasks": n,
        "failed": failed,
        "submit_seconds": submit_s,
        "wait_seconds": wait_s,
        "polls_per_task": polls / n,
        "peak_in_flight": peak_waiting,
        "memory_per_task_kb": (peak_rss - base_rss) / n / 1024,
        "loop_lag_p50_ms": lags[len(lags) // 2] * 1000,
        "loop_lag_p99_ms": lags[int(len(lags) * 0.99)] * 1000,
        "loop_lag_max_ms": lags[-1] * 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=10_000)
    a = ap.parse_args()
    n, seconds = (300, 1.0) if a.quick else (a.n, 8.0)
    with ChildEmulator("--task-duration", str(seconds), "--task-jitter", "2") as emu:
        row = asyncio.run(run(emu.url, n, seconds))
    cols = list(row)
    report("scale", [row], cols)


if __name__ == "__main__":
    main()
