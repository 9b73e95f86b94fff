"""Local images for Ace Data (issue 20): a path or bytes is checked here, then uploaded to the
platform's file API (``POST /api/v1/files/``, multipart ``file``, the same token) and its URL sent."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import aioface
from aioface.emulator import Emulator
from tests.support.files import files_in, image_bytes
from tests.support.servers import picture, png_claiming, serve

pytestmark = pytest.mark.anyio
URL = "https://cdn.acedata.cloud/n1lmd8.png"


async def test_swap_of_local_files_uploads_them_first(emu: Emulator, tmp_path: Path) -> None:
    face = tmp_path / "me.jpg"
    face.write_bytes(image_bytes("JPEG", color="blue"))
    scene = image_bytes("PNG", (80, 60), "green")
    async with emu.client() as c, aiohttp.ClientSession() as s:
        r = await c.acedata.swap(tmp_path / "out", source=str(face), target=scene)
        uploaded = [(n, e) for n, e in emu.state.files.items() if e.data is not None]
        served = {n: await (await s.get(f"{emu.url}/files/{n}")).read() for n, _ in uploaded}
        aged = await c.acedata.change_age(face, [60], tmp_path / "aged")  # a PathLike, any operation
    assert emu.stats["acedata_uploads"] == 3 and r.task_id and r.path is not None
    assert sorted(served.values(), key=len) == sorted([face.read_bytes(), scene], key=len)  # as they were
    request = emu.state.tasks[r.task_id].request
    assert request is not None and {request["source_image_url"], request["target_image_url"]} == {
        f"{emu.url}/files/{n}" for n, _ in uploaded
    }
    assert aged.path is not None and files_in(tmp_path) == ["aged.png", "me.jpg", "out.png"]


def _fifo(tmp_path: Path) -> Path:
    p = tmp_path / "pipe.png"
    os.mkfifo(p)
    return p


@pytest.mark.parametrize(
    ("make", "rule"),
    [
        (lambda tmp: b"not an image at all", "format"),
        (lambda tmp: png_claiming(30000, 30000), "dimensions"),
        (lambda tmp: b"\x89PNG" + bytes(11 * 1024 * 1024), "max_bytes"),
        (_fifo, "not_a_file"),
    ],
    ids=["not-an-image", "bomb", "too-big", "fifo"],
)
async def test_bad_local_images_are_refused_before_anything_is_sent(
    emu: Emulator, tmp_path: Path, make: Any, rule: str
) -> None:
    bad = make(tmp_path)
    good = tmp_path / "good.png"
    good.write_bytes(image_bytes("PNG"))
    async with emu.client() as c:
        with pytest.raises(aioface.ImageRejectedError) as ei:
            await c.acedata.swap(tmp_path / "x", source=str(good), target=str(bad) if isinstance(bad, Path) else bad)
    assert ei.value.rule == rule and ei.value.param == "target"
    assert emu.stats["acedata_uploads"] == 0 and emu.stats["acedata_requests"] == 0  # not even the good one


async def test_a_missing_file_is_an_invalid_request(emu: Emulator, tmp_path: Path) -> None:
    async with emu.client() as c:
        with pytest.raises(aioface.InvalidRequestError) as ei:
            await c.acedata.cartoon(str(tmp_path / "nope.png"))
    assert ei.value.param == "image_url" and emu.stats["acedata_uploads"] == 0


async def test_the_token_goes_to_the_platform_and_the_api_only(tmp_path: Path) -> None:
    """Upload to the configured platform, swap at the API, download from a third host without the token."""
    img = picture()
    seen: dict[str, list[str]] = {"upload": [], "api": [], "file": []}

    async def upload(request: web.Request) -> web.Response:
        seen["upload"].append(request.headers.get("authorization", ""))
        form = await request.post()
        part = form["file"]
        assert isinstance(part, web.FileField) and part.file.read() == img
        return web.json_response({"url": "https://files.example/uploaded.png"})

    platform = web.Application()
    platform.router.add_post("/api/v1/files/", upload)

    async def file(request: web.Request) -> web.Response:
        seen["file"].append(request.headers.get("authorization", ""))
        return web.Response(body=img, content_type="image/png")

    files = web.Application()
    files.router.add_get("/r.png", file)
    async with serve(platform) as plat, serve(files) as cdn:

        async def face(request: web.Request) -> web.Response:
            seen["api"].append(request.headers.get("authorization", ""))
            body = await request.json()
            assert body["image_url"] == "https://files.example/uploaded.png"
            return web.json_response({"image_url": f"{cdn}/r.png"})

        api = web.Application()
        api.router.add_post("/face/{op}", face)
        async with (
            serve(api) as base,
            aioface.Client(
                acedata_token="tok-3141",
                acedata_base_url=base,
                options={"acedata": {"platform_url": plat}},
                persist_limits=False,
                env={},
            ) as c,
        ):
            assert c.acedata.platform_url() == plat
            r = await c.acedata.cartoon(img, tmp_path / "toon")
    assert seen == {"upload": ["Bearer tok-3141"], "api": ["Bearer tok-3141"], "file": [""]}
    assert r.path is not None and r.path.read_bytes() == img


def test_platform_url_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIOFACE_ACEDATA_PLATFORM_URL", raising=False)
    assert aioface.Client(env={}, persist_limits=False).acedata.platform_url() == "https://platform.acedata.cloud"
    proxy = aioface.Client(acedata_base_url="https://proxy.example/ace", env={}, persist_limits=False)
    assert proxy.acedata.platform_url() == "https://proxy.example/ace"  # no new host gets the token
    monkeypatch.setenv("AIOFACE_ACEDATA_PLATFORM_URL", "https://platform.example/")
    assert aioface.Client(env={}, persist_limits=False).acedata.platform_url() == "https://platform.example"
    given = aioface.Client(options={"acedata": {"platform_url": "http://127.0.0.1:9"}}, persist_limits=False)
    assert given.acedata.platform_url() == "http://127.0.0.1:9"
    with pytest.raises(aioface.ConfigurationError):
        aioface.Client(options={"acedata": {"platform_url": "ftp://x"}}, persist_limits=False).acedata.platform_url()
