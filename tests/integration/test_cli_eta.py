"""The CLI's time remaining on a terminal counts the limits in force, not only the recent rate."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import EmulatorProcess

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: "4/12 ... 0:00:00 0:00:04": done of total, then elapsed and time remaining, the last two columns.
FRAME = re.compile(r"\b(\d+)/12 [^\r\n]*?(\d+):(\d\d):(\d\d) (\d+):(\d\d):(\d\d)")


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    emu = EmulatorProcess("--time-scale", "600")
    yield emu
    emu.stop()


def test_time_remaining_counts_the_window_not_the_first_burst(emulator: EmulatorProcess, tmp_path: Path) -> None:
    """12 faces at 4 per 2 s: the first 4 go at once (a recent rate of tens a second says "0:00:00"),
    the other 8 need two more windows: about 4 s left, and the bar says so."""
    env = {**emulator.env(tmp_path, AIOFACE_FACESTUDIO_LIMITS="1000/s"), "COLUMNS": "220", "TERM": "xterm"}
    master, slave = pty.openpty()
    cmd = [sys.executable, "-m", "aioface", "generate", "-n", "12", "--limit", "4/2s", "--resolution", "128"]
    proc = subprocess.Popen(
        [*cmd, "--out", str(tmp_path / "o")], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave
    )
    os.close(slave)
    seen = ""
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    seen += ANSI.sub("", os.read(master, 65536).decode("utf-8", "replace"))
                except OSError:
                    break
    finally:
        proc.terminate()
        proc.wait(10)
        os.close(master)
    frames = [(int(m[1]), int(m[5]) * 3600 + int(m[6]) * 60 + int(m[7])) for m in FRAME.finditer(seen)]
    after_first_window = [eta for done, eta in frames if done == 4]
    assert after_first_window, seen[-2000:]
    assert max(after_first_window) >= 3, (after_first_window, seen[-2000:])  # two windows of 2 s to go
    assert max(after_first_window) <= 6, after_first_window  # and no wild guess either
