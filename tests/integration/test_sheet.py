"""``aioface bench --sheet``: the same inputs through each provider, drawn as one contact sheet."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from PIL import Image

from aioface.emulator import Emulator, EmulatorConfig
from aioface.jobs._sheet import THUMB, draw_sheet, run_sheet
from tests.support.cli import aioface

PAPER = (246, 246, 246)


def closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def colours(im: Image.Image, box: tuple[int, int, int, int]) -> int:
    return len(im.crop(box).getcolors(maxcolors=1 << 16) or ())


@pytest.mark.anyio
async def test_rows_are_inputs_columns_are_providers_and_a_failure_is_a_labelled_blank(tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(task_duration=0.02)) as emu:
        urls = [f"{emu.url}/files/{emu.state.new_file(seed, 30, 256, 'jpeg')}" for seed in range(4)]
        inputs = [(urls[0], urls[1]), (urls[2], urls[3])]
        async with emu.client(base_urls={"facestudio": emu.url, "acedata": closed_url(), "ailab": emu.url}) as c:
            cells, shown = await run_sheet(c, ["ailab", "acedata"], inputs, prices={"ailab": (0.02, "USD")})
    assert [(c.row, c.provider) for c in cells] == [(0, "ailab"), (0, "acedata"), (1, "ailab"), (1, "acedata")]
    ok = [c for c in cells if c.provider == "ailab"]
    failed = [c for c in cells if c.provider == "acedata"]
    assert all(c.image and c.error is None and c.cost == (0.02, "USD") and c.seconds > 0 for c in ok)
    assert all(c.image is None and c.error == "connect_error" for c in failed)
    assert all(s and t for s, t in shown)  # the inputs themselves, downloaded for the first columns

    path = tmp_path / "sheet.png"
    draw_sheet(cells, shown, ["ailab", "acedata"], path)
    with Image.open(path) as im:
        sheet = im.convert("RGB")
    pad, col_w, row_h, head = 12, THUMB + 12, THUMB + 34 + 12, 30
    assert sheet.size == (pad + 2 * col_w + pad + 2 * col_w, head + 2 * row_h + pad)
    x_ailab, x_ace = pad + 2 * col_w + pad, pad + 2 * col_w + pad + col_w
    for row in range(2):
        y = head + row * row_h
        assert colours(sheet, (pad, y, pad + THUMB, y + THUMB)) > 20  # the source picture
        assert colours(sheet, (x_ailab, y, x_ailab + THUMB, y + THUMB)) > 20  # ailab's result
        blank = dict((c, n) for n, c in sheet.crop((x_ace + 10, y + 40, x_ace + 60, y + 41)).getcolors() or ())
        assert blank.get(PAPER, 0) >= 45  # acedata failed: a blank cell
        label = (x_ailab, y + THUMB + 2, x_ailab + THUMB, y + THUMB + 30)
        assert colours(sheet, label) > 1  # the latency and cost are written under the cell


def test_cli_draws_the_sheet_against_the_emulator(tmp_path: Path) -> None:
    path = tmp_path / "compare.png"
    env = {**os.environ, "AIOFACE_CACHE_DIR": str(tmp_path / "cache")}
    r = aioface("bench", "--emulator", "--provider", "acedata,ailab", "--op", "swap", "-n", "2",
                "--price", "acedata=0.01USD", "--sheet", str(path), "-q", env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    said = " ".join(r.stdout.split())
    assert "contact sheet" in said and "3 inputs x 2 providers, 0 failed" in said
    with Image.open(path) as im:
        assert im.size == (12 + 4 * (THUMB + 12) + 12, 30 + 3 * (THUMB + 46) + 12)
    no_sheet = aioface("bench", "--emulator", "--sheet-input", "a", "b", env=env)
    assert no_sheet.returncode == 2 and "--sheet-input goes with --sheet" in no_sheet.stderr
