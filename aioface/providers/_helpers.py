"""Small validation helpers the provider adapters share: JSON decoding, header lookup, parameter checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from .. import _json
from .._errors import InvalidRequestError, ProtocolError

_CASELESS = (CIMultiDict, CIMultiDictProxy)


def decode_json(provider: str, status: int, body: bytes) -> Any:
    """Parse a JSON body or raise ProtocolError naming the provider."""
    try:
        return _json.loads(body)
    except ValueError:
        snippet = body[:80].decode("utf-8", "replace")
        raise ProtocolError(f"{provider} sent a non-JSON answer (HTTP {status}): {snippet!r}") from None


def decode_json_object(provider: str, status: int, body: bytes, what: str = "an object") -> dict[str, Any]:
    """Parse a JSON object (``what`` names it in the error) or raise ProtocolError naming the provider."""
    data = decode_json(provider, status, body)
    if not isinstance(data, dict):
        raise ProtocolError(f"{provider} sent {type(data).__name__} where {what} was expected")
    return data


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works on plain dicts too."""
    v = headers.get(name)
    if v is not None or isinstance(headers, _CASELESS):
        return v  # a case-insensitive mapping (aiohttp's headers) has said all there is
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


def number_in(value: object) -> float | None:
    """A number, or a string holding one (providers send scores and credits as either); None for
    anything else, a bool, or NaN."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        f = float(value)
    elif isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return f if f == f else None


__all__ = ["number_in", "decode_json", "decode_json_object", "header", "require_choice", "require_int"]
