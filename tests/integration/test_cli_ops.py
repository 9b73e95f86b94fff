"""The whole Ace Data face family on the command line (commands made from the registry) and in batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aioface.cli import app
from aioface.providers import operations
from tests.support.cli import EmulatorProcess, aioface
from tests.support.files import files_in

main = app()
URL = "https://cdn.acedata.cloud/n1lmd8.png"


@pytest.fixture(scope="module")
def emulator(fast_emulator: EmulatorProcess) -> EmulatorProcess:
    return fast_emulator


def test_every_registry_operation_is_a_command() -> None:
    for op in operations():
        assert op.replace("_", "-") in main.commands, op
    for cmd in ("change-gender", "beautify", "cartoon", "analyze", "detect-live"):
        assert "Example" in (main.commands[cmd].help or "")


def test_image_ops_and_typed_facts(emulator: EmulatorProcess, tmp_path: Path) -> None:
    env = emulator.env(tmp_path)
    out = tmp_path / "o"
    r = aioface("change-gender", URL, "--gender", "1", "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    r = aioface("beautify", URL, "https://cdn.acedata.cloud/3np95r.png", "--out", str(out), "-q", env=env)
    assert r.returncode == 0, r.stderr
    r = aioface("cartoon", URL, "--name", "toon", "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    assert files_in(out) == ["beautify-1.png", "beautify-2.png", "change-gender.png", "toon.png"]

    r = aioface("analyze", URL, "--json", env=env)
    assert r.returncode == 0, r.stderr
    line = json.loads(r.stdout)
    # The spec's shapes (issue 20): 90 key points per face, no age/gender/beauty; a score, no is_live.
    assert line["provider"] == "acedata" and line["face_num"] == 1 and len(line["faces"][0]["mouth"]) == 22
    r = aioface("analyze", URL, env=env)
    assert r.returncode == 0 and "key points" in r.stdout and "90" in r.stdout  # a table
    r = aioface("detect-live", URL, URL, "--json", env=env)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert all(isinstance(x["score"], float) and "is_live" not in x for x in lines)


def test_bad_values_are_usage_errors_and_send_nothing(emulator: EmulatorProcess, tmp_path: Path) -> None:
    env = emulator.env(tmp_path)
    r = aioface("change-gender", URL, "--gender", "7", env=env)
    assert r.returncode == 2 and "genders" in r.stderr
    r = aioface("analyze", "ftp://x/y.png", env=env)
    assert r.returncode == 2
    r = aioface("change-age", URL, "--age", "60", "--face-rect", "1,2,3", env=env)
    assert r.returncode == 2 and "X,Y,W,H" in r.stderr
    r = aioface("change-age", URL, "--age", "60", "--age", "20", "--face-rect", "1,2,3,4", env=env)
    assert r.returncode == 2 and "face_rects" in r.stderr
    r = aioface("swap", "--provider", "ailab", "--source", "a.jpg", "--target", "b.jpg", "--timeout", "30", env=env)
    assert r.returncode == 2 and "timeout" in r.stderr


def test_face_rects_and_swap_timeout(emulator: EmulatorProcess, tmp_path: Path) -> None:
    env = emulator.env(tmp_path)
    out = tmp_path / "o"
    r = aioface("change-age", URL, "--age", "60", "--face-rect", "10,20,100,120", "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    r = aioface("swap", "--source", URL, "--target", URL, "--timeout", "30", "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    assert files_in(out) == ["aged.png", "swapped.png"]


def test_batch_runs_the_family(emulator: EmulatorProcess, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    lines = [
        {"id": "g", "op": "change_gender", "image_url": URL, "genders": [0]},
        {"id": "b", "op": "beautify", "image_url": URL},
        {"id": "c", "op": "cartoon", "image_url": URL},
        {"id": "a", "op": "analyze", "image_url": URL},
        {"id": "l", "op": "detect_live", "image_url": URL},
        {"id": "r", "op": "change_age", "image_url": URL, "ages": [50],
         "face_rects": [{"x": 1, "y": 2, "width": 30, "height": 40}]},
        {"id": "s", "op": "swap", "source": URL, "target": URL, "timeout": 30},
    ]  # fmt: skip
    jobs.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "out"
    r = aioface("batch", str(jobs), "--out", str(out), "-q", env=emulator.env(tmp_path))
    assert r.returncode == 0, r.stderr + r.stdout
    recs = {x["id"]: x for x in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert all(x["ok"] for x in recs.values()), recs
    assert recs["a"]["face_num"] == 1 and "path" not in recs["a"]
    assert isinstance(recs["l"]["score"], float) and "is_live" not in recs["l"]  # the spec sends no is_live
    assert recs["g"]["path"] == "g.png" and recs["r"]["path"] == "r.png"
    # A rerun pays for nothing again: facts are done by their journal line alone, images by their file.
    r = aioface("batch", str(jobs), "--out", str(out), "-q", env=emulator.env(tmp_path))
    assert r.returncode == 0 and "0 ok, 0 failed, 7 already done" in r.stdout + r.stderr, r.stdout + r.stderr


def test_name_and_out_are_checked_before_sending(emulator: EmulatorProcess, tmp_path: Path) -> None:
    env = emulator.env(tmp_path)
    (tmp_path / "afile").write_text("")
    r = aioface("beautify", URL, "--name", "a/b", env=env)
    assert r.returncode == 2 and "--name" in r.stderr
    r = aioface("cartoon", URL, "--out", str(tmp_path / "afile"), env=env)
    assert r.returncode == 2 and "--out" in r.stderr
    r = aioface("analyze", URL, "--out", str(tmp_path / "afile" / "sub"), "--json", env=env)
    assert r.returncode == 0, r.stderr  # facts write nothing: --out is not checked


def test_result_goes_on_waiting_for_a_task_submitted_earlier(emulator: EmulatorProcess, tmp_path: Path) -> None:
    """A swap whose run ended (or timed out) is not paid again: ``aioface result`` fetches it by id,
    and batch takes the same operation."""
    import asyncio

    import aioface as lib
    from tests.support.files import image_bytes

    env = emulator.env(tmp_path)

    async def submit() -> tuple[str, str]:
        async with lib.Client(env=env) as c:
            ace = await c.acedata.submit_swap(source=URL, target=URL, callback_url=f"{emulator.url}/nowhere")
            ailab = await c.ailab.submit(source=image_bytes(), target=image_bytes("PNG"))
        return ace, ailab

    ace_id, ailab_id = asyncio.run(submit())
    out = tmp_path / "out"
    r = aioface("result", "--task-id", ace_id, "--provider", "acedata", "--name", "ace", "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    r = aioface("result", "--task-id", ailab_id, "--provider", "ailab", "--name", "lab", "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    assert files_in(out) == ["ace.png", "lab.jpg"]
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"id": "again", "op": "result", "provider": "ailab", "task_id": ailab_id}) + "\n")
    r = aioface("batch", str(jobs), "--out", str(tmp_path / "b"), "-q", env=env)
    assert r.returncode == 0, r.stderr
    r = aioface("result", "--task-id", "no-such-task", "--provider", "ailab", "--out", str(out), env=env)
    assert r.returncode == 1 and "no-such-task" in r.stderr


@pytest.mark.anyio
async def test_face_rects_and_swap_timeout_reach_the_provider(tmp_path: Path) -> None:
    """What the options put on the wire, seen by a server of the test's own (not only file names)."""
    from aiohttp import web

    from tests.support.cli import cli_env, run_cli
    from tests.support.servers import picture, serve

    bodies: dict[str, dict[str, object]] = {}

    async def face(request: web.Request) -> web.Response:
        bodies[request.match_info["op"]] = await request.json()
        return web.json_response({"success": True, "image_url": f"{base}/img.png", "task_id": "t1"})

    async def img(request: web.Request) -> web.Response:
        return web.Response(body=picture(), content_type="image/png")

    app = web.Application()
    app.router.add_post("/face/{op}", face)
    app.router.add_get("/img.png", img)
    async with serve(app) as base:
        env = cli_env(tmp_path, base)
        out = str(tmp_path / "o")
        r = await run_cli("change-age", URL, "--age", "60", "--face-rect", "10,20,100,120", "--out", out, env=env)
        assert r.returncode == 0, r.stderr
        r = await run_cli("swap", "--source", URL, "--target", URL, "--timeout", "30", "--out", out, env=env)
        assert r.returncode == 0, r.stderr
    rect = {"x": 10, "y": 20, "width": 100, "height": 120}
    assert bodies["change-age"]["age_infos"] == [{"age": 60, "face_rect": rect}]
    assert bodies["swap"]["timeout"] == 30


