"""One checker of a result body (format, sizes, header dimensions, rate) for files, memory and sinks alike.

:class:`BodyCheck` sees every chunk before it goes anywhere. Its head checks (the declared sizes,
the format sniffed from the first bytes, the pixel count the header claims) are settled before
:attr:`BodyCheck.ready` turns true; a sink or memory receives nothing before that, and a file
keeps nothing (its part file is renamed into place only after :meth:`BodyCheck.finish`).
"""

from __future__ import annotations

import io
import os
import sys
import time

from .._errors import DownloadError, ProtocolError, RequestTimeoutError
from ..transports._base import MIN_RATE
from ._imagesize import header_size

#: The bytes kept for the sniff and the header (a header further in is read from the file).
FIRST_BYTES = 1 << 16
#: The largest result saved unless the client says otherwise (``max_download_bytes``).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: Seconds before the rate counts, when the caller gives none (the client's default timeout).
DEFAULT_GRACE = 60.0
#: Bytes that tell the format (WebP needs 12).
SNIFF_BYTES = 12
#: Pillow's default ``Image.MAX_IMAGE_PIXELS`` (used until Pillow is imported and perhaps changed).
DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF8", "gif"),
)


def sniff_format(head: bytes) -> str | None:
    """The image format from the first bytes (jpeg, png, webp, gif), or None."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def is_identity(content_encoding: str | None) -> bool:
    """True when a ``Content-Encoding`` header (or its absence) means the body is sent as is."""
    return content_encoding is None or content_encoding.strip().lower() in ("", "identity")


def max_pixels() -> int | None:
    """Pillow's ``Image.MAX_IMAGE_PIXELS`` as the user left it (without importing Pillow for it)."""
    image = sys.modules.get("PIL.Image")
    return getattr(image, "MAX_IMAGE_PIXELS", DEFAULT_MAX_PIXELS) if image is not None else DEFAULT_MAX_PIXELS


def checked_dimensions(src: bytes | str, fmt: str | None) -> tuple[int, int] | None:
    """(width, height) from an image header (bytes, or a file path): the fast parser, Pillow as
    the fallback; None when unreadable; :class:`DownloadError` when it claims more pixels than
    Pillow's ``Image.MAX_IMAGE_PIXELS`` (a decompression bomb). Never raises anything else."""
    dims = header_size(src, fmt) if isinstance(src, bytes) and fmt is not None else None
    if dims is None:
        from PIL import Image

        source = io.BytesIO(src) if isinstance(src, bytes) else src
        try:
            with Image.open(source, formats=[fmt.upper()] if fmt else None) as im:
                dims = im.size
        except Image.DecompressionBombError:
            raise DownloadError(
                f"result refused: its header claims more than {2 * (max_pixels() or 0)} pixels (a decompression bomb)"
            ) from None
        except Exception:  # Pillow raises many kinds on malformed headers; all mean "no dimensions"
            return None
    _refuse_bomb(dims)
    return dims


def _refuse_bomb(dims: tuple[int, int]) -> None:
    limit = max_pixels()
    width, height = dims
    if limit is not None and width * height > limit:
        raise DownloadError(
            f"result refused: its header claims {width}x{height} pixels, over the {limit}-pixel limit "
            "(a decompression bomb; raise PIL.Image.MAX_IMAGE_PIXELS to accept such images)"
        )


def header_dimensions(data: bytes, fmt: str | None = None) -> tuple[int, int] | None:
    """(width, height) from the first bytes of an image, if they hold the header (a few µs for
    JPEG/PNG/WebP/GIF; Pillow when the fast parser cannot tell) and it claims no more pixels than
    Pillow allows; never raises."""
    try:
        return checked_dimensions(data, fmt)
    except DownloadError:
        return None


