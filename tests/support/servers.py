"""Tiny purpose-built servers for the field tests: real loopback HTTP (127.0.0.1, port 0), no emulator.

Each plays one misbehaviour a real provider, CDN or proxy shows and the emulator does not.
Only public aiohttp and asyncio APIs: nothing here reaches into aioface.
"""

from __future__ import annotations

import asyncio
import io
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import aiohttp.abc
from aiohttp import web
from PIL import Image


def picture(fmt: str = "PNG", size: tuple[int, int] = (96, 80), color: tuple[int, int, int] = (200, 120, 90)) -> bytes:
    """A small real image whose gzip form differs in size from itself."""
    im = Image.new("RGB", size, color)
    for x in range(0, size[0], 7):  # some detail, so the body is not trivially compressible
        im.putpixel((x, x % size[1]), (x % 256, 40, 200))
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 with a free port; yields its base URL."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


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


class LineReader:
    """A child process whose merged stdout/stderr is read line by line in a thread (bounded waits)."""

    def __init__(self, args: Sequence[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aioface", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, needle: str, timeout: float) -> str | None:
        """The first line containing ``needle`` within ``timeout`` seconds, else None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if needle in line:
                    return line
            if self.proc.poll() is not None and not self._thread.is_alive():
                break
            time.sleep(0.05)
        return next((line for line in list(self.lines) if needle in line), None)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._thread.join(5)
