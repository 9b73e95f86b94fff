"""3. Polling on the emulator: real AILab tasks over loopback HTTP, durations from a distribution.

Strategies: the official AILab SDK's own loop (``ailabtools``: submit with
``portrait.portraitAIFaceSwap``, then ``AILabClient.wait_for_task``: a poll at once, then every
``interval=5`` s), aioface's learned schedule (``PollPolicy()``, never two polls of one task within
AILab's 5 s floor) starting cold (a new client) and warm (durations saved by the cold run and loaded
with ``Client(durations=...)``); with ``--old``, also the earlier rows without a floor (learned,
fixed 0.5 s, today's backoff). Each strategy runs ``-n`` tasks through ``--concurrency`` workers
(submit, wait, next). Reported per task: polls (counted by the emulator) and the notice delay (the
client has the result URL - the task's end on the emulator's clock; the same monotonic clock, so it
includes the poll's round trip), mean, p50 and p99.

Everything runs ``--scale`` times faster: the emulator's tasks are that much shorter, the client
has ``time_scale=scale`` (AILab's floor becomes 5 s / scale), every policy is ``.scaled(scale)``
and the SDK's interval and timeout are divided by it; figures are in task seconds (real x scale).

    python benchmarks/bench_polling.py [--quick] [-n 600] [--concurrency 50] [--scale 10] [--old]
        [--provider ailab|acedata|both] [--only "uniform,pareto"]
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
    "uniform 1-7 s": "uniform:1:7",
    "lognormal 5+-1 s": "lognormal:5:1",
    "bimodal 3 s / 20 s": "bimodal:3:20:0.3",
    "pareto 2 s, a=1.5": "pareto:2:1.5:240",
    "Ace guide: 1-2 min (lognormal 90+-15 s)": "lognormal:90:15",
}

SDK = {"ailab": "AILab SDK wait_for_task (5 s)", "acedata": "Ace SDK tasks.wait (3 s)"}
STRATEGIES: dict[str, aioface.PollPolicy | None] = {
    "sdk": None,
    "learned (cold)": aioface.PollPolicy(),
    "learned (warm)": aioface.PollPolicy(),
}
URL = "https://cdn.acedata.cloud/n1lmd8.png"  # the emulator serves these (as the Ace SDK test does)
OLD = {  # the rows of issue 12, no floor
    "learned, no floor (cold)": aioface.PollPolicy(floor=0),
    "fixed 0.5 s, no floor": aioface.PollPolicy(
        initial=0.5, factor=1.0, max_interval=0.5, jitter=0.0, learn=False, floor=0
    ),
    "backoff, no floor": aioface.PollPolicy(learn=False, floor=0),
}


def _image() -> bytes:
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.new("RGB", (64, 64), "red").save(buf, "JPEG")
    return buf.getvalue()


async def run_sdk(url: str, n: int, concurrency: int, scale: float) -> list[tuple[str, float]]:
    """The official SDK's flow: submit, then its own ``wait_for_task`` (interval and timeout / scale)."""
    import ailabtools

    img = _image()
    sdk = ailabtools.AILabClient(KEY, base_url=url, timeout=30)
    sem = asyncio.Semaphore(concurrency)

    async def one(_: int) -> tuple[str, float]:
        async with sem:
            submitted = await sdk.portrait.portraitAIFaceSwap({"imageTarget": img, "imageTemplate": img})
            task_id = submitted["task_id"]
            await sdk.wait_for_task(task_id, interval=5.0 / scale, timeout=300.0 / scale)
            return task_id, time.monotonic()

    try:
        return list(await asyncio.gather(*(one(i) for i in range(n))))
    finally:
        await sdk.aclose()


async def run_ace_sdk(url: str, n: int, concurrency: int, scale: float) -> list[tuple[str, float]]:
    """Ace's SDK flow: an ``async: true`` swap, then its own ``tasks.wait`` (3 s, 600 s, / scale)."""
    import acedatacloud

    sdk = acedatacloud.AsyncAceDataCloud(KEY, base_url=url, platform_base_url=url, max_retries=0, timeout=30)
    sem = asyncio.Semaphore(concurrency)

    async def one(_: int) -> tuple[str, float]:
        async with sem:
            first = await sdk.face.swap(source_image_url=URL, target_image_url=URL, **{"async": True})
            task_id = first["task_id"]
            await sdk.tasks.wait(task_id, service="face", poll_interval=3.0 / scale, max_wait=600.0 / scale)
            return task_id, time.monotonic()

    try:
        return list(await asyncio.gather(*(one(i) for i in range(n))))
    finally:
        await sdk.close()


