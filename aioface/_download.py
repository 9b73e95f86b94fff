"""Stream a response body to ``dest`` through a part file renamed into place only when complete."""

from __future__ import annotations

import contextlib
import inspect
import itertools
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from ._errors import DownloadError, ProtocolError
from ._imagesize import header_size

#: Bytes per read when streaming a result to disk.
CHUNK = 1 << 18
FIRST_BYTES = 1 << 16
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

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


@dataclass(frozen=True)
class Saved:
    """What :func:`stream_to_file` (or :func:`save_stream`) wrote."""

    #: None when the image went to memory or to a file object / sink.
    path: Path | None
    size: int
    format: str
    #: (width, height) read from the first bytes, when the header was in them.
    dimensions: tuple[int, int] | None = None
    #: The image itself, when the destination was None (in memory).
    data: bytes | None = None


_PART_SEQ = itertools.count()
_PART_SALT = secrets.token_hex(3)


#: The file suffix aioface gives each image format.
SUFFIXES = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "gif": ".gif"}


def with_suffix(dest: str | os.PathLike[str], fmt: str) -> str:
    """``dest`` as given when it has a suffix, else with the one for ``fmt`` (``.jpg``, ``.png``, ...).

    Plain strings: this runs once or twice per image, where a Path costs more than the rename.
    """
    d = os.fspath(dest)
    return d if os.path.splitext(os.path.basename(d))[1] else d + SUFFIXES[fmt]


def part_path(dest: str | os.PathLike[str]) -> str:
    """A unique part file beside ``dest`` (two writers of one dest never share it).

    A plain string: this runs once per image, and building another Path costs more than the rename.
    """
    return os.path.join(
        os.path.dirname(dest), f".{os.path.basename(dest)}.{os.getpid()}{_PART_SALT}{next(_PART_SEQ)}.part"
    )


async def stream_to_file(
    chunks: object,
    dest: str | os.PathLike[str],
    *,
    content_length: int | None = None,
    content_encoding: str | None = None,
    expected_size: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Saved:
    """Write the async-iterable ``chunks`` to ``dest`` atomically (``dest`` without a suffix gets one
    from the content).

    Checks the first bytes are an image, the total against ``Content-Length`` and any declared
    size, and ``max_bytes`` as it goes; on any failure or cancellation the part file is removed
    and ``dest`` is untouched.

    ``chunks`` are decoded bytes. With a ``content_encoding`` (gzip, say) ``Content-Length`` counts
    the compressed bytes on the wire, so it is not compared with what is written here: the
    transport checks the wire (aiohttp refuses a body shorter than its ``Content-Length``, and a
    broken gzip stream), and ``expected_size``, the provider's size of the image, is checked here.
    """
    if content_length is not None and content_length > max_bytes:
        raise DownloadError(f"result is {content_length} bytes, over the {max_bytes}-byte maximum")
    tmp = part_path(dest)
    try:
        f = open(tmp, "wb")  # noqa: ASYNC230, SIM115 - see below; closed by the with block
    except FileNotFoundError:
        os.makedirs(os.path.dirname(os.fspath(dest)) or ".", exist_ok=True)
        f = open(tmp, "wb")  # noqa: ASYNC230, SIM115
    size = 0
    fmt: str | None = None
    head = b""
    first = b""
    ok = False
    try:
        # Plain writes of CHUNK-sized pieces land in the page cache in microseconds; a thread hop per
        # chunk would cost more than it saves.
        with f:
            async for chunk in chunks:  # type: ignore[attr-defined]
                assert isinstance(chunk, bytes | bytearray | memoryview)
                if fmt is None and len(head) < 16:
                    head += bytes(chunk[: 16 - len(head)])
                if len(first) < FIRST_BYTES:
                    first += bytes(chunk[: FIRST_BYTES - len(first)])
                    if len(head) >= 12:
                        fmt = sniff_format(head)
                        if fmt is None:
                            raise DownloadError("result is not a JPEG, PNG, WebP or GIF image")
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadError(f"result exceeds the {max_bytes}-byte maximum")
                f.write(chunk)
        if fmt is None:
            fmt = sniff_format(head)
            if fmt is None:
                raise DownloadError("result is not a JPEG, PNG, WebP or GIF image")
        if content_length is not None and size != content_length and is_identity(content_encoding):
            raise ProtocolError(f"body was cut: got {size} of {content_length} bytes")
        if expected_size is not None and size != expected_size:
            raise DownloadError(f"result has {size} bytes but the provider declared {expected_size}")
        final = with_suffix(dest, fmt)
        os.replace(tmp, final)
        ok = True
        return Saved(Path(final), size, fmt, header_dimensions(first, fmt) or None)
    finally:
        if not ok:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def is_identity(content_encoding: str | None) -> bool:
    """True when a ``Content-Encoding`` header (or its absence) means the body is sent as is."""
    return content_encoding is None or content_encoding.strip().lower() in ("", "identity")


def header_dimensions(data: bytes, fmt: str | None = None) -> tuple[int, int] | None:
    """(width, height) from the first bytes of an image, if they hold the header (a few µs for
    JPEG/PNG/WebP/GIF; Pillow when the fast parser cannot tell)."""
    if fmt is not None:
        dims = header_size(data, fmt)
        if dims is not None:
            return dims
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data), formats=[fmt.upper()] if fmt else None) as im:
            return im.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the image header, read with Pillow; None if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError):
        return None


