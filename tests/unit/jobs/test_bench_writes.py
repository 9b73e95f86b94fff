"""The bench's report files: written atomically, and never renamed over anything but a regular file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from aioface import StorageError
from aioface.jobs._bench import BenchReport, write_comparison_png, write_png

REPORT = BenchReport("facestudio", "generate", 2, 1, ok=2, seconds=1.0, calls=[(0.0, 0.5, True), (0.1, 0.4, True)])


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_fifo_or_a_symlink_in_the_way_is_never_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "chart.png"
    os.mkfifo(fifo)
    target = tmp_path / "elsewhere.png"
    target.write_bytes(b"keep me")
    link = tmp_path / "link.png"
    link.symlink_to(target)
    for path in (fifo, link):
        with pytest.raises(StorageError, match="not a regular file"):
            write_png(REPORT, path)
        with pytest.raises(StorageError, match="not a regular file"):
            write_comparison_png([REPORT, REPORT], path)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert link.is_symlink() and target.read_bytes() == b"keep me"
    assert leftovers(tmp_path) == []  # the temporary file is removed


def test_a_regular_file_is_replaced_and_missing_folders_made(tmp_path: Path) -> None:
    old = tmp_path / "r.png"
    old.write_bytes(b"old")
    write_png(REPORT, old)
    assert old.read_bytes().startswith(b"\x89PNG")
    new = tmp_path / "a" / "b" / "c.png"
    write_comparison_png([REPORT, REPORT], new)
    assert new.read_bytes().startswith(b"\x89PNG")
    assert leftovers(tmp_path) == [] and leftovers(new.parent) == []


def test_an_unwritable_place_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError):
        write_png(REPORT, blocker / "r.png")
    assert blocker.read_text() == "x"
