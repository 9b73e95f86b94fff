"""Tiny misbehaving servers of the tests' own (real loopback HTTP, 127.0.0.1, port 0) and the images they serve."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import struct
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import aiohttp.abc
import anyio
from aiohttp import web
from PIL import Image

from tests.support.files import image_bytes


def picture(fmt: str = "PNG", size: tuple[int, int] = (96, 80), color: tuple[int, int, int] = (200, 120, 90)) -> bytes:
    """A small real image whose gzip form differs in size from itself."""
    im = Image.new("RGB", size, color)
    for x in range(0, size[0], 7):  # some detail, so the body is not trivially compressible
        im.putpixel((x, x % size[1]), (x % 256, 40, 200))
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


class ToLoopback(aiohttp.abc.AbstractResolver):
    """Resolves every host name to 127.0.0.1: a provider "far away" by its URL, served by a test server."""

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[Any]:
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


@dataclass
class ProxyLog:
    """What a :func:`fake_proxy` saw: request lines (``GET http://host/path HTTP/1.1``, ``CONNECT h:443 ...``)."""

    lines: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


@asynccontextmanager
async def fake_proxy(
    answer: bytes, content_type: str, extra_headers: Sequence[tuple[str, str]] = ()
) -> AsyncIterator[tuple[str, ProxyLog]]:
    """An HTTP forward proxy that answers every plain-HTTP request itself (as if it had forwarded it)
    and refuses every CONNECT with 403 after recording it. Yields (proxy URL, log)."""
    log = ProxyLog()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.close()
            return
        first, *rest = head.decode("latin-1").split("\r\n")
        hdrs = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in rest if h)}
        log.lines.append(first)
        log.headers.append(hdrs)
        if first.startswith("CONNECT "):
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        else:
            length = int(hdrs.get("content-length", "0") or 0)
            if length:
                await reader.readexactly(length)
            extra = "".join(f"{k}: {v}\r\n" for k, v in extra_headers)
            writer.write(
                f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(answer)}\r\n{extra}"
                "Connection: close\r\n\r\n".encode("latin-1")
                + answer
            )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        server.close()
        await server.wait_closed()


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
