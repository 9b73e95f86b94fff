"""Ace Data's platform file upload: local images checked, then sent to ``POST /api/v1/files/`` for a URL."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..._errors import ImageRejectedError, ProtocolError
from ...transports._base import FormFile, RequestSpec
from .._base import decode_json_object
from ._adapter import PROVIDER, error_from

#: Ace Data Cloud's platform (file uploads), where the API's base URL is the default one.
DEFAULT_PLATFORM_URL = "https://platform.acedata.cloud"
#: The SDK's ``files.upload``: multipart field ``file``, the same bearer token.
UPLOAD_PATH = "/api/v1/files/"
#: aioface's own cap on a local image sent for upload (the platform documents none).
MAX_UPLOAD_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class LocalImage:
    """A local image that passed the checks, ready to upload."""

    data: bytes
    filename: str
    content_type: str


def check_upload(data: bytes, param: str) -> LocalImage:
    """At most :data:`MAX_UPLOAD_BYTES`, an image Pillow reads, not a decompression bomb; else
    :class:`ImageRejectedError` (the platform names no formats, so any image is sent)."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageRejectedError(
            f"{param} is {len(data)} bytes; aioface uploads at most {MAX_UPLOAD_BYTES} (10 MiB)",
            param=param,
            rule="max_bytes",
        )
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format or ""
            im.size  # noqa: B018 - the header is read
    except Image.DecompressionBombError:
        raise ImageRejectedError(
            f"{param} claims more pixels than Pillow's MAX_IMAGE_PIXELS (a decompression bomb)",
            param=param,
            rule="dimensions",
        ) from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise ImageRejectedError(f"{param} is not a readable image", param=param, rule="format") from None
    mime = Image.MIME.get(fmt, "application/octet-stream")
    ext = {"JPEG": "jpg"}.get(fmt, fmt.lower() or "bin")
    return LocalImage(data, f"{param}.{ext}", mime)


def upload_request(platform_url: str, token: str, data: bytes, filename: str, content_type: str) -> RequestSpec:
    """POST a local image to the platform's file API (safe to repeat: it starts no paid work)."""
    headers = {"accept": "application/json", "authorization": f"Bearer {token}"}
    files = (FormFile("file", data, filename, content_type),)
    return RequestSpec("POST", platform_url.rstrip("/") + UPLOAD_PATH, headers, files=files, idempotent=True)


def parse_upload(status: int, headers: Mapping[str, str], body: bytes) -> str:
    """The uploaded file's URL. GUESS: the answer's shape is not in the spec; the first http(s)
    string under ``url``, ``file_url``, ``download_url`` (or those inside ``data``) is taken."""
    data = decode_json_object(PROVIDER, status, body, "an upload answer")
    if data.get("success") is False or "error" in data:
        raise error_from(status if status >= 400 else 500, headers, data)
    nodes: list[Any] = [data, data.get("data")]
    if isinstance(data.get("data"), list) and data["data"]:
        nodes.append(data["data"][0])
    for node in nodes:
        if isinstance(node, Mapping):
            for k in ("url", "file_url", "download_url"):
                v = node.get(k)
                if isinstance(v, str) and v.startswith(("http://", "https://")):
                    return v
    raise ProtocolError(f"{PROVIDER} upload answer holds no file URL")
