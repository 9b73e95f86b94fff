"""Real CLI processes: their environment, runs with a timeout, line readers, journals, an emulator child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from aioface.emulator import EmulatorProcess as _EmulatorProcess


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


class EmulatorProcess(_EmulatorProcess):
    """The child-process emulator, plus the environment a CLI run needs to reach it."""

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


def aioface(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aioface", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
