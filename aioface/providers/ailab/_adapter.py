"""AILabAPI AI Face Swap: multipart upload, async task id, poll until ``task_status`` 2."""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..._errors import (
    APIError,
    ImageRejectedError,
    ProtocolError,
    QuotaExceededError,
    api_error_for_status,
)
from ..._retry import parse_retry_after
from ...transports._base import FormFile, RequestSpec
from .._base import decode_json, decode_json_object
from .._helpers import number_in

PROVIDER = "ailab"
DEFAULT_BASE_URL = "https://www.ailabapi.com"
SUBMIT_PATH = "/api/portrait/editing/ai-face-swap"
# GUESS: the swap docs send you to "Querying Async Task Results" without its path or method; this
# GET with ``?task_id=`` is what that page is believed to say, not something provider-docs shows.
RESULT_PATH = "/api/common/query-async-task-result"
MAX_BYTES = 5 * 1024 * 1024
MAX_SIDE = 4096  # exclusive: "less than 4096x4096px"
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png"}

# The docs list task_status 0 (queued), 1 (processing) and 2 (done); the official SDK (ailabtools-sdk
# ``wait_for_task``) treats 3 as failed and keeps polling on any other value: so does aioface.
QUEUED, PROCESSING, DONE, FAILED = 0, 1, 2, 3
#: The SDK's ``wait_for_task`` polls every 5 s: aioface polls one task no more often (``PollPolicy.floor``).
POLL_FLOOR = 5.0
CREDITS_PATH = "/api/common/query-credits"

#: 429 codes that mean "out of credit": never retried.
QUOTA_CODES = frozenset({"ERROR_NOT_ENOUGH_CREDITS", "ERROR_INSUFFICIENT_BALANCE"})


@dataclass(frozen=True)
class CheckedImage:
    """An image that passed the local checks, ready to upload."""

    data: bytes
    content_type: str
    width: int
    height: int


def check_image(data: bytes, param: str) -> CheckedImage:
    """JPEG/PNG by content (not name), at most 5 MB, under 4096x4096; else ImageRejectedError."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > MAX_BYTES:
        raise ImageRejectedError(
            f"{param} is {len(data)} bytes; AILab accepts at most {MAX_BYTES} (5 MB)", param=param, rule="max_bytes"
        )
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format or ""
            width, height = im.size
    except Image.DecompressionBombError:
        raise ImageRejectedError(
            f"{param} claims more pixels than any image AILab takes (a decompression bomb)",
            param=param,
            rule="dimensions",
        ) from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise ImageRejectedError(f"{param} is not a readable image", param=param, rule="format") from None
    if fmt not in FORMATS:
        raise ImageRejectedError(
            f"{param} is {fmt or 'unknown'}; AILab accepts JPEG or PNG", param=param, rule="format"
        )
    if width >= MAX_SIDE or height >= MAX_SIDE:
        raise ImageRejectedError(
            f"{param} is {width}x{height}; AILab needs less than {MAX_SIDE}x{MAX_SIDE}", param=param, rule="dimensions"
        )
    return CheckedImage(data, FORMATS[fmt], width, height)


def submit_request(base_url: str, key: str, target: CheckedImage, template: CheckedImage) -> RequestSpec:
    """POST the two images as multipart; not idempotent (a task is created and billed)."""
    ext = {"image/jpeg": "jpg", "image/png": "png"}
    files = (
        FormFile("image_target", target.data, f"target.{ext[target.content_type]}", target.content_type),
        FormFile("image_template", template.data, f"template.{ext[template.content_type]}", template.content_type),
    )
    return RequestSpec(
        "POST", base_url.rstrip("/") + SUBMIT_PATH, {"ailabapi-api-key": key}, files=files, idempotent=False
    )


def poll_request(base_url: str, key: str, task_id: str) -> RequestSpec:
    """GET the task's state; safe to repeat."""
    return RequestSpec(
        "GET", base_url.rstrip("/") + RESULT_PATH, {"ailabapi-api-key": key}, params={"task_id": task_id}
    )


