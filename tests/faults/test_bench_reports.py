"""``aioface bench --json/--png`` with hostile report paths: refused before anything is sent (exit 2),
and a special file in the way is never replaced (the report goes only where a regular file was, or none)."""

from __future__ import annotations

import os
import stat
from collections import Counter
from pathlib import Path

import pytest

from tests.support.cli import cli_env, run_cli
from tests.support.servers import JPEG, provider_app, serve

pytestmark = pytest.mark.anyio


async def test_bench_report_paths_are_checked_before_anything_is_sent(tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    fifo = tmp_path / "chart.png"
    os.mkfifo(fifo)
    bad = [
        ("--json", blocker / "sub" / "r.json"),  # a folder that cannot be made: a file is in the way
        ("--png", blocker / "r.png"),
        ("--png", fifo),  # a special file: never replaced
    ]
    async with serve(provider_app(hits, JPEG)) as url:
        env = cli_env(tmp_path, url)
        for option, path in bad:
            r = await run_cli("bench", "--provider", "facestudio", "-n", "2", "-c", "1", option, str(path), env=env)
            assert r.returncode == 2, (option, path, r.returncode, r.stderr)
            assert option in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert sum(hits.values()) == 0  # nothing was sent, nothing paid
        assert stat.S_ISFIFO(fifo.lstat().st_mode)
        assert blocker.read_text() == "not a folder"

        # Folders still missing are made, and a regular file is replaced, as before.
        good_json, good_png = tmp_path / "new" / "r.json", tmp_path / "r.png"
        good_png.write_bytes(b"old")
        r = await run_cli(
            "bench", "--provider", "facestudio", "-n", "2", "-c", "1", "--json", str(good_json),
            "--png", str(good_png), env=env,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert good_json.read_bytes().startswith(b"{") and good_png.read_bytes().startswith(b"\x89PNG")
    assert leftovers(tmp_path) == []


def leftovers(folder: Path) -> list[str]:
    """Temporary report files left behind."""
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name or p.name.startswith("."))
