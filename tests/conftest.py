from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from aioface.emulator import Emulator, EmulatorConfig


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """A lenient emulator, limits 600x faster, short tasks."""
    async with Emulator(EmulatorConfig(time_scale=600.0, task_duration=0.1, seed=1)) as e:
        yield e


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (64, 64), color: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmulatorProcess:
    """``aioface emulator`` in a child process (for CLI and kill tests)."""

    def __init__(self, *args: str) -> None:
        import subprocess
        import sys
        import time
        import urllib.request

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aioface", "emulator", "--port", str(self.port), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(self.url + "/_emulator/stats", timeout=1).read()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("emulator did not start") from None
                time.sleep(0.05)

    def stats(self) -> dict[str, int]:
        import json
        import urllib.request

        return dict(json.loads(urllib.request.urlopen(self.url + "/_emulator/stats", timeout=5).read()))

    def env(self, tmp: Path, **extra: str) -> dict[str, str]:
        import os

        env = dict(os.environ)
        for p in ("FACESTUDIO", "ACEDATA", "AILAB"):
            env[f"AIOFACE_{p}_BASE_URL"] = self.url
        env.update(
            AIOFACE_FACESTUDIO_KEY="cli-secret-key-0001",
            AIOFACE_ACEDATA_TOKEN="cli-secret-token-0002",
            AIOFACE_AILAB_KEY="cli-secret-key-0003",
            AIOFACE_CACHE_DIR=str(tmp / "cache"),
        )
        env.update(extra)
        return env

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
