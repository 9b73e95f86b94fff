"""The only module that imports orjson."""

from __future__ import annotations

from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError


def dumps(obj: Any) -> bytes:
    """Serialise ``obj`` to compact UTF-8 JSON bytes."""
    return orjson.dumps(obj)


def dumps_line(obj: Any) -> bytes:
    """Serialise ``obj`` as one JSON line ending in a newline."""
    return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises :class:`JSONDecodeError` (a ``ValueError``) on bad input."""
    return orjson.loads(data)