def _error_from(status: int, headers: Mapping[str, str], data: Mapping[str, Any]) -> APIError:
    detail = data.get("error_detail") if isinstance(data.get("error_detail"), dict) else {}
    assert isinstance(detail, dict)
    dstatus = detail.get("status_code")
    if isinstance(dstatus, int) and dstatus >= 400:
        status = dstatus
    elif status < 400:
        status = 400
    code = str(detail.get("code") or data.get("error_code_str") or data.get("error_code") or f"http_{status}")
    message = str(data.get("error_msg") or detail.get("message") or detail.get("code_message") or code)
    cls: type[APIError] = QuotaExceededError if code in QUOTA_CODES else api_error_for_status(status)
    rid = data.get("request_id") or data.get("log_id")
    retry_after = parse_retry_after(headers, time.time()) if status == 429 else None
    return cls(
        message,
        provider=PROVIDER,
        status=status,
        code=code,
        request_id=str(rid) if rid else None,
        retry_after=retry_after,
    )


def parse_error(status: int, headers: Mapping[str, str], body: bytes) -> APIError:
    """A non-2xx answer as a typed error."""
    try:
        data = decode_json(PROVIDER, status, body)
    except ProtocolError:
        data = None
    if not isinstance(data, dict):
        data = {"error_msg": body[:200].decode("utf-8", "replace") or f"HTTP {status}"}
    return _error_from(status, headers, data)


def parse_result(status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """A 2xx answer: the dict, or a typed error when ``error_code`` is not 0."""
    data = decode_json_object(PROVIDER, status, body)
    if data.get("error_code", 0) != 0:
        raise _error_from(status, headers, data)
    return data


def answer_ids(data: Mapping[str, Any]) -> dict[str, Any]:
    """The public ``request_id`` and ``log_id`` of an answer, as result fields (``log_id`` in ``extra``)."""
    rid, lid = data.get("request_id"), data.get("log_id")
    return {
        "request_id": str(rid) if rid else None,
        "extra": {"log_id": str(lid)} if lid else {},
    }


def task_id_of(data: Mapping[str, Any]) -> str:
    """The task id of a submit answer."""
    tid = data.get("task_id")
    if not isinstance(tid, str) or not tid:
        raise ProtocolError(f"{PROVIDER} submit answer has no task_id")
    return tid


def _status(v: object) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    return None


def task_state(data: Mapping[str, Any]) -> tuple[int | None, str | None]:
    """(task_status, result image URL when done). The status is read where the SDK reads it:
    ``data.taskStatus``, then ``data.task_status``, then a top-level ``task_status``; None when none
    of them holds a number (a status unknown to us: the task is polled on)."""
    payload = data.get("data")
    inner: Mapping[str, Any] = payload if isinstance(payload, dict) else {}
    status = None
    for raw in (inner.get("taskStatus"), inner.get("task_status"), data.get("task_status")):
        if raw is not None:
            status = _status(raw)
            break
    url = None
    if status == DONE:
        url = inner.get("image") or data.get("image")
        if not isinstance(url, str) or not url:
            raise ProtocolError(f"{PROVIDER} task is done but data.image is missing")
    return status, url


def credits_request(base_url: str, key: str) -> RequestSpec:
    """GET the account's credits (the SDK's ``commonQueryCredits``); safe to repeat."""
    return RequestSpec("GET", base_url.rstrip("/") + CREDITS_PATH, {"ailabapi-api-key": key})


@dataclass(frozen=True)
class Credits:
    """What ``GET /api/common/query-credits`` says of the account: ``balance`` and ``total`` of its
    first entry (None if absent), every entry as sent in ``raw``."""

    balance: float | None
    total: float | None
    raw: dict[str, Any]
    request_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"provider": PROVIDER, "balance": self.balance, "total": self.total, "data": self.raw.get("data")}

    def table(self) -> tuple[list[str], list[list[object]]]:
        return ["balance", "total"], [[self.balance, self.total]]


def credits(data: Mapping[str, Any]) -> Credits:
    """The credits answer (``data``: a list of ``{balance, total, ...}``, or one such object)."""
    entries = data.get("data")
    first = entries[0] if isinstance(entries, list) and entries else entries
    first = first if isinstance(first, dict) else {}
    rid = data.get("request_id")
    return Credits(
        number_in(first.get("balance")), number_in(first.get("total")), dict(data), str(rid) if rid else None
    )