@pytest.mark.anyio
async def test_cli_swap_takes_a_float_timeout_and_an_explicit_sync_mode(tmp_path: Path) -> None:
    """``--timeout`` is a number (the spec's type) and ``--sync`` holds the connection; without it the
    swap goes with ``async: true`` and its task is polled."""
    from aiohttp import web

    from tests.support.cli import cli_env, run_cli
    from tests.support.servers import picture, serve

    bodies: list[dict[str, object]] = []

    async def swap(request: web.Request) -> web.Response:
        body = await request.json()
        bodies.append(body)
        if body.get("async"):
            return web.json_response({"task_id": "t-async"})
        return web.json_response({"success": True, "image_url": f"{base}/img.png", "task_id": "t-sync"})

    async def tasks(request: web.Request) -> web.Response:
        done = {"success": True, "image_url": f"{base}/img.png", "task_id": "t-async"}
        return web.json_response({"id": "t-async", "response": done, "finished_at": 1})

    async def img(request: web.Request) -> web.Response:
        return web.Response(body=picture(), content_type="image/png")

    app = web.Application()
    app.router.add_post("/face/swap", swap)
    app.router.add_post("/face/tasks", tasks)
    app.router.add_get("/img.png", img)
    async with serve(app) as base:
        env = cli_env(tmp_path, base)
        out = str(tmp_path / "o")
        r = await run_cli(
            "swap", "--source", URL, "--target", URL, "--timeout", "12.5", "--sync", "--out", out, env=env
        )
        assert r.returncode == 0, r.stderr
        r = await run_cli("swap", "--source", URL, "--target", URL, "--name", "b", "--out", out, env=env)
        assert r.returncode == 0, r.stderr
        r = await run_cli("swap", "--source", URL, "--target", URL, "--timeout", "0", "--out", out, env=env)
        assert r.returncode == 2 and len(bodies) == 2, r.stderr
    assert bodies[0]["timeout"] == 12.5 and not bodies[0].get("async")
    assert bodies[1].get("async") is True
