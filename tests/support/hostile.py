"""Helpers for the hostile-conditions tests: tiny misbehaving servers, CLI runs, scratch file systems.

Everything here is bounded: servers bind 127.0.0.1 on a free port and stop their handlers on
cleanup, CLI runs are killed at their timeout, mounts are undone however the test ends.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import struct
import subprocess
import sys
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
from aiohttp import web
from PIL import Image

import aioface
from tests.conftest import image_bytes

JPEG = image_bytes("JPEG", (64, 64))
SUBMIT = "/api/portrait/editing/ai-face-swap"
RESULT = "/api/common/query-async-task-result"
PROVIDERS = ["facestudio", "acedata", "ailab"]


def noise_jpeg(side: int, quality: int = 95) -> bytes:
    """A JPEG of random pixels: big for its size (about ``side * side * 1.1`` bytes at quality 95)."""
    im = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width x height`` pixels (a decompression bomb by its header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) and yield its base URL; handlers still running at
    the end are cancelled after a short grace."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def trickle(
    request: web.Request, body: bytes, *, head: int, step: float, seconds: float = 10.0
) -> web.StreamResponse:
    """Answer 200 with ``Content-Length`` and ``body``: ``head`` bytes at once, then one byte every
    ``step`` seconds for at most ``seconds`` (then the handler gives up and closes)."""
    resp = web.StreamResponse(headers={"Content-Type": "image/jpeg", "Content-Length": str(len(body))})
    await resp.prepare(request)
    await resp.write(body[:head])
    with anyio.move_on_after(seconds), contextlib.suppress(ConnectionError):
        for i in range(head, len(body)):
            await anyio.sleep(step)
            await resp.write(body[i : i + 1])
    return resp


def cli_env(tmp: Path, base_url: str, **extra: str) -> dict[str, str]:
    """The environment of a CLI run whose three providers all live at ``base_url``."""
    env = dict(os.environ)
    for p in ("FACESTUDIO", "ACEDATA", "AILAB"):
        env[f"AIOFACE_{p}_BASE_URL"] = base_url
    env.update(
        AIOFACE_FACESTUDIO_KEY="hostile-key-0001",
        AIOFACE_ACEDATA_TOKEN="hostile-token-0002",
        AIOFACE_AILAB_KEY="hostile-key-0003",
        AIOFACE_CACHE_DIR=str(tmp / "cache"),
        AIOFACE_FACESTUDIO_LIMITS="1000/s",
    )
    env.update(extra)
    return env


async def run_cli(
    *args: str, env: dict[str, str], input: bytes | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """``python -m aioface ARGS`` as a child process (killed at ``timeout``: the test then fails)."""
    with anyio.fail_after(timeout):
        r = await anyio.run_process(
            [sys.executable, "-m", "aioface", *args], input=input, env=env, check=False, stdin=None
        )
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(), r.stderr.decode())


def journal_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a results.jsonl, each of which must be one JSON object."""
    out = []
    for raw in path.read_bytes().splitlines():
        rec = json.loads(raw)
        assert isinstance(rec, dict)
        out.append(rec)
    return out


def part_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.part"))


# ------------------------------------------------------------------------------ file systems
def _run(*cmd: str) -> bool:
    return subprocess.run(cmd, capture_output=True, timeout=20).returncode == 0


