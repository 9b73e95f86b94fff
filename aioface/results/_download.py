"""Stream a response body to ``dest`` through a part file renamed into place only when complete."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import inspect
import itertools
import os
import secrets
import stat
import sys
import time
from dataclasses import dataclass
from io import FileIO
from pathlib import Path
from typing import Protocol, runtime_checkable

from .._errors import DownloadError, InvalidRequestError, ProtocolError, RequestTimeoutError, StorageError
from ..transports._base import MIN_RATE
from ._imagesize import header_size

#: Bytes per read when streaming a result to disk.
CHUNK = 1 << 18
FIRST_BYTES = 1 << 16
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: Seconds before the rate counts, when the caller gives none (the client's default timeout).
DEFAULT_GRACE = 60.0
#: Longest file name most file systems take (ext4, XFS, btrfs, tmpfs: 255 bytes).
NAME_MAX = 255
#: Pillow's default ``Image.MAX_IMAGE_PIXELS`` (used until Pillow is imported and perhaps changed).
_DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3

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
    #: (width, height) read from the header, when it could be read.
    dimensions: tuple[int, int] | None = None
    #: The image itself, when the destination was None (in memory).
    data: bytes | None = None


_PART_SEQ = itertools.count()
_PART_SALT = secrets.token_hex(3)


#: The file suffix aioface gives each image format.
SUFFIXES = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "gif": ".gif"}


def with_suffix(dest: str | os.PathLike[str], fmt: str) -> str:
    """``dest`` as given when it has a suffix, else with the one for ``fmt`` (``.jpg``, ``.png``, ...).

    :class:`InvalidRequestError` (``param="dest"``) when ``dest`` names no file (``""``, ``.``,
    ``..``, or a path ending in ``/``). Plain strings: this runs once or twice per image, where a
    Path costs more than the rename.
    """
    d = os.fspath(dest)
    name = os.path.basename(d)
    if name in ("", ".", ".."):
        raise InvalidRequestError(f"dest must name a file, got {d!r}", param="dest")
    return d if os.path.splitext(name)[1] else d + SUFFIXES[fmt]


def part_path(dest: str | os.PathLike[str]) -> str:
    """A unique part file beside ``dest`` (two writers of one dest never share it).

    Named ``.{name}.{unique}.part``, or ``.aioface-{hash}.{unique}.part`` when that would be longer
    than a file name may be (a name the file system takes must not fail for its part file's sake).
    A plain string: this runs once per image, and building another Path costs more than the rename.
    """
    name = os.path.basename(dest)
    unique = f"{os.getpid()}{_PART_SALT}{next(_PART_SEQ)}"
    if 4 * len(name) + len(unique) + 8 > NAME_MAX and len(os.fsencode(name)) + len(unique) + 8 > NAME_MAX:
        name = "aioface-" + hashlib.sha256(os.fsencode(name)).hexdigest()[:16]
    return os.path.join(os.path.dirname(dest), f".{name}.{unique}.part")


#: A destination with less free space than this is refused before paying (where it can be known).
MIN_FREE = CHUNK
_SUFFIX_LIST = tuple(SUFFIXES.values())
_LONGEST_SUFFIX = max(len(s) for s in _SUFFIX_LIST)


def check_destination(dest: str | os.PathLike[str], *, param: str = "dest", isdir: bool | None = None) -> None:
    """Refuse, before anything is sent and paid for, a destination no result could be saved to:
    no file name, a name the file system will not take, a folder in the way, a parent that is a
    file, a read-only or unwritable folder, a full disk. :class:`InvalidRequestError` (``param``).

    A few system calls on strings (no ``Path`` objects): cheap enough to run before every request.
    ``isdir``: whether ``dest`` itself is a folder, when the caller has just looked (one stat less).
    """
    text = os.fspath(dest)
    name = os.path.basename(text)
    if name in ("", ".", ".."):
        raise InvalidRequestError(f"{param} must name a file, got {text!r}", param=param)
    ext = os.path.splitext(name)[1]
    has_suffix = ext not in ("", ".")
    if len(os.fsencode(name)) + (0 if has_suffix else _LONGEST_SUFFIX) > NAME_MAX:
        raise InvalidRequestError(f"{param}: file name longer than {NAME_MAX} bytes: {name[:40]}...", param=param)
    if has_suffix:
        if _isdir(text) if isdir is None else isdir:
            raise InvalidRequestError(f"{param}: {text} is a folder", param=param)
    else:
        for candidate in [text + s for s in _SUFFIX_LIST]:
            if _isdir(candidate):
                raise InvalidRequestError(f"{param}: {candidate} is a folder", param=param)
    folder = os.path.dirname(text) or "."
    while True:  # the nearest folder that exists (the missing ones will be made)
        try:
            mode: int | None = os.stat(folder).st_mode
            break
        except (OSError, ValueError):
            mode = None
        up = os.path.dirname(folder.rstrip(os.sep)) or "."
        if up == folder:
            break
        folder = up
    if mode is None or not stat.S_ISDIR(mode):
        raise InvalidRequestError(f"{param}: {folder} is not a folder", param=param)
    try:
        st = os.statvfs(folder)
    except OSError:
        return
    if st.f_flag & os.ST_RDONLY:
        raise InvalidRequestError(f"{param}: {folder} is on a read-only file system", param=param)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidRequestError(f"{param}: {folder} is not writable", param=param)
    free = st.f_bavail * st.f_frsize
    if free < MIN_FREE:
        raise InvalidRequestError(f"{param}: no space left on the disk of {folder} ({free} bytes free)", param=param)


def _isdir(text: str) -> bool:
    """``os.path.isdir``, cheaper for a path that does not exist (the usual case for a new file):
    ``access`` answers that without the exception ``stat`` raises."""
    if not os.access(text, os.F_OK):
        return False
    try:
        return stat.S_ISDIR(os.stat(text).st_mode)
    except (OSError, ValueError):
        return False


def _storage_error(exc: OSError, what: str | os.PathLike[str]) -> StorageError:
    return StorageError(f"cannot save {os.fspath(what)}: {exc.strerror or exc}", errno=exc.errno)


def _open_part(dest: str | os.PathLike[str], tmp: str) -> FileIO:
    """The part file, unbuffered: a write that fails (disk full) fails there, never later in close()."""
    try:
        try:
            return FileIO(tmp, "w")
        except FileNotFoundError:
            os.makedirs(os.path.dirname(os.fspath(dest)) or ".", exist_ok=True)
            return FileIO(tmp, "w")
    except OSError as exc:
        raise _storage_error(exc, dest) from None


def _write_all(f: FileIO, data: bytes | bytearray | memoryview, dest: str | os.PathLike[str]) -> None:
    view = memoryview(data)
    try:
        while view:
            n = f.write(view)
            if not n:
                raise OSError(errno.EIO, "the write made no progress")
            view = view[n:]
    except OSError as exc:
        raise _storage_error(exc, dest) from None


async def stream_to_file(
    chunks: object,
    dest: str | os.PathLike[str],
    *,
    content_length: int | None = None,
    content_encoding: str | None = None,
    expected_size: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float | None = None,
    min_rate: float = MIN_RATE,
) -> Saved:
    """Write the async-iterable ``chunks`` to ``dest`` atomically (``dest`` without a suffix gets one
    from the content).

    Checks the first bytes are an image, the total against ``Content-Length`` and any declared
    size, and ``max_bytes`` as it goes; refuses an image whose header claims more pixels than
    Pillow's ``Image.MAX_IMAGE_PIXELS`` (a decompression bomb). After ``timeout`` seconds (default
    :data:`DEFAULT_GRACE`) the body must have come at ``min_rate`` bytes a second on average,
    checked as each piece arrives, or :class:`RequestTimeoutError` (a body that stops altogether
    meets the transport's per-read timeout). A disk that refuses the file (full, read-only, name
    too long) is a :class:`StorageError`. On any failure or cancellation the part file is removed
    and ``dest`` is untouched.

    ``chunks`` are decoded bytes. With a ``content_encoding`` (gzip, say) ``Content-Length`` counts
    the compressed bytes on the wire, so it is not compared with what is written here: the
    transport checks the wire (aiohttp refuses a body shorter than its ``Content-Length``, and a
    broken gzip stream), and ``expected_size``, the provider's size of the image, is checked here.
    """
    if content_length is not None and content_length > max_bytes:
        raise DownloadError(f"result is {content_length} bytes, over the {max_bytes}-byte maximum")
    grace = DEFAULT_GRACE if timeout is None else timeout
    tmp = part_path(dest)
    f = _open_part(dest, tmp)
    size = 0
    fmt: str | None = None
    first = b""
    ok = False
    try:
        # Plain writes of CHUNK-sized pieces land in the page cache in microseconds; a thread hop per
        # chunk would cost more than it saves. (FileIO: one write call per chunk, no buffer to flush.)
        with f:
            # A deadline that moves on with every byte that arrives: a steady body is never cut, a
            # trickle is (a per-read timeout alone never fires while a byte comes now and then).
            start = time.monotonic()
            async for chunk in chunks:  # type: ignore[attr-defined]
                assert isinstance(chunk, bytes | bytearray | memoryview)
                if len(first) < FIRST_BYTES:
                    # The first bytes, kept for the sniff and the header; a first chunk that is
                    # bytes is kept as is (slicing bytes within their length copies nothing).
                    if not first and type(chunk) is bytes:
                        first = chunk[:FIRST_BYTES]
                    else:
                        first += bytes(chunk[: FIRST_BYTES - len(first)])
                    if fmt is None and len(first) >= 12:
                        fmt = sniff_format(first)
                        if fmt is None:
                            raise DownloadError("result is not a JPEG, PNG, WebP or GIF image")
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadError(f"result exceeds the {max_bytes}-byte maximum")
                _write_all(f, chunk, dest)
                elapsed = time.monotonic() - start
                if elapsed > grace + size / min_rate:
                    raise RequestTimeoutError(
                        f"result body too slow: {size} bytes in {elapsed:.1f}s "
                        f"(under {min_rate:g} bytes/s after {grace:g}s)"
                    )
        if fmt is None:
            fmt = sniff_format(first)
            if fmt is None:
                raise DownloadError("result is not a JPEG, PNG, WebP or GIF image")
        if content_length is not None and size != content_length and is_identity(content_encoding):
            raise ProtocolError(f"body was cut: got {size} of {content_length} bytes")
        if expected_size is not None and size != expected_size:
            raise DownloadError(f"result has {size} bytes but the provider declared {expected_size}")
        dims = _dimensions(first, fmt)
        if dims is None and len(first) >= FIRST_BYTES:
            dims = _dimensions(tmp, fmt)  # the header is further in (big metadata first): read it there
        final = with_suffix(dest, fmt)
        try:
            os.replace(tmp, final)
        except OSError as exc:
            raise _storage_error(exc, final) from None
        ok = True
        return Saved(Path(final), size, fmt, dims)
    finally:
        if not ok:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def is_identity(content_encoding: str | None) -> bool:
    """True when a ``Content-Encoding`` header (or its absence) means the body is sent as is."""
    return content_encoding is None or content_encoding.strip().lower() in ("", "identity")


def _max_pixels() -> int | None:
    """Pillow's ``Image.MAX_IMAGE_PIXELS`` as the user left it (without importing Pillow for it)."""
    image = sys.modules.get("PIL.Image")
    return getattr(image, "MAX_IMAGE_PIXELS", _DEFAULT_MAX_PIXELS) if image is not None else _DEFAULT_MAX_PIXELS


