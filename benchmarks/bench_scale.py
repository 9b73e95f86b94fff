"""5. Scale: N AILab tasks polled at once on one event loop; memory per task and event-loop lag.

N tasks are submitted (tiny JPEGs, ``client.fan_out`` at concurrency 200, ids kept in a flat list),
then all N are awaited together with learned polling through one Client (100 connections): by one
``client.ailab.wait_many`` (``--waiter many``, the default: a heap of due times, 100 workers) or by
a ``wait()`` per task through ``client.map`` (``--waiter each``, with each task's submission time),
or the natural form ``client.map(lambda t: client.ailab.wait(t), ids, concurrency=N)`` (``--waiter
natural``: bare ids, the client's poll policy, every ``Outcome`` kept). A ticker measures how late a 10 ms
sleep wakes up (event-loop lag) from
the first submission to the last result, reported per phase (submit, wait) and overall; RSS is
sampled to get the memory each in-flight task costs. ``gc.callbacks`` record every collection, so
that lag spikes can be told apart from the cyclic GC's pauses (``gc_*`` columns: full (gen 2)
collections, their longest and total pause).

Lag over 50 ms: the seconds of lag in ticks over 50 ms late, and how much of it GC pauses explain.

``--gc freeze`` calls ``gc.freeze()`` every half second (everything alive then is never scanned
again; what dies later is still freed, only cyclic garbage among it waits for ``gc.unfreeze()``),
``--gc off`` disables the cyclic GC for the run; the default leaves it alone.

    python benchmarks/bench_scale.py [--quick] [-n 10000] [--gc default|freeze|off] [--waiter many|each|natural]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import time
from array import array

import psutil
from _common import KEY, ChildEmulator, report

import aioface


def _jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buf, "JPEG")
    return buf.getvalue()


class GCWatch:
    """Every cyclic-GC collection: (generation, start, seconds), via ``gc.callbacks``."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float, float]] = []
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses.append((info["generation"], self._t0, time.perf_counter() - self._t0))

    def __enter__(self) -> GCWatch:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)

    def overlap(self, start: float, end: float) -> float:
        """Seconds of GC pause inside [start, end]."""
        return sum(max(0.0, min(end, t + s) - max(start, t)) for _, t, s in self.pauses if t < end and t + s > start)

    def summary(self, start: float, end: float) -> dict[str, float]:
        full = [s for g, t, s in self.pauses if g == 2 and start <= t < end]
        every = [s for _, t, s in self.pauses if start <= t < end]
        return {
            "gc_full": len(full),
            "gc_full_max_ms": max(full, default=0.0) * 1000,
            "gc_total_ms": sum(every) * 1000,
        }


