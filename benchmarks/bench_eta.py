"""8. Time remaining that knows the limits (issue 24, goal 5): the CLI's estimate against the truth.

N items go through a real ``RateLimiter`` at 30/minute (run ``--speed`` times faster, so the run
takes seconds), 32 at a time, each answered at once, as ``aioface generate`` would send them. At
checkpoints it records what rich's recent-rate estimate says (the CLI's "time remaining" before
goal 5), what the limiter's ``time_for`` says, what the CLI now shows (the longer of the two), and,
once the run is over, the true time that was left. Figures are in minute-scale seconds.

    python benchmarks/bench_eta.py [-n 80] [--speed 10]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from _common import report
from rich.progress import Progress

from aioface import RateLimiter, parse_limits
from aioface.cli._progress import time_remaining


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=80)
    ap.add_argument("--speed", type=float, default=10.0)
    ap.add_argument("-c", type=int, default=32)
    a = ap.parse_args()
    rate = parse_limits("30/minute")[0].scaled(a.speed)
    limiter = RateLimiter([rate], margin=0.0)
    progress = Progress(disable=True)  # rich's own estimate, as the bar computed it before
    task = progress.add_task("generate", total=a.n)
    sem = asyncio.Semaphore(a.c)
    marks: list[dict[str, Any]] = []  # done, at, rate (None before rich has one), lim, shown
    done = 0

    async def one() -> None:
        nonlocal done
        async with sem:
            permit = await limiter.acquire()
            permit.responded()
            done += 1
            progress.update(task, completed=done)
            left = a.n - done
            if done % 10 == 0 and left:
                observed = progress.tasks[0].time_remaining
                by_limits = limiter.time_for(left)
                shown = time_remaining(left, observed, by_limits)
                marks.append({"done": done, "at": time.monotonic(), "rate": observed, "lim": by_limits, "shown": shown})

    await asyncio.gather(*(one() for _ in range(a.n)))
    end = time.monotonic()
    s = a.speed
    rows = [
        {
            "done": int(m["done"]),
            "left": a.n - int(m["done"]),
            "recent_rate_eta_s": m["rate"] * s if m["rate"] is not None else None,
            "limits_eta_s": m["lim"] * s,
            "shown_eta_s": m["shown"] * s if m["shown"] is not None else None,
            "true_left_s": (end - m["at"]) * s,
        }
        for m in marks
    ]
    cols = ["done", "left", "recent_rate_eta_s", "limits_eta_s", "shown_eta_s", "true_left_s"]
    report("eta at 30/minute", rows, cols, {"n": a.n, "speed": a.speed, "concurrency": a.c})


if __name__ == "__main__":
    asyncio.run(main())