# ----------------------------------------------------------------------- where results go
#: The most a result kept in memory (``dest=None``) may hold, whatever ``max_download_bytes`` says.
MEMORY_MAX_BYTES = 32 * 1024 * 1024


@runtime_checkable
class SyncSink(Protocol):
    """A writable binary file object (``open(..., "wb")``, ``io.BytesIO``, a socket file...)."""

    def write(self, data: bytes, /) -> object: ...


@runtime_checkable
class AsyncSink(Protocol):
    """An object with ``async def write(data)`` (an upload to object storage, aiofiles, ...)."""

    async def write(self, data: bytes, /) -> object: ...


#: Where a result goes: a file path (a suffix from the content when it has none), an existing
#: folder or a path ending in ``/`` (a name from the task, or a counter), None (in memory, on
#: ``result.data``), or a writable binary file object / async sink.
Dest = str | os.PathLike[str] | SyncSink | AsyncSink | None

_FOLDER_SEQ: dict[str, itertools.count[int]] = {}


def is_folder(dest: str | os.PathLike[str]) -> bool:
    """True for an existing folder, or a path written with a trailing separator."""
    text = os.fspath(dest)
    return text.endswith(("/", os.sep)) or os.path.isdir(text)


def resolve_path(dest: str | os.PathLike[str], name: str | None = None) -> Path:
    """The file (no suffix yet when none was given) a path or folder destination means.

    In a folder the file is named after ``name`` (a task or request id, made safe) or, without
    one, ``result-0001``, ``result-0002``... skipping names already taken in that folder.
    """
    if not is_folder(dest):
        return Path(dest)
    from ._net import safe_name

    folder = Path(dest)
    if name:  # no dots: the suffix is the content's
        return folder / safe_name(name, default="result").replace(".", "_")
    seq = _FOLDER_SEQ.setdefault(os.path.abspath(folder), itertools.count(1))
    taken = {os.path.splitext(n)[0] for n in os.listdir(folder)} if folder.is_dir() else set()
    while True:
        stem = f"result-{next(seq):04d}"
        if stem not in taken:
            return folder / stem


async def save_stream(
    chunks: object,
    dest: Dest,
    *,
    name: str | None = None,
    content_length: int | None = None,
    content_encoding: str | None = None,
    expected_size: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Saved:
    """Send a result's chunks where the caller wants them (see :data:`Dest`), with every check.

    A path is written atomically (:func:`stream_to_file`). In memory the bytes are capped at
    :data:`MEMORY_MAX_BYTES`. A file object or sink receives the bytes as they arrive (it cannot
    be undone: on an error it may hold part of an image, and the error is raised).
    """
    if dest is None or (isinstance(dest, SyncSink | AsyncSink) and not isinstance(dest, str | os.PathLike)):
        cap = max_bytes if dest is not None else min(max_bytes, MEMORY_MAX_BYTES)
        return await _stream_to_sink(chunks, dest, content_length, content_encoding, expected_size, cap)
    return await stream_to_file(
        chunks,
        resolve_path(dest, name),
        content_length=content_length,
        content_encoding=content_encoding,
        expected_size=expected_size,
        max_bytes=max_bytes,
    )


async def _stream_to_sink(
    chunks: object,
    sink: SyncSink | AsyncSink | None,
    content_length: int | None,
    content_encoding: str | None,
    expected_size: int | None,
    max_bytes: int,
) -> Saved:
    if content_length is not None and content_length > max_bytes:
        raise DownloadError(f"result is {content_length} bytes, over the {max_bytes}-byte maximum")
    buf = bytearray() if sink is None else None
    write = None if sink is None else sink.write
    is_async = write is not None and inspect.iscoroutinefunction(write)
    size = 0
    first = b""
    fmt: str | None = None
    pending: list[bytes] = []  # held back until the first bytes prove an image
    async for chunk in chunks:  # type: ignore[attr-defined]
        data = bytes(chunk)
        size += len(data)
        if size > max_bytes:
            raise DownloadError(f"result exceeds the {max_bytes}-byte maximum")
        if len(first) < FIRST_BYTES:
            first += data[: FIRST_BYTES - len(first)]
        if fmt is None:
            pending.append(data)
            if len(first) < 12:
                continue
            fmt = sniff_format(first)
            if fmt is None:
                raise DownloadError("result is not a JPEG, PNG, WebP or GIF image")
            out, pending = b"".join(pending), []
        else:
            out = data
        if buf is not None:
            buf += out
        elif is_async:
            await write(out)  # type: ignore[misc]
        else:
            assert write is not None
            write(out)
    if fmt is None:
        fmt = sniff_format(first)
        if fmt is None:
            raise DownloadError("result is not a JPEG, PNG, WebP or GIF image")
        rest = b"".join(pending)
        if buf is not None:
            buf += rest
        elif is_async:
            await write(rest)  # type: ignore[misc]
        elif write is not None:
            write(rest)
    if content_length is not None and size != content_length and is_identity(content_encoding):
        raise ProtocolError(f"body was cut: got {size} of {content_length} bytes")
    if expected_size is not None and size != expected_size:
        raise DownloadError(f"result has {size} bytes but the provider declared {expected_size}")
    return Saved(None, size, fmt, header_dimensions(first, fmt) or None, bytes(buf) if buf is not None else None)