def _lag(lags: list[float], prefix: str) -> dict[str, float]:
    s = sorted(lags) or [0.0]
    return {
        f"{prefix}lag_p50_ms": s[len(s) // 2] * 1000,
        f"{prefix}lag_p99_ms": s[int(len(s) * 0.99)] * 1000,
        f"{prefix}lag_max_ms": s[-1] * 1000,
    }


async def run(
    url: str,
    n: int,
    task_seconds: float,
    gc_mode: str,
    waiter: str,
    workers: int | None,
    traces: list[dict[str, object]],
) -> dict[str, float | str]:
    proc = psutil.Process()
    img = _jpeg()
    policy = aioface.PollPolicy(initial=task_seconds / 2, factor=1.5, max_interval=4.0, deadline=600)
    lags: list[tuple[float, float]] = []  # (tick start, lag)
    peak_rss = proc.memory_info().rss
    peak_waiting = 0
    done = 0
    waiting = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal peak_rss, peak_waiting
        ticks = 0
        while not stop.is_set():
            ticks += 1
            if gc_mode == "freeze" and ticks % 50 == 0:
                gc.freeze()  # what has lived half a second is never scanned again (O(1))
            t0 = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append((t0, time.perf_counter() - t0 - 0.01))
            peak_rss = max(peak_rss, proc.memory_info().rss)
            peak_waiting = max(peak_waiting, waiting - done)

    async with aioface.Client(
        ailab_key=KEY,
        ailab_base_url=url,
        limits={"ailab": "100000/s"},
        persist_limits=False,
        env={},
        connections=100,
        timeout=120,
        poll=policy,  # the natural form's wait(t) polls with the client's policy (the others pass it)
    ) as client:
        if gc_mode == "off":
            gc.disable()
        with GCWatch() as watch:
            tick = asyncio.ensure_future(ticker())
            t_submit = time.perf_counter()

            async def submit(_: int) -> tuple[str, float]:
                task_id = await client.ailab.submit(source=img, target=img)
                return task_id, asyncio.get_running_loop().time()  # polls and learning count from here

            # Ids and submission times kept flat (strings and floats the GC does not scan), not as
            # 100,000 Outcome objects: what a program at this scale would keep.
            ids: list[str] = []
            times = array("d")
            failed = 0
            async with client.fan_out(submit, range(n), concurrency=200) as submitted:
                async for o in submitted:
                    task_id, at = o.unwrap()
                    ids.append(task_id)
                    times.append(at)
            t_wait = time.perf_counter()
            if gc_mode == "freeze":
                gc.freeze()
            base_rss = proc.memory_info().rss
            peak_rss = base_rss
            waiting = n

            if waiter == "each":

                async def wait(item: tuple[str, float]) -> str:
                    nonlocal done
                    task_id, submitted_at = item
                    try:
                        return await client.ailab.wait(task_id, poll=policy, submitted_at=submitted_at)
                    finally:
                        done += 1

                results = await client.map(wait, zip(ids, times, strict=True), concurrency=n)
                failed = sum(not o.ok for o in results)
                del results
            elif waiter == "natural":  # what users write: a wait() per id, every Outcome kept
                outcomes = await client.map(lambda t: client.ailab.wait(t), ids, concurrency=n)
                done = n
                failed = sum(not o.ok for o in outcomes)
                del outcomes
            else:
                pairs = zip(ids, times, strict=True)
                async with client.ailab.wait_many(pairs, poll=policy, concurrency=workers) as waits:
                    async for w in waits:
                        done += 1
                        failed += not w.ok
            t_end = time.perf_counter()
            stop.set()
            await tick
        gc.enable()
        gc.unfreeze()
        polls = client.stats("ailab")["requests"] - n
    spikes = [(t, lag) for t, lag in lags if lag > 0.05]
    spike_s = sum(lag for _, lag in spikes)
    spike_gc = sum(watch.overlap(t, t + 0.01 + lag) for t, lag in spikes)
    traces.append({"t_submit": t_submit, "t_wait": t_wait, "t_end": t_end, "lags": lags, "gc": watch.pauses})
    submit_lags = [lag for t, lag in lags if t < t_wait]
    wait_lags = [lag for t, lag in lags if t >= t_wait]
    return {
        "tasks": n,
        "gc": gc_mode,
        "waiter": waiter if workers is None else f"{waiter}/{workers}",
        "failed": failed,
        "all_ok": failed == 0,
        "submit_seconds": t_wait - t_submit,
        "wait_seconds": t_end - t_wait,
        "polls_per_task": polls / n,
        "peak_in_flight": peak_waiting,
        "memory_per_task_kb": (peak_rss - base_rss) / n / 1024,
        "rss_growth_mb": (peak_rss - base_rss) / 2**20,
        **_lag([lag for _, lag in lags], ""),
        **_lag(submit_lags, "submit_"),
        **_lag(wait_lags, "wait_"),
        **{f"submit_{k}": v for k, v in watch.summary(t_submit, t_wait).items()},
        **{f"wait_{k}": v for k, v in watch.summary(t_wait, t_end).items()},
        "lag_over_50ms_s": spike_s,
        "of_which_gc_s": spike_gc,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("--gc", choices=["default", "freeze", "off"], default="default")
    ap.add_argument(
        "--waiter",
        choices=["many", "each", "natural"],
        default="many",
        help="many: one client.ailab.wait_many for all tasks (default); each: a wait() per task via client.map; "
        "natural: client.map(lambda t: client.ailab.wait(t), ids, concurrency=N)",
    )
    ap.add_argument("--workers", type=int, help="wait_many's workers (default: the 100 connections)")
    ap.add_argument("--trace", help="write every tick's lag and every GC pause to this JSON file")
    a = ap.parse_args()
    n, seconds = (300, 1.0) if a.quick else (a.n, 8.0)
    with ChildEmulator("--task-duration", str(seconds), "--task-jitter", "2") as emu:
        traces: list[dict[str, object]] = []
        row = asyncio.run(run(emu.url, n, seconds, a.gc, a.waiter, a.workers, traces))
    if a.trace:
        with open(a.trace, "w") as f:
            json.dump(traces[0], f)
    cols = list(row)
    report("scale", [row], cols)


if __name__ == "__main__":
    main()
