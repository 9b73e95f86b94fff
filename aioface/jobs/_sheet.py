"""``aioface bench --sheet``: the same swap inputs through each provider, the results in one contact sheet.

Rows are the inputs (source and target shown first), columns the providers; each cell is the
provider's result with its latency and, where a price is known, its cost (drawn with Pillow).
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from .._client import Client
from .._errors import AiofaceError
from ._bench import replace_regular_file

__all__ = ["SheetCell", "draw_sheet", "run_sheet"]

THUMB = 160
_INK, _GREY, _RED, _PAPER = (34, 34, 34), (120, 120, 120), (204, 51, 17), (246, 246, 246)


@dataclass
class SheetCell:
    """One provider's result for one input: the image (None when it failed), seconds, cost, error."""

    provider: str
    row: int
    seconds: float
    image: bytes | None = None
    cost: tuple[float, str] | None = None
    error: str | None = None
    task_id: str | None = None


async def _input_image(client: Client, value: Any) -> bytes | None:
    """An input's bytes for its thumbnail (a URL downloaded, a path read); None if it cannot be had."""
    try:
        if isinstance(value, bytes):
            return value
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return (await client.download(value, None)).data
        return await anyio.Path(value).read_bytes()
    except (AiofaceError, OSError):
        return None


async def run_sheet(
    client: Client,
    providers: Sequence[str],
    inputs: Sequence[tuple[Any, Any]],
    *,
    prices: dict[str, tuple[float, str]] | None = None,
) -> tuple[list[SheetCell], list[tuple[bytes | None, bytes | None]]]:
    """Each (source, target) of ``inputs`` swapped through each provider (all at once, within each
    provider's limits; results kept in memory); the cells, and the inputs' own bytes for the sheet."""
    cells: list[SheetCell] = []

    async def one(provider: str, row: int, source: Any, target: Any) -> None:
        start = time.perf_counter()
        try:
            r = await client.swap(None, source=source, target=target, providers=(provider,))
        except AiofaceError as exc:
            cells.append(SheetCell(provider, row, time.perf_counter() - start, error=str(exc.code)))
            return
        price = (prices or {}).get(provider)
        cells.append(SheetCell(provider, row, time.perf_counter() - start, r.data, price, task_id=r.task_id))

    shown: list[tuple[bytes | None, bytes | None]] = [(None, None)] * len(inputs)

    async def show(row: int, source: Any, target: Any) -> None:
        shown[row] = (await _input_image(client, source), await _input_image(client, target))

    async with anyio.create_task_group() as tg:
        for row, (source, target) in enumerate(inputs):
            tg.start_soon(show, row, source, target)
            for p in providers:
                tg.start_soon(one, p, row, source, target)
    cells.sort(key=lambda c: (c.row, list(providers).index(c.provider)))
    return cells, shown


def _thumb(data: bytes | None) -> Any:
    """A THUMB x THUMB tile of ``data`` (letterboxed), or None when it is not an image."""
    from PIL import Image

    if data is None:
        return None
    try:
        with Image.open(io.BytesIO(data)) as opened:
            im = opened.convert("RGB")
        im.thumbnail((THUMB, THUMB))
        tile = Image.new("RGB", (THUMB, THUMB), _PAPER)
        tile.paste(im, ((THUMB - im.width) // 2, (THUMB - im.height) // 2))
        return tile
    except Exception:  # a result that does not decode is shown as missing, never fails the sheet
        return None


def draw_sheet(
    cells: Sequence[SheetCell],
    inputs: Sequence[tuple[bytes | None, bytes | None]],
    providers: Sequence[str],
    path: Path,
) -> None:
    """The contact sheet as a PNG: a row per input (its source and target first), a column per provider."""
    from PIL import Image, ImageDraw

    pad, label = 12, 34
    col_w, row_h = THUMB + pad, THUMB + label + pad
    head = 30
    width = pad + 2 * col_w + pad + len(providers) * col_w
    height = head + len(inputs) * row_h + pad
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    draw.font = _font()
    x0 = pad + 2 * col_w + pad  # the providers' columns start after the inputs' two
    for i, name in enumerate(("source", "target")):
        draw.text((pad + i * col_w + THUMB // 2, head // 2), name, fill=_GREY, anchor="mm")
    for j, p in enumerate(providers):
        draw.text((x0 + j * col_w + THUMB // 2, head // 2), p, fill=_INK, anchor="mm")
    draw.line([(x0 - pad // 2 - 1, 4), (x0 - pad // 2 - 1, height - 4)], fill=_GREY)
    by_cell = {(c.row, c.provider): c for c in cells}
    for row, pair in enumerate(inputs):
        y = head + row * row_h
        for i, data in enumerate(pair):
            _paste(sheet, draw, _thumb(data), pad + i * col_w, y, f"input {row + 1}" if i == 0 else "")
        for j, p in enumerate(providers):
            c = by_cell.get((row, p))
            x = x0 + j * col_w
            if c is None:
                continue
            text = f"{c.seconds:.2f} s"
            if c.cost is not None:
                text += f", {c.cost[0]:.3g} {c.cost[1]}"
            if c.error is not None:
                _paste(sheet, draw, None, x, y, f"failed: {c.error}", color=_RED)
            else:
                _paste(sheet, draw, _thumb(c.image), x, y, text)
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    replace_regular_file(path, lambda f: f.write(buf.getvalue()))


def _font() -> Any:
    """Pillow's own font at a readable size (a scalable one from Pillow 10.1; the bitmap one before)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=13)
    except TypeError:
        return ImageFont.load_default()


def _paste(sheet: Any, draw: Any, tile: Any, x: int, y: int, text: str, color: tuple[int, int, int] = _INK) -> None:
    if tile is None:
        draw.rectangle([x, y, x + THUMB - 1, y + THUMB - 1], fill=_PAPER, outline=_GREY)
        draw.line([(x, y), (x + THUMB - 1, y + THUMB - 1)], fill=_GREY)
    else:
        sheet.paste(tile, (x, y))
    if text:
        draw.text((x + THUMB // 2, y + THUMB + 6), text, fill=color, anchor="mt")