def _dimensions(src: bytes | str, fmt: str | None) -> tuple[int, int] | None:
    """(width, height) from an image header (bytes, or a file path): the fast parser, Pillow as
    the fallback; None when unreadable; :class:`DownloadError` when it claims more pixels than
    Pillow's ``Image.MAX_IMAGE_PIXELS`` (a decompression bomb). Never raises anything else."""
    dims = header_size(src, fmt) if isinstance(src, bytes) and fmt is not None else None
    if dims is None:
        import io

        from PIL import Image

        source = io.BytesIO(src) if isinstance(src, bytes) else src
        try:
            with Image.open(source, formats=[fmt.upper()] if fmt else None) as im:
                dims = im.size
        except Image.DecompressionBombError:
            raise DownloadError(
                f"result refused: its header claims more than {2 * (_max_pixels() or 0)} pixels (a decompression bomb)"
            ) from None
        except Exception:  # Pillow raises many kinds on malformed headers; all mean "no dimensions"
            return None
    limit = _max_pixels()
    width, height = dims
    if limit is not None and width * height > limit:
        raise DownloadError(
            f"result refused: its header claims {width}x{height} pixels, over the {limit}-pixel limit "
            "(a decompression bomb; raise PIL.Image.MAX_IMAGE_PIXELS to accept such images)"
        )
    return dims


