"""Stream a result body where it goes: a file (a part file renamed into place when complete), memory, a sink.

Every body, wherever it goes, is checked by one :class:`~aioface.results._check.BodyCheck`.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import os
from dataclasses import dataclass
from io import FileIO
from pathlib import Path

from .._errors import AiofaceError, DownloadError, StorageError, TransportError
from ..transports._base import MIN_RATE
from ._check import DEFAULT_MAX_BYTES, FIRST_BYTES, BodyCheck, checked_dimensions
from ._dest import AsyncSink, Dest, SyncSink, is_path, part_path, resolve_path, storage_error, with_suffix

#: Bytes per read when streaming a result.
CHUNK = 1 << 18
#: The most a result kept in memory (``dest=None``) may hold, whatever ``max_download_bytes`` says.
MEMORY_MAX_BYTES = 32 * 1024 * 1024


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


# ----------------------------------------------------------------------- files
def _open_part(dest: str | os.PathLike[str], tmp: str) -> FileIO:
    """The part file, unbuffered: a write that fails (disk full) fails there, never later in close()."""
    try:
        try:
            return FileIO(tmp, "w")
        except FileNotFoundError:
            os.makedirs(os.path.dirname(os.fspath(dest)) or ".", exist_ok=True)
            return FileIO(tmp, "w")
    except OSError as exc:
        raise storage_error(exc, dest) from None


def _write_all(f: FileIO, data: bytes | bytearray | memoryview, dest: str | os.PathLike[str]) -> None:
    view = memoryview(data)
    try:
        while view:
            n = f.write(view)
            if not n:
                raise OSError(errno.EIO, "the write made no progress")
            view = view[n:]
    except OSError as exc:
        raise storage_error(exc, dest) from None


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
    from the content), with every check of :class:`BodyCheck` (an image, the declared and capped
    sizes, no decompression bomb, the minimum rate after ``timeout`` seconds). A disk that refuses
    the file (full, read-only, name too long) is a :class:`StorageError`. On any failure or
    cancellation the part file is removed and ``dest`` is untouched.
    """
    check = BodyCheck(
        content_length=content_length,
        content_encoding=content_encoding,
        expected_size=expected_size,
        max_bytes=max_bytes,
        timeout=timeout,
        min_rate=min_rate,
    )
    tmp = part_path(dest)
    f = _open_part(dest, tmp)
    ok = False
    try:
        # Plain writes of CHUNK-sized pieces land in the page cache in microseconds; a thread hop per
        # chunk would cost more than it saves. (FileIO: one write call per chunk, no buffer to flush.)
        with f:
            async for chunk in chunks:  # type: ignore[attr-defined]
                check.feed(chunk)
                _write_all(f, chunk, dest)
        check.finish()
        fmt = check.format
        assert fmt is not None
        dims = check.dimensions
        if dims is None and len(check.first) >= FIRST_BYTES:
            dims = checked_dimensions(tmp, fmt)  # the header is further in (big metadata first): read it there
        final = with_suffix(dest, fmt)
        try:
            os.replace(tmp, final)
        except OSError as exc:
            raise storage_error(exc, final) from None
        ok = True
        return Saved(Path(final), check.size, fmt, dims)
    finally:
        if not ok:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


# ----------------------------------------------------------------------- file objects and sinks
class SinkWriter:
    """A file object or async sink as one call sees it, across the attempts of that call.

    Writes go through :meth:`write` (a sink that raises is a :class:`StorageError`, its own
    exception the cause). Before an attempt, :meth:`rewind` undoes what an earlier attempt wrote:
    a seekable file object is put back where the first byte went and truncated there; any other
    sink that has received bytes cannot be undone, and the result is never written into it twice.
    """

    __slots__ = ("_async", "_start", "_write", "sink", "written")

    def __init__(self, sink: SyncSink | AsyncSink) -> None:
        self.sink = sink
        self._write = sink.write
        self._async = inspect.iscoroutinefunction(self._write)
        #: Bytes handed to the sink since the last rewind (counted before each write is tried).
        self.written = 0
        self._start: int | None = None

    def _position(self) -> int | None:
        """Where the next byte goes, for a seekable synchronous file object; else None."""
        if self._async:
            return None
        seekable = getattr(self.sink, "seekable", None)
        try:
            if callable(seekable) and seekable():
                pos = self.sink.tell()  # type: ignore[union-attr]
                return pos if isinstance(pos, int) else None
        except Exception:  # a file object that says it seeks and then cannot: it cannot
            return None
        return None

    @property
    def can_rewind(self) -> bool:
        """True when what was written can be undone (nothing written, or a seekable file object)."""
        return not self.written or self._start is not None

    def rewind(self) -> bool:
        """Undo what was written (see the class); False when it cannot be undone."""
        if not self.written:
            return True
        start = self._start
        if start is None:
            return False
        try:
            self.sink.seek(start)  # type: ignore[union-attr]
            self.sink.truncate(start)  # type: ignore[union-attr]
        except Exception:
            return False
        self.written = 0
        return True

    async def write(self, data: bytes) -> None:
        if not self.written:
            self._start = self._position()
        self.written += len(data)
        try:
            if self._async:
                await self._write(data)  # type: ignore[misc]
                return
            n = self._write(data)
            while isinstance(n, int) and n < len(data):  # a raw file object may write part of it
                if n <= 0:
                    raise OSError(errno.EIO, "the write made no progress")
                data = data[n:]
                n = self._write(data)
        except AiofaceError:
            raise
        except Exception as exc:
            raise StorageError(f"the destination refused the result: {exc}", errno=getattr(exc, "errno", None)) from exc


