"""What adapters hand the core: a plain description of one HTTP request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import _json
from .._errors import APIError, InvalidRequestError, ProtocolError


@dataclass(frozen=True)
class FormFile:
    """One file field of a multipart upload."""

    name: str
    data: bytes
    filename: str
    content_type: str


@dataclass(frozen=True)
class RequestSpec:
    """One HTTP request. Its repr never shows headers (they carry the key)."""

    method: str
    url: str
    headers: Mapping[str, str] = field(repr=False)
    params: Mapping[str, str] | None = None
    json: Any = None
    files: tuple[FormFile, ...] = ()
    #: True when sending it twice is harmless (GETs); POSTs that start paid work are not.
    idempotent: bool = True
    #: Seconds to wait for the answer (socket read), None for the client default.
    timeout: float | None = None


def decode_json(provider: str, status: int, body: bytes) -> Any:
    """Parse a JSON body or raise ProtocolError naming the provider."""
    try:
        return _json.loads(body)
    except ValueError:
        snippet = body[:80].decode("utf-8", "replace")
        raise ProtocolError(f"{provider} sent a non-JSON answer (HTTP {status}): {snippet!r}") from None


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works on plain dicts too."""
    v = headers.get(name)
    if v is not None:
        return v
    low = name.lower()
    for k, val in headers.items():
        if k.lower() == low:
            return val
    return None


def require_int(value: object, name: str, lo: int, hi: int) -> int:
    """An int (not a bool) in ``[lo, hi]`` or an InvalidRequestError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"{name} must be an integer from {lo} to {hi}, got {value!r}", param=name)
    if not lo <= value <= hi:
        raise InvalidRequestError(f"{name} must be from {lo} to {hi}, got {value}", param=name)
    return value


def require_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` or an InvalidRequestError naming ``name`` and the valid options."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidRequestError(f"{name} must be one of {', '.join(choices)}; got {value!r}", param=name)
    return value


__all__ = ["APIError", "FormFile", "RequestSpec", "decode_json", "header", "require_choice", "require_int"]