@contextlib.contextmanager
def tmpfs(where: Path, size: str = "2m") -> Iterator[Path]:
    """A fresh tmpfs of ``size`` mounted at ``where`` (skips the test when it cannot mount one)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    where.mkdir(parents=True, exist_ok=True)
    if not _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)):
        pytest.skip("cannot mount a tmpfs here (no CAP_SYS_ADMIN?)")
    try:
        yield where
    finally:
        if not _run("umount", str(where)):
            _run("umount", "-l", str(where))


def remount_readonly(where: Path) -> None:
    """Make a mount made by :func:`tmpfs` read-only (as root, file modes would not stop writes)."""
    assert _run("mount", "-o", "remount,ro", str(where)), "remount read-only failed"


def fill(where: Path, leave: int = 0) -> Path:
    """Fill the file system of ``where`` until at most ``leave`` bytes are free."""
    filler = where / "filler.bin"
    with open(filler, "wb") as f:
        while True:
            st = os.statvfs(where)
            free = st.f_bavail * st.f_frsize
            if free <= leave:
                break
            try:
                f.write(b"\0" * min(1 << 16, free - leave))
                f.flush()
            except OSError:
                break
    return filler


def provider_app(
    hits: Counter[str], image: bytes, *, stall_after: int | None = None, queries: list[dict[str, str]] | None = None
) -> web.Application:
    """A fake of all three providers on one host, counting requests by path in ``hits``.

    Face Studio answers ``image``; Ace Data answers an ``image_url`` here; AILab creates a task
    that is done at the first poll. ``stall_after``: Face Studio answers that many images, then
    sends the headers and the first bytes of each further one and stalls (until the client leaves).
    ``queries`` collects Face Studio's query parameters.
    """
    app = web.Application(client_max_size=32 * 1024 * 1024)

    async def generate(request: web.Request) -> web.StreamResponse:
        hits[request.path] += 1
        if queries is not None:
            queries.append(dict(request.query))
        if stall_after is not None and hits[request.path] > stall_after:
            return await trickle(request, image, head=1024, step=5.0, seconds=60.0)
        return web.Response(body=image, content_type="image/jpeg", headers={"X-User-Class": "Professional"})

    async def ace(request: web.Request) -> web.Response:
        hits[request.path] += 1
        await request.read()
        return web.json_response({"success": True, "image_url": f"http://{request.host}/img.jpg", "task_id": "t"})

    async def ailab_submit(request: web.Request) -> web.Response:
        hits[request.path] += 1
        await request.read()
        return web.json_response({"error_code": 0, "task_id": "t-1"})

    async def ailab_poll(request: web.Request) -> web.Response:
        hits[request.path] += 1
        img = f"http://{request.host}/img.jpg"
        return web.json_response({"error_code": 0, "task_status": 2, "data": {"image": img}})

    async def img(request: web.Request) -> web.Response:
        hits[request.path] += 1
        return web.Response(body=image, content_type="image/jpeg")

    app.router.add_get("/v1/generate", generate)
    app.router.add_post("/face/{op}", ace)
    app.router.add_post("/api/portrait/editing/ai-face-swap", ailab_submit)
    app.router.add_get("/api/common/query-async-task-result", ailab_poll)
    app.router.add_get("/img.jpg", img)
    return app


def paid(hits: Counter[str]) -> int:
    """Requests that start paid work (Face Studio generations, Ace Data calls, AILab submissions)."""
    return sum(
        n
        for path, n in hits.items()
        if path in ("/v1/generate", "/api/portrait/editing/ai-face-swap") or path.startswith("/face/")
    )


# ------------------------------------------------------------------------------ in memory
def mock_providers(image: bytes = JPEG, delay: float = 0.0) -> aioface.MockTransport:
    """All three providers in memory, each answer ``delay`` seconds late; ``transport.requests``
    lists what was sent."""

    async def handler(req: aioface.MockRequest) -> aioface.MockResponse:
        await anyio.sleep(delay)
        path = urlsplit(req.url).path
        if path == "/v1/generate" or path == "/img.jpg":
            return aioface.MockResponse(200, content=image, headers={"Content-Type": "image/jpeg"})
        if path.startswith("/face/"):
            return aioface.MockResponse(200, json={"image_url": "https://cdn.example/img.jpg", "task_id": "t"})
        if path == SUBMIT:
            return aioface.MockResponse(200, json={"error_code": 0, "task_id": "t-1"})
        if path == RESULT:
            data = {"image": "https://cdn.example/img.jpg"}
            return aioface.MockResponse(200, json={"error_code": 0, "task_status": 2, "data": data})
        return aioface.MockResponse(404, json={"detail": "Not found."})

    return aioface.MockTransport(handler)


def mock_client(transport: aioface.MockTransport, **kw: Any) -> aioface.Client:
    kw.setdefault("persist_limits", False)
    kw.setdefault("limits", {"facestudio": "1000/s", "acedata": "1000/s", "ailab": "1000/s"})
    return aioface.Client(
        facestudio_key="fs-key", acedata_token="ace-token", ailab_key="ailab-key", transport=transport, env={}, **kw
    )


def paid_requests(transport: aioface.MockTransport) -> int:
    paths = [urlsplit(r.url).path for r in transport.requests]
    return sum(1 for p in paths if p in ("/v1/generate", SUBMIT) or p.startswith("/face/"))


async def run_op(c: aioface.Client, provider: str, dest: Path | str) -> aioface.ImageResult:
    if provider == "facestudio":
        return await c.facestudio.generate(dest)
    if provider == "acedata":
        return await c.acedata.change_age("https://cdn.example/a.png", [60], dest)
    fast = aioface.PollPolicy(initial=0.01, deadline=5)
    return await c.ailab.swap(dest, source=JPEG, target=JPEG, poll=fast)
