"""Routed swaps from the CLI (``aioface swap --provider auto``) and in batches (``"provider": "auto"``),
and a batch resumed after its task was created: it waits for that task and never pays twice."""

from __future__ import annotations

import json
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import aioface
from aioface import PollPolicy, RetryPolicy
from aioface.emulator import Emulator, EmulatorConfig
from aioface.jobs._batch import JobError, parse_job, run_batch
from tests.support.cli import cli_env, journal_lines, run_cli
from tests.support.servers import picture, serve

pytestmark = pytest.mark.anyio

FACE = picture("JPEG", (160, 160))


def closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


async def test_cli_swap_auto_fails_over_and_says_who_served_it(tmp_path: Path) -> None:
    face = tmp_path / "me.jpg"
    face.write_bytes(FACE)
    async with Emulator(EmulatorConfig(task_duration=0.05)) as emu:
        env = cli_env(tmp_path, emu.url, AIOFACE_ACEDATA_BASE_URL=closed_url())
        r = await run_cli("swap", "--provider", "auto", "--source", str(face), "--target", str(face),
                          "--out", str(tmp_path / "out"), env=env, timeout=60)  # fmt: skip
        bad = await run_cli("swap", "--provider", "ailab,facestudio", "--source", "a", "--target", "b", env=env)
        timeout = await run_cli(
            "swap", "--provider", "auto", "--timeout", "5", "--source", "a", "--target", "b", env=env
        )
    assert r.returncode == 0, r.stderr
    said = " ".join(r.stdout.split())
    assert "ailab after acedata could not take it" in said
    assert emu.stats["ailab_tasks"] == 1
    assert len(list((tmp_path / "out").iterdir())) == 1
    assert bad.returncode == 2 and "choose auto or from" in bad.stderr
    assert timeout.returncode == 2 and "--timeout" in timeout.stderr


def test_auto_jobs_are_checked_before_anything_is_sent() -> None:
    ok = parse_job(b'{"id": 1, "op": "swap", "provider": "auto", "source": "a.jpg", "target": "b.jpg"}', 1)
    assert ok.provider == "auto" and ok.params == {"source": "a.jpg", "target": "b.jpg"}
    for line in (
        b'{"id": 1, "op": "swap", "provider": "auto", "source": "a.jpg"}',
        b'{"id": 1, "op": "swap", "provider": "auto", "source": "a", "target": "b", "timeout": 5}',
        b'{"id": 1, "op": "swap", "provider": "auto", "source": "a", "target": "b", "route": "random"}',
        b'{"id": 1, "op": "swap", "provider": "auto", "source": "a", "target": "b", "providers": ["facestudio"]}',
        b'{"id": 1, "op": "generate", "provider": "auto"}',
    ):
        with pytest.raises(JobError):
            parse_job(line, 1)


def app_with_slow_task(hits: Counter[str], state: dict[str, bool]) -> web.Application:
    """AILab whose one task stays processing until ``state["done"]``; Ace counted, never to be asked."""
    app = web.Application()

    async def submit(request: web.Request) -> web.Response:
        hits[request.path] += 1
        await request.read()
        return web.json_response({"error_code": 0, "task_id": "t-7"})

    async def poll(request: web.Request) -> web.Response:
        hits[request.path] += 1
        if not state["done"]:
            return web.json_response({"error_code": 0, "task_status": 1})
        img = f"http://{request.host}/img.jpg"
        return web.json_response({"error_code": 0, "task_status": 2, "data": {"image": img}})

    async def ace(request: web.Request) -> web.Response:
        hits[request.path] += 1
        return web.json_response({"error": {"code": "unexpected"}}, status=500)

    async def img(request: web.Request) -> web.Response:
        return web.Response(body=FACE, content_type="image/jpeg")

    app.router.add_post("/api/portrait/editing/ai-face-swap", submit)
    app.router.add_get("/api/common/query-async-task-result", poll)
    app.router.add_post("/face/{op}", ace)
    app.router.add_get("/img.jpg", img)
    return app


def client(url: str, **kw: Any) -> aioface.Client:
    return aioface.Client(
        keys={"facestudio": "k", "acedata": "k", "ailab": "k"},
        base_urls={"facestudio": url, "acedata": url, "ailab": url},
        retry=RetryPolicy(max_retries=0),
        persist_limits=False,
        env={},
        **kw,
    )


async def test_a_resumed_batch_waits_for_the_task_it_created_and_never_pays_twice(tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    state = {"done": False}
    jobs = tmp_path / "jobs.jsonl"
    line = {
        "id": "a",
        "op": "swap",
        "provider": "auto",
        "source": "x",
        "target": "x",
        "providers": ["ailab", "acedata"],
    }
    out = tmp_path / "out"
    async with serve(app_with_slow_task(hits, state)) as url:
        line["source"] = line["target"] = f"{url}/img.jpg"
        jobs.write_text(json.dumps(line) + "\n")
        short = PollPolicy(initial=0.02, deadline=0.3, learn=False, jitter=0.0)
        async with client(url, poll=short) as c:
            first = await run_batch(c, jobs, out)
        assert first.failed == 1
        (failed,) = journal_lines(out / "results.jsonl")
        assert failed["error"]["code"] == "task_timeout"
        assert failed["error"]["task_id"] == "t-7" and failed["error"]["served_by"] == "ailab"

        state["done"] = True
        async with client(url, poll=PollPolicy(initial=0.02, deadline=5, learn=False, jitter=0.0)) as c:
            second = await run_batch(c, jobs, out)
        async with client(url) as c:
            third = await run_batch(c, jobs, out)
    assert second.ok == 1 and third.skipped == 1
    assert hits["/api/portrait/editing/ai-face-swap"] == 1  # one task, paid once, over three runs
    assert not any(p.startswith("/face/") for p in hits)
    done = journal_lines(out / "results.jsonl")[-1]
    assert done["ok"] is True and done["provider"] == "ailab" and done["task_id"] == "t-7"
    assert (out / done["path"]).read_bytes() == FACE
