"""The old import path: what other modules imported from here before ``results/`` was split.

Destinations are in ``_dest``, the body checks in ``_check``, the writers in ``_stream``; import
from those. This module goes once ``_client.py``, ``cli/`` and the provider namespaces do.
"""

from __future__ import annotations

from ._check import (
    DEFAULT_GRACE,
    DEFAULT_MAX_BYTES,
    FIRST_BYTES,
    header_dimensions,
    image_size,
    is_identity,
    sniff_format,
)
from ._dest import (
    MIN_FREE,
    NAME_MAX,
    SUFFIXES,
    AsyncSink,
    Dest,
    SyncSink,
    check_dest,
    check_destination,
    is_folder,
    part_path,
    prepare_dest,
    resolve_path,
    with_suffix,
)
from ._stream import CHUNK, Saved, save_stream, stream_to_file

__all__ = [
    "CHUNK",
    "DEFAULT_GRACE",
    "DEFAULT_MAX_BYTES",
    "FIRST_BYTES",
    "MIN_FREE",
    "NAME_MAX",
    "SUFFIXES",
    "AsyncSink",
    "Dest",
    "Saved",
    "SyncSink",
    "check_dest",
    "check_destination",
    "header_dimensions",
    "image_size",
    "is_folder",
    "is_identity",
    "part_path",
    "prepare_dest",
    "resolve_path",
    "save_stream",
    "sniff_format",
    "stream_to_file",
    "with_suffix",
]
