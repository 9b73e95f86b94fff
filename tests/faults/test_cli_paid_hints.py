"""A result the provider did (and billed) but that could not be kept: the CLI says how to get it back.

A tiny server plays AILab (a task done at the first poll) and Face Studio, both answering a PNG whose
header claims 60000x60000 pixels: the result is refused, and the line printed names the task, the
command that fetches it again and the result URL (or, for Face Studio, the request id).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from aiohttp import web

from tests.support.cli import cli_env, run_cli
from tests.support.servers import picture, png_claiming, serve

pytestmark = pytest.mark.anyio

BOMB = png_claiming(60000, 60000)


def bomb_app(hits: Counter[str]) -> web.Application:
    app = web.Application()

    async def submit(request: web.Request) -> web.Response:
        hits["submit"] += 1
        await request.read()
        return web.json_response({"error_code": 0, "task_id": "t-paid-9"})

    async def poll(request: web.Request) -> web.Response:
        data = {"image": f"http://{request.host}/result/bomb.png"}
        return web.json_response({"error_code": 0, "task_status": 2, "data": data})

    async def generate(request: web.Request) -> web.Response:
        hits["generate"] += 1
        return web.Response(body=BOMB, content_type="image/png", headers={"X-Request-Id": "req-77"})

    async def result(request: web.Request) -> web.Response:
        return web.Response(body=BOMB, content_type="image/png")

    async def face(request: web.Request) -> web.Response:  # the swap's inputs, fetched by the client
        return web.Response(body=picture(), content_type="image/png")

    app.router.add_post("/api/portrait/editing/ai-face-swap", submit)
    app.router.add_get("/api/common/query-async-task-result", poll)
    app.router.add_get("/v1/generate", generate)
    app.router.add_get("/result/bomb.png", result)
    app.router.add_get("/in/{name}", face)
    return app


async def test_cli_names_the_task_the_command_and_the_url_of_a_result_it_could_not_keep(tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    async with serve(bomb_app(hits)) as url:
        r = await run_cli(
            "swap", "--provider", "ailab", "--source", f"{url}/in/a.png", "--target", f"{url}/in/b.png",
            "--out", str(tmp_path / "out"), env=cli_env(tmp_path, url),
        )  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert hits["submit"] == 1
    assert "aioface result --task-id t-paid-9 --provider ailab" in r.stderr
    assert f"{url}/result/bomb.png" in r.stderr
    assert "hostile-key" not in r.stderr + r.stdout


async def test_cli_names_the_request_id_of_a_face_studio_result_it_could_not_keep(tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    async with serve(bomb_app(hits)) as url:
        r = await run_cli("generate", "--out", str(tmp_path / "out"), env=cli_env(tmp_path, url))
    assert r.returncode == 1, r.stderr
    assert hits["generate"] == 1
    assert "paid for but not saved (request req-77)" in r.stderr
