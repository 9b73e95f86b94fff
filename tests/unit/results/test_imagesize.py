"""The header parser agrees with Pillow on every format and size it reads, and says None rather
than guess on a header it cannot read."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from aioface.results._imagesize import header_size


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
@pytest.mark.parametrize("size", [(1, 1), (64, 48), (300, 17), (1023, 1024)])
def test_agrees_with_pillow(fmt: str, size: tuple[int, int]) -> None:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, fmt)
    data = buf.getvalue()
    assert header_size(data[: 1 << 16], fmt.lower()) == Image.open(io.BytesIO(data)).size


def test_lossless_and_extended_webp() -> None:
    for kwargs in ({"lossless": True}, {"exif": b"Exif\x00\x00" + b"\x00" * 20}):
        buf = io.BytesIO()
        Image.new("RGBA", (77, 33), (1, 2, 3, 4)).save(buf, "WEBP", **kwargs)
        assert header_size(buf.getvalue(), "webp") == (77, 33)


def test_progressive_jpeg_with_metadata_before_the_frame() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (120, 90)).save(buf, "JPEG", progressive=True, exif=b"Exif\x00\x00" + b"\x00" * 500, dpi=(72, 72))
    assert header_size(buf.getvalue(), "jpeg") == (120, 90)


def test_cut_or_garbled_headers_say_none() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (50, 40)).save(buf, "JPEG", exif=b"Exif\x00\x00" + b"\x00" * 2000)
    data = buf.getvalue()
    assert header_size(data[:100], "jpeg") is None  # the frame header is past the cut
    assert header_size(b"\xff\xd8\xff\x00garbage", "jpeg") is None
    assert header_size(b"\x89PNG\r\n\x1a\n", "png") is None
    assert header_size(data, "tiff") is None