def image_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(width, height) from the image header, read with Pillow; None if unreadable or a bomb."""
    try:
        return checked_dimensions(os.fspath(path), None)
    except DownloadError:
        return None


def _not_an_image() -> DownloadError:
    return DownloadError("result is not a JPEG, PNG, WebP or GIF image")


class BodyCheck:
    """Every check of one result body, fed chunk by chunk, whatever the body is written to.

    At once (before any byte): the declared sizes (``Content-Length`` and the provider's
    ``expected_size`` against ``max_bytes`` and each other). As chunks come (:meth:`feed`): the
    running total against ``max_bytes``; after ``timeout`` seconds (default :data:`DEFAULT_GRACE`)
    the average rate against ``min_rate`` (:class:`RequestTimeoutError`); and the head: the format
    from the first bytes, the dimensions its header claims (a decompression bomb is refused).
    :attr:`ready` turns true once the head has passed (the header read, or :data:`FIRST_BYTES`
    seen without one): only then may a sink be given bytes. :meth:`finish`, at the end of the
    body: the total against ``Content-Length`` (:class:`ProtocolError`, a cut body) and the
    declared size.

    ``chunks`` are decoded bytes. With a ``content_encoding`` (gzip, say) ``Content-Length`` counts
    the compressed bytes on the wire and is not compared with the total: the transport checks the
    wire, and ``expected_size``, the provider's size of the image, is checked here.
    """

    __slots__ = (
        "content_length",
        "deadline_base",
        "dimensions",
        "expected_size",
        "first",
        "format",
        "grace",
        "identity",
        "max_bytes",
        "min_rate",
        "ready",
        "size",
        "start",
    )

    def __init__(
        self,
        *,
        content_length: int | None = None,
        content_encoding: str | None = None,
        expected_size: int | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float | None = None,
        min_rate: float = MIN_RATE,
    ) -> None:
        self.identity = is_identity(content_encoding)
        if content_length is not None and content_length > max_bytes:
            raise DownloadError(f"result is {content_length} bytes, over the {max_bytes}-byte maximum")
        if expected_size is not None and expected_size > max_bytes:
            raise DownloadError(f"result is {expected_size} bytes, over the {max_bytes}-byte maximum")
        if (
            content_length is not None
            and expected_size is not None
            and self.identity
            and content_length != expected_size
        ):
            raise DownloadError(f"result has {content_length} bytes but the provider declared {expected_size}")
        self.content_length = content_length
        self.expected_size = expected_size
        self.max_bytes = max_bytes
        self.min_rate = min_rate
        self.grace = DEFAULT_GRACE if timeout is None else timeout
        self.start = time.monotonic()
        self.size = 0
        self.first = b""
        self.format: str | None = None
        self.dimensions: tuple[int, int] | None = None
        self.ready = False

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Count one chunk and check what can be checked so far (see the class)."""
        size = self.size = self.size + len(chunk)
        if size > self.max_bytes:
            raise DownloadError(f"result exceeds the {self.max_bytes}-byte maximum")
        if not self.ready:
            first = self.first
            if not first and type(chunk) is bytes:
                self.first = chunk[:FIRST_BYTES]  # slicing bytes within their length copies nothing
            elif len(first) < FIRST_BYTES:
                self.first = first + bytes(chunk[: FIRST_BYTES - len(first)])
            self._judge(final=False)
        # A deadline that moves on with every byte that arrives: a steady body is never cut, a
        # trickle is (a per-read timeout alone never fires while a byte comes now and then).
        elapsed = time.monotonic() - self.start
        if elapsed > self.grace + size / self.min_rate:
            raise RequestTimeoutError(
                f"result body too slow: {size} bytes in {elapsed:.1f}s "
                f"(under {self.min_rate:g} bytes/s after {self.grace:g}s)"
            )

    def _judge(self, *, final: bool) -> None:
        first = self.first
        fmt = self.format
        if fmt is None:
            if len(first) < SNIFF_BYTES and not final:
                return
            fmt = self.format = sniff_format(first)
            if fmt is None:
                raise _not_an_image()
        dims = header_size(first, fmt)
        if dims is not None:
            _refuse_bomb(dims)
        elif final or len(first) >= FIRST_BYTES:
            dims = checked_dimensions(first, fmt)  # Pillow's reading (None: the header is further in)
        else:
            return  # the header may be in the bytes still to come
        self.dimensions = dims
        self.ready = True

    def finish(self) -> None:
        """The body has ended: the checks that need all of it (see the class)."""
        if not self.ready:
            self._judge(final=True)
        size = self.size
        if self.content_length is not None and size != self.content_length and self.identity:
            raise ProtocolError(f"body was cut: got {size} of {self.content_length} bytes")
        if self.expected_size is not None and size != self.expected_size:
            raise DownloadError(f"result has {size} bytes but the provider declared {self.expected_size}")


__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_MAX_BYTES",
    "FIRST_BYTES",
    "BodyCheck",
    "checked_dimensions",
    "header_dimensions",
    "image_size",
    "is_identity",
    "max_pixels",
    "sniff_format",
]
