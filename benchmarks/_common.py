"""Shared by the benchmark scripts: an emulator in a child process, timing and reporting."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

KEY = "bench-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ChildEmulator:
    """``aioface emulator`` in its own process, so it does not share the client's event loop."""

    def __init__(self, *args: str) -> None:
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
                self.stats()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise RuntimeError("emulator did not start") from None
                time.sleep(0.05)

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.url + "/_emulator/stats", timeout=5) as r:
            return dict(json.loads(r.read()))

    def task(self, task_id: str) -> dict[str, float]:
        with urllib.request.urlopen(f"{self.url}/_emulator/tasks/{task_id}", timeout=5) as r:
            return dict(json.loads(r.read()))

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self) -> ChildEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def client_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    for p in ("FACESTUDIO", "ACEDATA", "AILAB"):
        env[f"AIOFACE_{p}_BASE_URL"] = url
    return env


def report(
    name: str, rows: Sequence[dict[str, Any]], columns: Sequence[str], extra: dict[str, Any] | None = None
) -> None:
    """Print a small table, then one JSON line with everything."""
    print(f"\n## {name}")
    widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("JSON " + json.dumps({"benchmark": name, "rows": list(rows), **(extra or {})}))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"
    return "" if v is None else str(v)