async def run(
    url: str,
    n: int,
    concurrency: int,
    policy: aioface.PollPolicy,
    durations: aioface.DurationLearners | None,
    scale: float,
    provider: str = "ailab",
) -> tuple[list[tuple[str, float]], aioface.DurationLearners]:
    img = _image()
    async with aioface.Client(
        ailab_key=KEY,
        ailab_base_url=url,
        acedata_token=KEY,
        acedata_base_url=url,
        limits={"ailab": "100000/s", "acedata": "100000/s"},
        persist_limits=False,
        env={},
        poll=policy,
        durations=durations,
        time_scale=scale,
    ) as client:

        async def one(_: int) -> tuple[str, float]:
            if provider == "acedata":
                done = await client.acedata.swap(None, source=URL, target=URL, download=False)
                assert done.task_id is not None
                return done.task_id, time.monotonic()
            task_id = await client.ailab.submit(source=img, target=img)
            await client.ailab.wait(task_id)
            return task_id, time.monotonic()

        res = await client.map(one, range(n), concurrency=concurrency)
    return [o.unwrap() for o in res], client.durations


def _row(dname: str, sname: str, polls: float, lags: list[float]) -> dict[str, Any]:
    lags.sort()
    return {
        "distribution": dname,
        "strategy": sname,
        "polls_per_task": polls,
        "notice_mean_s": statistics.mean(lags),
        "notice_p50_s": lags[len(lags) // 2],
        "notice_p99_s": lags[min(len(lags) - 1, int(0.99 * len(lags)))],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=600)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--scale", type=float, default=10.0)
    ap.add_argument("--old", action="store_true", help="also the rows without a floor (issue 12)")
    ap.add_argument("--only", help="distributions whose name contains one of these (comma-separated)")
    ap.add_argument("--provider", choices=["ailab", "acedata", "both"], default="both")
    a = ap.parse_args()
    n, conc, dists = (
        (40, 20, dict(list(DISTRIBUTIONS.items())[1:2])) if a.quick else (a.n, a.concurrency, DISTRIBUTIONS)
    )
    if a.only:
        wanted = [w.strip().lower() for w in a.only.split(",")]
        dists = {k: v for k, v in dists.items() if any(w in k.lower() for w in wanted)}
    strategies = {**STRATEGIES, **(OLD if a.old else {})}
    providers = ["ailab", "acedata"] if a.provider == "both" else [a.provider]
    k = a.scale
    rows: list[dict[str, Any]] = []
    for provider in providers:
        for dname, spec in dists.items():
            with ChildEmulator("--task-distribution", f"{spec}/{k:g}") as emu:
                saved: str | None = None
                for sname, pol in strategies.items():
                    polls_key = f"{provider}_polls"
                    before = emu.stats().get(polls_key, 0)
                    if pol is None:
                        sdk_run = run_sdk if provider == "ailab" else run_ace_sdk
                        noticed = asyncio.run(sdk_run(emu.url, n, conc, k))
                        sname = SDK[provider]
                    else:
                        warm = (
                            aioface.DurationLearners.from_json(saved) if sname == "learned (warm)" and saved else None
                        )
                        noticed, learned = asyncio.run(run(emu.url, n, conc, pol.scaled(k), warm, k, provider))
                        if sname == "learned (cold)":
                            saved = learned.to_json()
                    polls = emu.stats().get(polls_key, 0) - before
                    lags = [(t - emu.task(task_id)["done_at"]) * k for task_id, t in noticed]
                    rows.append({"provider": provider, **_row(dname, sname, polls / n, lags)})
    for provider in providers:
        for dname in dists:
            by = {r["strategy"]: r for r in rows if r["distribution"] == dname and r["provider"] == provider}
            f = by[SDK[provider]]
            for s in ("learned (cold)", "learned (warm)"):
                r = by[s]
                r["beats_sdk"] = r["polls_per_task"] < f["polls_per_task"] and r["notice_mean_s"] < f["notice_mean_s"]
    report(
        "polling (emulator)",
        rows,
        [
            "provider",
            "distribution",
            "strategy",
            "polls_per_task",
            "notice_mean_s",
            "notice_p50_s",
            "notice_p99_s",
            "beats_sdk",
        ],
        {"n": n, "concurrency": conc, "scale": k},
    )


if __name__ == "__main__":
    main()
