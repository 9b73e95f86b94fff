"""3. Polling: AILab-style tasks of random length; delay from "task done" to "result noticed", and polls per task.

aioface's backoff with jitter (PollPolicy defaults: 0.5 s growing 1.5x to 5 s) against fixed 0.1 s
and 0.5 s intervals (what replicate and fal-client do). Task durations are uniform in [1, 1+J] s.

    python benchmarks/bench_polling.py [--quick] [-n 40]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from _common import KEY, ChildEmulator, report

import aioface


async def run(url: str, emu: ChildEmulator, n: int, policy: aioface.PollPolicy) -> tuple[list[float], int]:
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.new("RGB", (64, 64), "red").save(buf, "JPEG")
    img = buf.getvalue()
    async with aioface.Client(
        ailab_key=KEY, ailab_base_url=url, limits={"ailab": "1000/s"}, persist_limits=False, env={}
    ) as client:

        async def one(_: int) -> float:
            task_id = await client.ailab.submit(source=img, target=img)
            await client.ailab.wait(task_id, poll=policy)
            noticed = time.monotonic()
            return noticed - emu.task(task_id)["done_at"]

        before = emu.stats().get("ailab_polls", 0)
        res = await client.map(one, range(n), concurrency=n)
        polls = emu.stats().get("ailab_polls", 0) - before
    return [o.unwrap() for o in res], polls


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=40)
    a = ap.parse_args()
    n, jitter = (8, 1.0) if a.quick else (a.n, 6.0)
    policies = {
        "aioface backoff": aioface.PollPolicy(),
        "fixed 0.1 s": aioface.PollPolicy(initial=0.1, factor=1.0, max_interval=0.1, jitter=0.0),
        "fixed 0.5 s": aioface.PollPolicy(initial=0.5, factor=1.0, max_interval=0.5, jitter=0.0),
    }
    rows = []
    with ChildEmulator("--task-duration", "1.0", "--task-jitter", str(jitter)) as emu:
        for name, pol in policies.items():
            lags, polls = asyncio.run(run(emu.url, emu, n, pol))
            rows.append(
                {
                    "strategy": name,
                    "polls_per_task": polls / n,
                    "notice_delay_mean_s": statistics.mean(lags),
                    "notice_delay_p90_s": sorted(lags)[int(0.9 * (len(lags) - 1))],
                }
            )
    report(
        "polling",
        rows,
        ["strategy", "polls_per_task", "notice_delay_mean_s", "notice_delay_p90_s"],
        {"n": n, "task_seconds": f"U[1, {1 + jitter}]"},
    )


if __name__ == "__main__":
    main()