def header_dimensions(data: bytes, fmt: str | None = None) -> tuple[int, int] | None:
    """(width, height) from the first bytes of an image, if they hold the header (a few µs for
    JPEG/PNG/WebP/GIF; Pillow when the fast parser cannot tell) and it claims no more pixels than
    Pillow allows; never raises."""
    try:
        return _dimensions(data, fmt)
    except DownloadError:
        return None


def image_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(width, height) from the image header, read with Pillow; None if unreadable or a bomb."""
    try:
        return _dimensions(os.fspath(path), None)
    except DownloadError:
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


class _File(str):
    """A file destination already checked and resolved (suffix included when one was due): the
    steps after the check take it as it is, without looking at the disk again."""

    __slots__ = ()


_IMAGE_SUFFIXES = (*SUFFIXES.values(), ".jpeg")


def is_folder(dest: str | os.PathLike[str]) -> bool:
    """True for a path written with a trailing separator, or an existing folder whose name has no
    image suffix (a folder named ``x.jpg`` is in the way of a file, not a place for results)."""
    if isinstance(dest, _File):
        return False
    text = os.fspath(dest)
    if text.endswith(("/", os.sep)):
        return True
    return _isdir(text) and os.path.splitext(text)[1].lower() not in _IMAGE_SUFFIXES


def prepare_dest(dest: Dest, fmt: str | None = None, *, param: str = "dest") -> Dest:
    """:func:`check_dest`, returning what to hand on to :func:`save_stream`: a file path gets the
    suffix of ``fmt`` when it has none (and ``fmt`` is given) and comes back marked as checked, so
    that nothing after looks at the disk again (one ``stat`` of ``dest`` decides folder or file);
    a folder, None, a file object or a sink come back as they are."""
    if dest is None or not isinstance(dest, str | os.PathLike):
        return dest
    if isinstance(dest, _File):
        return dest
    text = os.fspath(dest)
    if text.endswith(("/", os.sep)):
        check_destination(os.path.join(text, "result"), param=param)
        return dest
    d_isdir = _isdir(text)
    if d_isdir and os.path.splitext(text)[1].lower() not in _IMAGE_SUFFIXES:
        check_destination(os.path.join(text, "result"), param=param)
        return dest
    target = with_suffix(text, fmt) if fmt is not None else text
    check_destination(target, param=param, isdir=d_isdir if target is text else None)
    return _File(target)


def check_dest(dest: Dest, *, param: str = "dest") -> None:
    """:func:`check_destination` for any :data:`Dest` (memory and sinks need no check; a folder is
    checked as the place of a file in it)."""
    prepare_dest(dest, param=param)


def resolve_path(dest: str | os.PathLike[str], name: str | None = None) -> str:
    """The file (no suffix yet when none was given) a path or folder destination means.

    In a folder the file is named after ``name`` (a task or request id: kept when plain, else made
    safe and tagged with its hash, so two ids never share a file) or, without one,
    ``result-0001``, ``result-0002``... skipping names already taken in that folder.
    """
    if isinstance(dest, _File):
        return dest
    if not is_folder(dest):
        return os.fspath(dest)
    from .._net import unique_name

    folder = os.fspath(dest)
    if name:  # no dots: the suffix is the content's
        return os.path.join(folder, unique_name(name, default="result"))
    seq = _FOLDER_SEQ.setdefault(os.path.abspath(folder), itertools.count(1))
    taken = {os.path.splitext(n)[0] for n in os.listdir(folder)} if os.path.isdir(folder) else set()
    while True:
        stem = f"result-{next(seq):04d}"
        if stem not in taken:
            return os.path.join(folder, stem)


async def save_stream(
    chunks: object,
    dest: Dest,
    *,
    name: str | None = None,
    content_length: int | None = None,
    content_encoding: str | None = None,
    expected_size: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float | None = None,
) -> Saved:
    """Send a result's chunks where the caller wants them (see :data:`Dest`), with every check.

    A path is written atomically (:func:`stream_to_file`). In memory the bytes are capped at
    :data:`MEMORY_MAX_BYTES`. A file object or sink receives the bytes as they arrive (it cannot
    be undone: on an error it may hold part of an image, and the error is raised).
    """
    # Paths first: a runtime protocol check costs tens of microseconds per call.
    if dest is None or (not isinstance(dest, str | os.PathLike) and isinstance(dest, SyncSink | AsyncSink)):
        cap = max_bytes if dest is not None else min(max_bytes, MEMORY_MAX_BYTES)
        return await _stream_to_sink(chunks, dest, content_length, content_encoding, expected_size, cap, timeout)
    return await stream_to_file(
        chunks,
        resolve_path(dest, name),
        content_length=content_length,
        content_encoding=content_encoding,
        expected_size=expected_size,
        max_bytes=max_bytes,
        timeout=timeout,
    )


async def _stream_to_sink(
    chunks: object,
    sink: SyncSink | AsyncSink | None,
    content_length: int | None,
    content_encoding: str | None,
    expected_size: int | None,
    max_bytes: int,
    timeout: float | None,
) -> Saved:
    """:func:`stream_to_file`'s checks (image, sizes, trickle, bomb) for memory or a sink."""
    if content_length is not None and content_length > max_bytes:
        raise DownloadError(f"result is {content_length} bytes, over the {max_bytes}-byte maximum")
    grace = DEFAULT_GRACE if timeout is None else timeout
    start = time.monotonic()
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
        elapsed = time.monotonic() - start
        if elapsed > grace + size / MIN_RATE:
            raise RequestTimeoutError(
                f"result body too slow: {size} bytes in {elapsed:.1f}s (under {MIN_RATE:g} bytes/s after {grace:g}s)"
            )
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
    dims = _dimensions(first, fmt)  # DownloadError for a decompression bomb
    if dims is None and buf is not None and len(first) >= FIRST_BYTES:
        dims = _dimensions(bytes(buf), fmt)  # the header is further in
    return Saved(None, size, fmt, dims, bytes(buf) if buf is not None else None)
