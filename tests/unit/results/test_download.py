"""Streaming to disk: atomic files, size checks, and flat memory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from aioface import DownloadError, InvalidRequestError, ProtocolError, RetryPolicy
from aioface._net import check_http_url, safe_name
from aioface.emulator import Emulator, EmulatorConfig, Faults
from aioface.results._stream import stream_to_file
from tests.support.files import files_in, image_bytes

pytestmark = pytest.mark.anyio


async def _chunks(*parts: bytes):  # type: ignore[no-untyped-def]
    for p in parts:
        await anyio.lowlevel.checkpoint()
        yield p


async def test_stream_checks_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    img = image_bytes()
    saved = await stream_to_file(_chunks(img[:10], img[10:]), tmp_path / "ok.jpg", content_length=len(img))
    assert saved.size == len(img) and saved.format == "jpeg" and (tmp_path / "ok.jpg").read_bytes() == img
    with pytest.raises(ProtocolError, match="cut"):
        await stream_to_file(_chunks(img[:100]), tmp_path / "cut.jpg", content_length=len(img))
    with pytest.raises(DownloadError, match="not a JPEG"):
        await stream_to_file(_chunks(b"<html>oops</html>"), tmp_path / "html.jpg")
    with pytest.raises(DownloadError, match="maximum"):
        await stream_to_file(_chunks(img, img), tmp_path / "big.jpg", max_bytes=len(img) + 1)
    with pytest.raises(DownloadError, match="declared"):
        await stream_to_file(_chunks(img), tmp_path / "decl.jpg", expected_size=len(img) + 5)
    assert files_in(tmp_path) == ["ok.jpg"]


async def test_content_length_of_an_encoded_body_counts_the_wire(tmp_path: Path) -> None:
    img = image_bytes()
    saved = await stream_to_file(
        _chunks(img), tmp_path / "gz.jpg", content_length=len(img) // 2, content_encoding="gzip", expected_size=len(img)
    )
    assert saved.size == len(img)
    for encoding in (None, "identity", " Identity "):
        with pytest.raises(ProtocolError, match="cut"):
            await stream_to_file(
                _chunks(img), tmp_path / "id.jpg", content_length=len(img) + 1, content_encoding=encoding
            )
    with pytest.raises(DownloadError, match="declared"):  # the declared (decoded) size is still checked
        await stream_to_file(_chunks(img), tmp_path / "d.jpg", content_encoding="gzip", expected_size=len(img) + 1)
    assert files_in(tmp_path) == ["gz.jpg"]


async def test_cancellation_removes_the_part_file(tmp_path: Path) -> None:
    gate = anyio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield image_bytes()
        gate.set()
        await anyio.sleep(30)
        yield b"never"

    async with anyio.create_task_group() as tg:
        tg.start_soon(stream_to_file, slow(), tmp_path / "x.jpg")
        await gate.wait()
        assert len(files_in(tmp_path)) == 1  # the .part file exists mid-stream
        tg.cancel_scope.cancel()
    assert files_in(tmp_path) == []


def test_safe_names_and_urls() -> None:
    assert safe_name("../../etc/passwd") == "_.._etc_passwd"
    assert "/" not in safe_name("a/b") and safe_name("...") == "item"
    for bad in ["file:///etc/passwd", "javascript:alert(1)", "ftp://x/y", "http://", "/local/path"]:
        with pytest.raises(InvalidRequestError):
            check_http_url(bad)
    assert check_http_url("https://a.b/c") == "https://a.b/c"


async def test_truncated_results_are_retried_then_reported_with_no_file(tmp_path: Path) -> None:
    faults = Faults(schedule={"files": ["truncate", None]})
    async with Emulator(EmulatorConfig(faults=faults)) as emu, emu.client() as c:
        r = await c.acedata.cartoon("https://a.b/c.png", tmp_path / "retried")
        assert r.path is not None
        assert r.bytes == r.path.stat().st_size
    faults = Faults(rates={"files": {"truncate": 1.0}})
    async with (
        Emulator(EmulatorConfig(faults=faults)) as emu,
        emu.client(retry=RetryPolicy(max_retries=2, base=0.01)) as c,
    ):
        with pytest.raises(ProtocolError):
            await c.acedata.cartoon("https://a.b/c.png", tmp_path / "cut")
        assert emu.stats["fault_truncate"] == 3
    assert files_in(tmp_path) == ["retried.png"]


async def test_expired_or_missing_result_is_not_found(tmp_path: Path) -> None:
    from aioface import NotFoundError

    async with Emulator(EmulatorConfig(faults=Faults(result_missing=1.0))) as emu, emu.client() as c:
        with pytest.raises(NotFoundError):
            await c.acedata.cartoon("https://a.b/c.png", tmp_path / "gone")
    assert files_in(tmp_path) == []


async def test_large_result_streams_with_flat_memory(tmp_path: Path) -> None:
    """A 40 MB result: the client's memory grows by far less than the file."""
    import psutil

    pad = 40 * 1024 * 1024
    proc = psutil.Process()
    async with Emulator(EmulatorConfig(result_padding=pad)) as emu, emu.client(max_download_bytes=64 << 20) as c:
        await c.acedata.cartoon("https://a.b/c.png", tmp_path / "warm")
        os.unlink(tmp_path / "warm.png")
        before = proc.memory_info().rss
        r = await c.acedata.cartoon("https://a.b/c.png", tmp_path / "big")
        grown = proc.memory_info().rss - before
    assert r.bytes is not None and r.path is not None
    assert r.bytes > pad and r.path.stat().st_size == r.bytes
    assert grown < pad / 4, f"RSS grew {grown / 1e6:.1f} MB for a {pad / 1e6:.0f} MB download"
