"""One body checker for files, memory and sinks: the head is judged before a sink may get a byte,
and every destination refuses the same bodies with the same error."""

from __future__ import annotations

import io
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aioface import DownloadError, ProtocolError
from aioface.results._check import FIRST_BYTES, BodyCheck
from aioface.results._stream import save_stream
from tests.support.files import files_in, image_bytes
from tests.support.servers import png_claiming

pytestmark = pytest.mark.anyio
JPEG = image_bytes("JPEG", (40, 30))


def _with_metadata_first(jpeg: bytes, size: int) -> bytes:
    """``jpeg`` with ``size`` bytes of APP15 segments between SOI and the rest (the frame header far in)."""
    segs = b""
    while size > 0:
        n = min(size, 65000)
        segs += b"\xff\xef" + struct.pack(">H", n + 2) + b"\0" * n
        size -= n
    return jpeg[:2] + segs + jpeg[2:]


def test_the_head_is_ready_once_the_header_is_read() -> None:
    check = BodyCheck()
    check.feed(JPEG[:5])
    assert not check.ready and check.format is None
    check.feed(JPEG[5:])
    assert check.ready and check.format == "jpeg" and check.dimensions == (40, 30)
    check.finish()


def test_a_bomb_is_refused_from_its_first_33_bytes() -> None:
    check = BodyCheck()
    with pytest.raises(DownloadError, match="pixels"):
        check.feed(png_claiming(60000, 60000)[:33])


def test_declared_sizes_are_refused_before_any_byte() -> None:
    with pytest.raises(DownloadError, match="declared"):
        BodyCheck(content_length=100, expected_size=101)
    with pytest.raises(DownloadError, match="maximum"):
        BodyCheck(expected_size=101, max_bytes=100)
    BodyCheck(content_length=50, content_encoding="gzip", expected_size=101)  # the wire counts compressed bytes


def test_a_header_past_the_first_bytes_is_ready_without_dimensions() -> None:
    body = _with_metadata_first(JPEG, FIRST_BYTES + 1000)
    check = BodyCheck()
    check.feed(body[: FIRST_BYTES - 1])
    assert not check.ready
    check.feed(body[FIRST_BYTES - 1 :])
    assert check.ready and check.dimensions is None  # a file reads it from the file, memory from the buffer
    check.finish()
    with pytest.raises(ProtocolError, match="cut"):
        cut = BodyCheck(content_length=len(body) + 1)
        cut.feed(body)
        cut.finish()


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


class Sink:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.parts.append(data)


BAD = {
    "bomb": (png_claiming(60000, 60000), {}),
    "not an image": (b"<html>" + b"x" * 100, {}),
    "over the cap": (JPEG, {"max_bytes": len(JPEG) - 1}),
    "declared": (JPEG, {"content_length": len(JPEG), "expected_size": len(JPEG) + 1}),
    "cut": (JPEG[:100], {"content_length": len(JPEG)}),
}


@pytest.mark.parametrize("case", list(BAD))
async def test_files_memory_and_sinks_refuse_the_same_bodies_alike(case: str, tmp_path: Path) -> None:
    body, kw = BAD[case]
    errors = []
    sink, fobj = Sink(), io.BytesIO()
    for dest in (tmp_path / "r", None, sink, fobj):
        with pytest.raises((DownloadError, ProtocolError)) as exc:
            await save_stream(_chunks(body[:20], body[20:]), dest, **kw)  # type: ignore[arg-type]
        errors.append((type(exc.value), exc.value.message))
    assert len(set(errors)) == 1, errors
    if case != "cut":  # a cut shows only at the end: the sink may hold what came
        assert sink.parts == [] and fobj.getvalue() == b""
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("dest", ["file", "memory", "sink"])
async def test_a_header_far_in_still_gives_dimensions_where_the_bytes_are_kept(dest: str, tmp_path: Path) -> None:
    body = _with_metadata_first(JPEG, FIRST_BYTES + 1000)
    sink = Sink()
    target = {"file": tmp_path / "far", "memory": None, "sink": sink}[dest]
    saved = await save_stream(_chunks(body[:1000], body[1000:]), target)
    assert saved.size == len(body) and saved.format == "jpeg"
    if dest == "sink":
        assert b"".join(sink.parts) == body and saved.dimensions is None  # nothing kept to read it from
    else:
        assert saved.dimensions == (40, 30)
