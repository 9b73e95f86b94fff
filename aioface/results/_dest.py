"""Where a result may go (:data:`Dest`) and the checks a destination gets before anything is paid for."""

from __future__ import annotations

import hashlib
import itertools
import os
import secrets
import stat
from typing import Protocol, runtime_checkable

from .._errors import InvalidRequestError, StorageError

#: Longest file name most file systems take (ext4, XFS, btrfs, tmpfs: 255 bytes).
NAME_MAX = 255
#: A destination with less free space than this is refused before paying (where it can be known).
MIN_FREE = 1 << 18
#: The file suffix aioface gives each image format.
SUFFIXES = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "gif": ".gif"}
_SUFFIX_LIST = tuple(SUFFIXES.values())
_LONGEST_SUFFIX = max(len(s) for s in _SUFFIX_LIST)
_IMAGE_SUFFIXES = (*SUFFIXES.values(), ".jpeg")

_PART_SEQ = itertools.count()
_PART_SALT = secrets.token_hex(3)
_FOLDER_SEQ: dict[str, itertools.count[int]] = {}


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


def storage_error(exc: OSError, what: str | os.PathLike[str]) -> StorageError:
    """The :class:`StorageError` for a disk that refused ``what`` (its errno kept)."""
    return StorageError(f"cannot save {os.fspath(what)}: {exc.strerror or exc}", errno=exc.errno)


def free_space(folder: str | os.PathLike[str]) -> int | None:
    """Bytes an unprivileged writer may still put on the file system of ``folder`` (the nearest
    folder that exists), or None when it cannot be known."""
    path = os.fspath(folder) or "."
    while True:
        try:
            st = os.statvfs(path)
            return st.f_bavail * st.f_frsize
        except FileNotFoundError:
            up = os.path.dirname(path.rstrip(os.sep)) or "."
            if up == path:
                return None
            path = up
        except (OSError, ValueError):
            return None


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


class _File(str):
    """A file destination already checked and resolved (suffix included when one was due): the
    steps after the check take it as it is, without looking at the disk again."""

    __slots__ = ()


def is_folder(dest: str | os.PathLike[str]) -> bool:
    """True for a path written with a trailing separator, or an existing folder whose name has no
    image suffix (a folder named ``x.jpg`` is in the way of a file, not a place for results)."""
    if isinstance(dest, _File):
        return False
    text = os.fspath(dest)
    if text.endswith(("/", os.sep)):
        return True
    return _isdir(text) and os.path.splitext(text)[1].lower() not in _IMAGE_SUFFIXES


def is_path(dest: Dest) -> bool:
    """True when ``dest`` is a file or folder path (not None, not a file object or sink)."""
    return isinstance(dest, str | os.PathLike)


def prepare_dest(dest: Dest, fmt: str | None = None, *, param: str = "dest") -> Dest:
    """:func:`check_dest`, returning what to hand on to ``save_stream``: a file path gets the
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


__all__ = [
    "MIN_FREE",
    "NAME_MAX",
    "SUFFIXES",
    "AsyncSink",
    "Dest",
    "SyncSink",
    "check_dest",
    "check_destination",
    "free_space",
    "is_folder",
    "is_path",
    "part_path",
    "prepare_dest",
    "resolve_path",
    "storage_error",
    "with_suffix",
]
