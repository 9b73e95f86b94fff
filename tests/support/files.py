"""Images made on the spot and what a folder holds."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (64, 64), color: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def part_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.part"))
