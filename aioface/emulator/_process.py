"""``aioface emulator`` in a child process: for CLI tests, kill tests and benchmarks."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from typing import Any, Self

from .._net import free_port


class EmulatorProcess:
    """Start ``python -m aioface emulator --port P ARGS`` and wait until it answers.

    ``with EmulatorProcess("--time-scale", "60") as emu: emu.url, emu.stats()``
    """

    def __init__(self, *args: str, timeout: float = 20.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aioface", "emulator", "--port", str(self.port), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.stats()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("emulator did not start") from None
                time.sleep(0.05)

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as r:
            return json.loads(r.read())

    def stats(self) -> dict[str, int]:
        """The emulator's counters (requests, ``throttled`` 429s, faults, ...)."""
        return dict(self._get("/_emulator/stats"))

    def task(self, task_id: str) -> dict[str, float]:
        """When an AILab task was created and is done (monotonic clock)."""
        return dict(self._get(f"/_emulator/tasks/{task_id}"))

    def stop(self) -> None:
        """Terminate the process (kill it if it lingers)."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
