"""3. Polling on the emulator: real AILab tasks over loopback HTTP, durations from a distribution.

Strategies: aioface's learned schedule (``PollPolicy()``) starting cold (a new client) and warm
(durations saved by the cold run and loaded with ``Client(durations=...)``), today's backoff
(``PollPolicy(learn=False)``) and a fixed 0.5 s poll. Each strategy runs ``-n`` tasks through
``--concurrency`` workers (submit, wait, next). Reported per task: polls (counted by the emulator)
and the notice delay (the client has the result URL - the task's end on the emulator's clock; the
same monotonic clock, so it includes the poll's round trip), mean and p99.

Everything runs ``--scale`` times faster: the emulator's tasks are that much shorter and every
policy is ``.scaled(scale)``; figures are reported in task seconds (real seconds x scale).

    python benchmarks/bench_polling.py [--quick] [-n 2000] [--concurrency 50] [--scale 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from _common import KEY, ChildEmulator, report

import aioface

DISTRIBUTIONS = {
    "lognormal 5+-1 s": "lognormal:5:1",
    "bimodal 3 s / 20 s": "bimodal:3:20:0.3",
    "pareto 2 s, a=1.5": "pareto:2:1.5:240",
}

STRATEGIES = {
    "learned (cold)": aioface.PollPolicy(),
    "learned (warm)": aioface.PollPolicy(),
    "fixed 0.5 s": aioface.PollPolicy(initial=0.5, factor=1.0, max_interval=0.5, jitter=0.0, learn=False),
    "backoff (today)": aioface.PollPolicy(learn=False),
}


def _image() -> bytes:
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.new("RGB", (64, 64), "red").save(buf, "JPEG")
    return buf.getvalue()


async def run(
    url: str, n: int, concurrency: int, policy: aioface.PollPolicy, durations: aioface.DurationLearners | None
) -> tuple[list[tuple[str, float]], aioface.DurationLearners]:
    img = _image()
    async with aioface.Client(
        ailab_key=KEY,
        ailab_base_url=url,
        limits={"ailab": "100000/s"},
        persist_limits=False,
        env={},
        poll=policy,
        durations=durations,
    ) as client:

        async def one(_: int) -> tuple[str, float]:
            task_id = await client.ailab.submit(source=img, target=img)
            await client.ailab.wait(task_id)
            return task_id, time.monotonic()

        res = await client.map(one, range(n), concurrency=concurrency)
    return [o.unwrap() for o in res], client.durations


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--scale", type=float, default=10.0)
    a = ap.parse_args()
    n, conc, dists = (40, 20, dict(list(DISTRIBUTIONS.items())[:1])) if a.quick else (a.n, a.concurrency, DISTRIBUTIONS)
    k = a.scale
    rows: list[dict[str, Any]] = []
    for dname, spec in dists.items():
        with ChildEmulator("--task-distribution", f"{spec}/{k:g}") as emu:
            saved: str | None = None
            for sname, pol in STRATEGIES.items():
                warm = aioface.DurationLearners.from_json(saved) if sname == "learned (warm)" and saved else None
                before = emu.stats().get("ailab_polls", 0)
                noticed, learned = asyncio.run(run(emu.url, n, conc, pol.scaled(k), warm))
                polls = emu.stats().get("ailab_polls", 0) - before
                if sname == "learned (cold)":
                    saved = learned.to_json()
                lags = sorted((t - emu.task(task_id)["done_at"]) * k for task_id, t in noticed)
                rows.append(
                    {
                        "distribution": dname,
                        "strategy": sname,
                        "polls_per_task": polls / n,
                        "notice_mean_s": statistics.mean(lags),
                        "notice_p99_s": lags[min(len(lags) - 1, int(0.99 * len(lags)))],
                    }
                )
    for dname in dists:
        by = {r["strategy"]: r for r in rows if r["distribution"] == dname}
        f = by["fixed 0.5 s"]
        for s in ("learned (cold)", "learned (warm)"):
            r = by[s]
            r["dominates_fixed_0.5"] = (
                r["polls_per_task"] < f["polls_per_task"] and r["notice_mean_s"] < f["notice_mean_s"]
            )
    report(
        "polling (emulator)",
        rows,
        ["distribution", "strategy", "polls_per_task", "notice_mean_s", "notice_p99_s", "dominates_fixed_0.5"],
        {"n": n, "concurrency": conc, "scale": k},
    )


if __name__ == "__main__":
    main()
