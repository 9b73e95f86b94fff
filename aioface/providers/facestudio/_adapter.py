"""Face Studio: one GET endpoint returning image bytes; DRF-style JSON errors."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from ..._errors import APIError, InvalidRequestError, api_error_for_status
from ..._retry import parse_retry_after
from ...limits import Rate
from ...transports._base import RequestSpec
from .._base import decode_json, header, require_choice, require_int

PROVIDER = "facestudio"
# GUESS: the docs show the generate endpoint with its URL left blank, naming neither host nor path;
# both are ours to guess (override with AIOFACE_FACESTUDIO_BASE_URL).
DEFAULT_BASE_URL = "https://facestud.io"
PATH = "/v1/generate"

#: Face Studio's documented tiers: burst and sustained limits per ``X-User-Class``.
TIERS: dict[str, tuple[Rate, ...]] = {
    "anon": (Rate(1, 60.0), Rate(60, 86400.0)),
    "basic": (Rate(5, 60.0), Rate(120, 86400.0)),
    "professional": (Rate(30, 60.0), Rate(1000, 86400.0)),
    "enterprise": (Rate(120, 60.0), Rate(6000, 86400.0)),
}
_THROTTLE_RE = re.compile(r"Expected available in (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)

GENDERS = ("male", "female")
ETHNICITIES = (
    "european",
    "african",
    "west_asian",
    "south_asian",
    "east_asian",
    "southeast_asian",
    "latin_american",
)
FORMATS = ("jpeg", "webp")
EYEWEAR = ("auto", "none", "eyeglasses", "sunglasses")
LIGHTING = ("auto", "studio", "natural", "artistic")
ZOOM = ("standard", "closeup")
YESNO = ("yes", "no")
MOODS = ("auto", "joyous", "composed")

BASIC_PARAMS = ("gender", "ethnicity", "age", "resolution", "image_format")
ADVANCED_PARAMS = (
    "seed",
    "skintone",
    "eyewear",
    "hair_length",
    "facial_hair",
    "lighting",
    "zoom_level",
    "stampless",
    "mood",
    "view_profile",
)
#: Classes (X-User-Class, lower-cased) that may use the advanced parameters.
ADVANCED_CLASSES = ("professional", "enterprise")

_DRF_CODES = {
    400: "invalid",
    401: "authentication_failed",
    403: "permission_denied",
    404: "not_found",
    429: "throttled",
}


def build_params(**kwargs: Any) -> dict[str, str]:
    """Validate every documented parameter and return the query string values.

    None means "omit" (the provider picks). Raises InvalidRequestError naming the bad parameter.
    """
    out: dict[str, str] = {}
    for name, value in kwargs.items():
        if value is None:
            continue
        if name == "gender":
            out[name] = require_choice(value, name, GENDERS)
        elif name == "ethnicity":
            out[name] = require_choice(value, name, ETHNICITIES)
        elif name == "age":
            out[name] = str(require_int(value, name, 0, 80))
        elif name == "resolution":
            out[name] = str(require_int(value, name, 128, 1024))
        elif name == "image_format":
            out[name] = require_choice(value, name, FORMATS)
        elif name == "seed":
            out[name] = str(require_int(value, name, 1, 2**32))
        elif name == "skintone":
            out[name] = str(require_int(value, name, 0, 10))
        elif name in ("hair_length", "facial_hair"):
            out[name] = str(_digits_or_int(value, name, 0, 10))  # "string, 0-10" in the docs
        elif name == "eyewear":
            out[name] = require_choice(value, name, EYEWEAR)
        elif name == "lighting":
            out[name] = require_choice(value, name, LIGHTING)
        elif name == "zoom_level":
            out[name] = require_choice(value, name, ZOOM)
        elif name == "stampless":
            if isinstance(value, bool):
                value = "yes" if value else "no"
            out[name] = require_choice(value, name, YESNO)
        elif name == "mood":
            out[name] = require_choice(value, name, MOODS)
        elif name == "view_profile":
            out[name] = str(require_int(value, name, -60, 60))
        else:
            raise InvalidRequestError(f"unknown Face Studio parameter {name!r}", param=name)
    return out


def _digits_or_int(value: object, name: str, lo: int, hi: int) -> int:
    """An int, or a string of decimal digits, from ``lo`` to ``hi``; else an InvalidRequestError."""
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit():
            raise InvalidRequestError(
                f"{name} must be from {lo} to {hi} (a string or an integer), got {value!r}", param=name
            )
        value = int(value)
    return require_int(value, name, lo, hi)


def parse_throttle_detail(text: str) -> float | None:
    """Seconds from DRF's "Expected available in N seconds." text, if present."""
    m = _THROTTLE_RE.search(text)
    return float(m.group(1)) if m else None


def advanced_used(params: Mapping[str, str]) -> list[str]:
    """The advanced (Professional and above) parameters in ``params``."""
    return [p for p in ADVANCED_PARAMS if p in params]


def build_request(base_url: str, key: str | None, params: Mapping[str, str], timeout: float | None) -> RequestSpec:
    """GET /v1/generate with ``Authorization: Token KEY``, or anonymous when key is empty.

    The image is asked for without content coding: JPEG and WebP gain nothing from gzip, and a
    compressed answer could not be size-checked against its ``Content-Length`` as it is decoded.
    """
    headers = {"Accept": "image/jpeg, image/webp, application/json", "Accept-Encoding": "identity"}
    if key:
        headers["Authorization"] = f"Token {key}"
    return RequestSpec("GET", base_url.rstrip("/") + PATH, headers, params=dict(params), timeout=timeout)


def user_class(headers: Mapping[str, str]) -> str | None:
    """The tier from ``X-User-Class``, lower-cased (anon, basic, professional, enterprise)."""
    v = header(headers, "X-User-Class")
    return v.strip().lower() if v else None


def parse_error(status: int, headers: Mapping[str, str], body: bytes) -> APIError:
    """Turn a DRF-style error (``{"detail": ...}`` or ``{"field": [...]}``) into a typed error."""
    try:
        data = decode_json(PROVIDER, status, body)
    except Exception:
        data = {"detail": body[:200].decode("utf-8", "replace") or f"HTTP {status}"}
    message: str
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        message = data["detail"]
    elif isinstance(data, dict):
        parts = []
        for k, v in data.items():
            text = "; ".join(map(str, v)) if isinstance(v, list) else str(v)
            parts.append(f"{k}: {text}")
        message = ", ".join(parts) or f"HTTP {status}"
    else:
        message = str(data)
    retry_after = None
    if status == 429:
        retry_after = parse_throttle_detail(message)
        if retry_after is None:
            retry_after = parse_retry_after(headers, time.time())
    cls = api_error_for_status(status)
    code = _DRF_CODES.get(status, "server_error" if status >= 500 else f"http_{status}")
    return cls(
        message,
        provider=PROVIDER,
        status=status,
        code=code,
        request_id=header(headers, "X-Request-ID"),
        retry_after=retry_after,
    )
