"""Faults, bad input and hostile answers: nothing is lost, nothing half-written, nothing sent in vain."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest
from aiohttp import web
from PIL import Image

from aioface import (
    AiofaceError,
    Client,
    ConfigurationError,
    InvalidRequestError,
    PollPolicy,
    RetryPolicy,
)
from aioface._net import bound_port
from aioface.emulator import Emulator, EmulatorConfig, Faults
from aioface.jobs._batch import JobError, parse_job, run_batch
from tests.support.files import files_in, image_bytes

pytestmark = pytest.mark.anyio
FAST_RETRY = RetryPolicy(max_retries=3, base=0.01, cap=0.05, max_wait=2.0)
FAST_POLL = PollPolicy(initial=0.02, max_interval=0.1, deadline=3.0)
HIGH = {"facestudio": "100000/s", "acedata": "100000/s", "ailab": "100000/s"}


def _jobs(path: Path, face: Path, n: int) -> None:
    lines = []
    for i in range(n):
        if i % 10 < 7:
            job: dict[str, Any] = {"id": f"g{i}", "op": "generate", "seed": i + 1, "resolution": 128}
        elif i % 10 < 9:
            job = {"id": f"c{i}", "op": "change_age", "image_url": f"https://cdn.example/{i}.png", "ages": [60]}
        else:
            job = {"id": f"s{i}", "op": "swap", "provider": "ailab", "source": str(face), "target": str(face)}
        lines.append(json.dumps(job))
    path.write_text("\n".join(lines) + "\n")


async def test_thousand_jobs_under_ten_percent_faults_lose_nothing(tmp_path: Path) -> None:
    n = 1000
    face = tmp_path / "face.png"
    face.write_bytes(image_bytes("PNG"))
    jobs = tmp_path / "jobs.jsonl"
    _jobs(jobs, face, n)
    out = tmp_path / "out"
    faults = Faults.mixed(0.10, stalls=True, stall_seconds=3.0)
    faults.task_fail = 0.03
    faults.result_missing = 0.02
    cfg = EmulatorConfig(
        keys={"emulator-demo-key": "enterprise"}, time_scale=1e6, task_duration=0.02, faults=faults, seed=5
    )
    proc = psutil.Process()
    rss: list[int] = []

    def on_outcome(o: Any, s: Any) -> None:
        if s.total in (200, n):
            rss.append(proc.memory_info().rss)

    async with Emulator(cfg) as emu:
        async with emu.client(limits=HIGH, retry=FAST_RETRY, poll=FAST_POLL, timeout=1.0) as c:
            summary = await run_batch(c, jobs, out, concurrency=32, on_outcome=on_outcome)
            stats = {p: dict(c.stats(p)) for p in ("facestudio", "acedata", "ailab", "download")}
        injected = emu.stats["faults"]
        kinds = {k[6:]: v for k, v in emu.stats.items() if k.startswith("fault_")}
    recs = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    ids = [r["id"] for r in recs]
    assert len(ids) == n and len(set(ids)) == n  # every job recorded, once
    assert summary.ok + summary.failed == n
    for r in recs:
        if r["ok"]:
            path = out / r["path"]
            assert path.stat().st_size == r["bytes"]
            with Image.open(path) as im:
                im.verify()  # a whole, decodable image
        else:
            assert r["error"]["type"] and r["error"]["code"] and r["error"]["message"]
    assert not [x for x in files_in(out) if x.endswith(".part")]
    oks = sum(r["ok"] for r in recs)
    assert len([x for x in files_in(out) if not x.startswith(("results", ".aioface"))]) == oks
    requests = sum(s["requests"] for s in stats.values())
    retries = sum(s["retries"] for s in stats.values())
    assert retries <= FAST_RETRY.max_retries * requests
    assert injected >= 100 and len(kinds) >= 8
    assert oks >= 0.8 * n  # GETs and provably-unprocessed POSTs recover
    assert rss[-1] - rss[0] < 60 * 2**20, "memory grew during the batch"
    print(
        f"\nFIGURES jobs={n} ok={oks} failed={n - oks} faults_injected={injected} kinds={dict(sorted(kinds.items()))} "
        f"requests={requests} retries={retries} lost=0 recorded_twice=0 part_files=0 "
        f"errors={dict(Counter(r['error']['code'] for r in recs if not r['ok']))}"
    )


async def test_bad_input_corpus_sends_nothing(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8\xff" + bytes(6 * 1024 * 1024))
    text = tmp_path / "face.png"
    text.write_bytes(b"definitely not a PNG")
    folder = tmp_path / "a-folder.jpg"
    folder.mkdir()
    good = image_bytes()
    async with Emulator(EmulatorConfig()) as emu, emu.client() as c:
        calls = [
            lambda: c.facestudio.generate(tmp_path / "x", age="30"),  # type: ignore[arg-type]
            lambda: c.facestudio.generate(tmp_path / "x", age=30.0),  # type: ignore[arg-type]
            lambda: c.facestudio.generate(tmp_path / "x", age=-5),
            lambda: c.facestudio.generate(tmp_path / "x", resolution=4096),
            lambda: c.facestudio.generate(tmp_path / "x", ethnicity=None, gender="robot"),
            lambda: c.facestudio.generate(tmp_path / "x", stampless=1),  # type: ignore[arg-type]
            lambda: c.acedata.change_age("file:///etc/passwd", [30], tmp_path / "x"),
            lambda: c.acedata.change_age("javascript:alert(1)", [30], tmp_path / "x"),
            lambda: c.acedata.change_age("ftp://host/a.png", [30], tmp_path / "x"),
            lambda: c.acedata.change_age("", [30], tmp_path / "x"),
            lambda: c.acedata.change_age("https://a/b.png", "60", tmp_path / "x"),  # type: ignore[arg-type]
            lambda: c.acedata.change_age("https://a/b.png", [30.5], tmp_path / "x"),  # type: ignore[list-item]
            lambda: c.acedata.change_gender("https://a/b.png", [True], tmp_path / "x"),
            lambda: c.acedata.swap(tmp_path / "x", source="https://a/b.png", target="gopher://x/y"),
            lambda: c.acedata.swap(tmp_path / "x", source="https://a/b.png", target="https://a/c.png", timeout="60"),  # type: ignore[arg-type]
            lambda: c.ailab.swap(tmp_path / "x", source=good, target=big),
            lambda: c.ailab.swap(tmp_path / "x", source=good, target=text),
            lambda: c.ailab.swap(tmp_path / "x", source=good, target=folder),
            lambda: c.ailab.swap(tmp_path / "x", source=b"", target=good),
            lambda: c.ailab.swap(tmp_path / "x", source=tmp_path / "missing.png", target=good),
        ]
        for i, call in enumerate(calls):
            with pytest.raises(InvalidRequestError) as ei:
                await call()  # type: ignore[no-untyped-call]
            assert ei.value.message, i
        for spec in ["5/fortnight", "five/minute", "0/s", "", "5/-1s", "1/s,,x"]:
            with pytest.raises(ConfigurationError, match="limit"):
                Client(limits={"facestudio": spec}, env={})
        with pytest.raises(ConfigurationError):
            Client(facestudio_base_url="file:///tmp", env={})
        with pytest.raises(ConfigurationError):
            Client(limits={"nobody": "1/s"}, env={})
        for raw in [
            b'{"id": "x", "op": "levitate"}',
            b'{"id": "x", "op": "generate", "age": "old"}',
            b'{"id": "x", "op": "generate", "pad": "' + b"y" * 100_000 + b'"}',
            b"\xff\xfe garbage",
        ]:
            with pytest.raises(JobError):
                parse_job(raw, 1)
        assert sum(v for k, v in emu.stats.items() if k.endswith("_requests")) == 0
    assert files_in(tmp_path) == ["big.jpg", "face.png"]


async def test_redirect_to_another_scheme_is_refused_and_nothing_written(tmp_path: Path) -> None:
    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("file:///etc/passwd")

    app = web.Application()
    app.router.add_get("/r", redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        async with Emulator() as emu, emu.client(retry=FAST_RETRY) as c:
            with pytest.raises(AiofaceError):
                await c.download(f"http://127.0.0.1:{bound_port(site)}/r", tmp_path / "stolen")
    finally:
        await runner.cleanup()
    assert files_in(tmp_path) == []


async def test_stalled_bodies_time_out_and_get_retried(tmp_path: Path) -> None:
    faults = Faults(schedule={"files": ["stall_body", None]}, stall_seconds=5.0)
    async with Emulator(EmulatorConfig(faults=faults)) as emu, emu.client(timeout=0.5, retry=FAST_RETRY) as c:
        r = await c.acedata.cartoon("https://a.b/c.png", tmp_path / "slow")
        assert c.stats("download")["retries"] == 1
    assert r.path is not None
    assert r.path.stat().st_size == r.bytes and files_in(tmp_path) == ["slow.png"]


async def test_expired_result_url_is_not_found(tmp_path: Path) -> None:
    from aioface import NotFoundError

    # Results live result_ttl seconds (AILab documents 24 hours); here 0.05 s, and the task takes longer.
    cfg = EmulatorConfig(result_ttl=0.05, task_duration=0.01)
    async with Emulator(cfg) as emu, emu.client(poll=FAST_POLL) as c:
        task_id = await c.ailab.submit(source=image_bytes(), target=image_bytes())
        url = await c.ailab.wait(task_id)
        import anyio

        await anyio.sleep(0.1)
        with pytest.raises(NotFoundError) as ei:
            await c.download(url, tmp_path / "late")
    assert ei.value.status == 404 and files_in(tmp_path) == []
