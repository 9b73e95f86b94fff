"""Scratch file systems: a small tmpfs (skipped with the reason where it cannot be mounted), filled or read-only."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


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