def sink_writer(dest: Dest) -> Dest:
    """``dest`` to hand to each attempt of one call: a file object or sink becomes one
    :class:`SinkWriter` (so that a retry never writes after an earlier attempt's bytes);
    a path, a folder or None comes back as it is."""
    if dest is None or is_path(dest) or isinstance(dest, SinkWriter):
        return dest
    return SinkWriter(dest)  # type: ignore[arg-type]


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
    :data:`MEMORY_MAX_BYTES`. A file object or sink receives bytes only once the head checks have
    passed (format, dimensions, declared sizes), then as they arrive: it cannot be undone, so on a
    later error it may hold part of an image. Give each attempt of one call the same
    :func:`sink_writer`: an attempt after one that wrote first rewinds a seekable file object, and
    a sink that cannot be rewound gets a :class:`DownloadError` instead of a second copy.
    """
    # Paths first: a runtime protocol check costs tens of microseconds per call.
    if dest is not None and is_path(dest):
        return await stream_to_file(
            chunks,
            resolve_path(dest, name),  # type: ignore[arg-type]
            content_length=content_length,
            content_encoding=content_encoding,
            expected_size=expected_size,
            max_bytes=max_bytes,
            timeout=timeout,
        )
    out = None if dest is None else sink_writer(dest)
    assert out is None or isinstance(out, SinkWriter)
    if out is not None and not out.rewind():
        raise _not_again(out, None)
    check = BodyCheck(
        content_length=content_length,
        content_encoding=content_encoding,
        expected_size=expected_size,
        max_bytes=max_bytes if out is not None else min(max_bytes, MEMORY_MAX_BYTES),
        timeout=timeout,
    )
    try:
        return await _stream_to_sink(chunks, out, check)
    except Exception as exc:
        # A cut or slow body (a TransportError, or the transport's own exception, which it maps
        # on the way out) is what the dispatcher retries: never into a sink that cannot rewind.
        if isinstance(exc, AiofaceError) and not isinstance(exc, TransportError):
            raise
        if out is not None and not out.can_rewind:
            raise _not_again(out, exc) from exc
        raise


def _not_again(out: SinkWriter, exc: Exception | None) -> DownloadError:
    if exc is None:
        why = ""
    elif isinstance(exc, AiofaceError):
        why = f"{exc.message}; "
    else:
        why = f"the body was cut or stalled ({type(exc).__name__}); "
    return DownloadError(
        f"{why}{out.written} bytes of the result already went to a destination that cannot be rewound, "
        "so it is not written there again: fetch the result again (its ids and URL are on this error)"
    )


async def _stream_to_sink(chunks: object, out: SinkWriter | None, check: BodyCheck) -> Saved:
    """The body to memory (``out`` None) or to ``out``, which gets nothing before ``check`` is ready."""
    buf = bytearray() if out is None else None
    pending: list[bytes] = []  # held back until the head checks have passed
    async for chunk in chunks:  # type: ignore[attr-defined]
        check.feed(chunk)
        if buf is not None:
            buf += chunk
            continue
        assert out is not None
        if not check.ready:
            pending.append(bytes(chunk))
            continue
        if pending:
            pending.append(bytes(chunk))
            data, pending = b"".join(pending), []
        else:
            data = bytes(chunk)
        await out.write(data)
    check.finish()
    if pending:
        assert out is not None
        await out.write(b"".join(pending))
    fmt = check.format
    assert fmt is not None
    dims = check.dimensions
    if dims is None and buf is not None and len(check.first) >= FIRST_BYTES:
        dims = checked_dimensions(bytes(buf), fmt)  # the header is further in
    return Saved(None, check.size, fmt, dims, bytes(buf) if buf is not None else None)


__all__ = ["CHUNK", "MEMORY_MAX_BYTES", "Saved", "SinkWriter", "save_stream", "sink_writer", "stream_to_file"]
