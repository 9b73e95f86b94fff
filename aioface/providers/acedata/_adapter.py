"""Ace Data Cloud face API: POST JSON, Bearer token, ``{success, error:{code,message}, trace_id}``."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    GenerationTimeoutError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    TaskFailedError,
    api_error_for_status,
)
from ..._net import check_http_url
from ..._retry import parse_retry_after
from ...transports._base import RequestSpec
from .._base import decode_json, decode_json_object, header, require_int

PROVIDER = "acedata"
DEFAULT_BASE_URL = "https://api.acedata.cloud"
#: Operations of the /face/ family that return an image_url.
IMAGE_OPS = ("change-age", "change-gender", "beautify", "cartoon", "swap")
#: Operations that return JSON only.
JSON_OPS = ("analyze", "detect-live")
#: The provider's swap timeout when none is sent (seconds): a fact from the design notes, not the docs.
DEFAULT_SWAP_TIMEOUT = 120
#: Fields of a swap answer or callback kept on the result (``ImageResult.extra``) under their own names.
RESULT_FIELDS = ("image_width", "image_height", "image_size")

_CODE_CLASSES: dict[str, type[APIError]] = {
    "invalid_token": AuthenticationError,
    "token_mismatched": BadRequestError,
    "api_not_implemented": BadRequestError,
    "forbidden": PermissionDeniedError,
    "too_many_requests": RateLimitError,
    "used_up": QuotaExceededError,
    "not_found": NotFoundError,
    "api_error": ServerError,
    # The spec: a synchronous swap whose ``timeout`` passed answers 504 {"error": {"code": "timeout"}}.
    "timeout": GenerationTimeoutError,
}


def _face_rect(rect: object, name: str) -> dict[str, float]:
    """``{x, y, width, height}``, numbers (the spec gives no range, so none is checked)."""
    if not isinstance(rect, Mapping) or set(rect) != {"x", "y", "width", "height"}:
        raise InvalidRequestError(f"{name} must have exactly x, y, width, height", param="face_rects")
    return {k: number(rect[k], f"{name}.{k}") for k in ("x", "y", "width", "height")}


def number(value: object, name: str) -> float:
    """A number (int or float, not a bool); the spec gives no range, so none is checked."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise InvalidRequestError(f"{name} must be a number, got {value!r}", param=name)
    return value


def _rects(infos: list[dict[str, Any]], face_rects: Sequence[object] | None, what: str) -> None:
    if face_rects is None:
        return
    if isinstance(face_rects, (str, bytes)) or not isinstance(face_rects, Sequence):
        raise InvalidRequestError("face_rects must be a list, one rectangle per face", param="face_rects")
    if len(face_rects) != len(infos):
        raise InvalidRequestError(f"face_rects must have one entry per {what}", param="face_rects")
    for i, rect in enumerate(face_rects):
        infos[i]["face_rect"] = _face_rect(rect, f"face_rects[{i}]")


def _int(value: object, name: str) -> int:
    """An integer (not a bool); its range is the provider's to judge (the docs set none)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"{name} must be integers, got {value!r}", param=name)
    return value


def _entries(values: object, name: str) -> Sequence[object]:
    """A non-empty list (the docs' array: one entry per face, no upper bound given)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise InvalidRequestError(f"{name} must be a non-empty list, one entry per face", param=name)
    return values


def change_age_body(image_url: str, ages: Sequence[int], face_rects: Sequence[object] | None = None) -> dict[str, Any]:
    """``{"image_url", "age_infos": [{"age": A, "face_rect"?}]}``: one entry per face.

    Only what the docs say is checked: an http(s) image URL and an integer age per entry. How many
    faces and which ages the model takes is the provider's to answer. GUIDE ONLY: ``face_rect`` per
    age is what the integration guide calls "the face's age and region"; the spec lists ``age`` only.
    """
    check_http_url(image_url, param="image_url")
    infos: list[dict[str, Any]] = [{"age": _int(a, "ages")} for a in _entries(ages, "ages")]
    _rects(infos, face_rects, "age")
    return {"image_url": image_url, "age_infos": infos}


def change_gender_body(
    image_url: str, genders: Sequence[int], face_rects: Sequence[object] | None = None
) -> dict[str, Any]:
    """``{"image_url", "gender_infos": [{"gender": 0|1, "face_rect"?}]}`` (0 male to female, 1 female
    to male); the spec's ``face_rect`` ``{x, y, width, height}`` per face, when given."""
    check_http_url(image_url, param="image_url")
    infos: list[dict[str, Any]] = [{"gender": require_int(g, "genders", 0, 1)} for g in _entries(genders, "genders")]
    _rects(infos, face_rects, "gender")
    return {"image_url": image_url, "gender_infos": infos}


def image_body(image_url: str) -> dict[str, Any]:
    """``{"image_url"}`` for cartoon (and the others without their options)."""
    return {"image_url": check_http_url(image_url, param="image_url")}


def _options(
    body: dict[str, Any], given: Mapping[str, object], numbers: tuple[str, ...], strings: tuple[str, ...]
) -> dict[str, Any]:
    for k, v in given.items():
        if v is None:
            continue
        if k in numbers:
            body[k] = number(v, k)
        elif k in strings:
            if not isinstance(v, str) or not v:
                raise InvalidRequestError(f"{k} must be a non-empty string, got {v!r}", param=k)
            body[k] = v
        else:  # a programming error: only the spec's parameters reach here
            raise InvalidRequestError(f"unknown parameter {k!r}", param=k)
    return body


#: The spec's optional numbers of ``/face/beautify`` (no range given).
BEAUTIFY_OPTIONS = ("smoothing", "whitening", "face_lifting", "eye_enlarging")


def beautify_body(image_url: str, **options: float | None) -> dict[str, Any]:
    """``{"image_url", "smoothing"?, "whitening"?, "face_lifting"?, "eye_enlarging"?}`` (numbers)."""
    return _options(image_body(image_url), options, BEAUTIFY_OPTIONS, ())


def analyze_body(
    image_url: str,
    mode: float | None = None,
    face_model_version: str | None = None,
    need_rotate_detection: float | None = None,
) -> dict[str, Any]:
    """``{"image_url", "mode"?, "face_model_version"?, "need_rotate_detection"?}`` (the spec's types)."""
    given = {"mode": mode, "face_model_version": face_model_version, "need_rotate_detection": need_rotate_detection}
    return _options(image_body(image_url), given, ("mode", "need_rotate_detection"), ("face_model_version",))


def detect_live_body(image_url: str, face_model_version: str | float | None = None) -> dict[str, Any]:
    """``{"image_url", "face_model_version"?}``: the spec types it a number here (a string in analyze and
    in both answers), so either is sent as given."""
    body = image_body(image_url)
    if face_model_version is not None:
        if isinstance(face_model_version, str):
            return _options(body, {"face_model_version": face_model_version}, (), ("face_model_version",))
        body["face_model_version"] = number(face_model_version, "face_model_version")
    return body


def swap_body(
    source_url: str,
    target_url: str,
    timeout: float | None = None,
    callback_url: str | None = None,
    *,
    asynchronous: bool = False,
) -> dict[str, Any]:
    """``{"source_image_url", "target_image_url", "timeout"?, "callback_url"?, "async"?}``.

    ``timeout`` is seconds, a number (the spec's type): positive and finite, no other bound (the spec gives none).
    ``asynchronous`` sends ``async: true``: the provider answers at once with a task id.
    """
    body: dict[str, Any] = {
        "source_image_url": check_http_url(source_url, param="source_url"),
        "target_image_url": check_http_url(target_url, param="target_url"),
    }
    if timeout is not None:
        body["timeout"] = seconds = number(timeout, "timeout")
        if not 0 < seconds < math.inf:
            raise InvalidRequestError(f"timeout must be a positive number of seconds, got {timeout!r}", param="timeout")
    if callback_url is not None:
        body["callback_url"] = check_http_url(callback_url, param="callback_url")
    if asynchronous:
        body["async"] = True
    return body


def build_request(base_url: str, token: str, op: str, body: Mapping[str, Any], timeout: float | None) -> RequestSpec:
    """POST /face/{op}; not idempotent (each call is billed)."""
    if op not in IMAGE_OPS and op not in JSON_OPS:
        raise InvalidRequestError(f"unknown Ace Data face operation {op!r}", param="op")
    headers = {
        "accept": "application/json",
        "authorization": f"Bearer {token}",
        "content-type": "application/json",
    }
    return RequestSpec(
        "POST", f"{base_url.rstrip('/')}/face/{op}", headers, json=dict(body), idempotent=False, timeout=timeout
    )


def error_from(status: int, headers: Mapping[str, str], data: Any) -> APIError:
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        code = str(err.get("code") or f"http_{status}")
        message = str(err.get("message") or code)
    elif isinstance(err, str):
        code, message = (f"http_{status}" if status >= 400 else "error"), err
    else:
        code, message = f"http_{status}", f"HTTP {status}"
    cls = _CODE_CLASSES.get(code) or api_error_for_status(status)
    if cls is GenerationTimeoutError:
        message = (
            f"{message} (the synchronous swap passed its timeout; it may have been billed, so it is not "
            "retried: swap without sync=True, which sends async: true and polls the task, to avoid this)"
        )
    trace = data.get("trace_id") if isinstance(data, dict) else None
    retry_after = parse_retry_after(headers, time.time()) if status == 429 else None
    return cls(
        message,
        provider=PROVIDER,
        status=status,
        code=code,
        request_id=str(trace) if trace else header(headers, "x-trace-id"),
        retry_after=retry_after,
    )


def parse_error(status: int, headers: Mapping[str, str], body: bytes) -> APIError:
    """The error envelope (``error`` an object or a bare string) as a typed error."""
    try:
        data = decode_json(PROVIDER, status, body)
    except ProtocolError:
        data = {"error": body[:200].decode("utf-8", "replace") or f"HTTP {status}"}
    return error_from(status, headers, data)


def parse_result(status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """A 2xx answer: the result dict, or a typed error when it says ``success: false``."""
    data = decode_json_object(PROVIDER, status, body)
    if data.get("success") is False or "error" in data:
        raise error_from(status if status >= 400 else 500, headers, data)
    return data


def image_result_fields(data: Mapping[str, Any]) -> tuple[str, int | None]:
    """(image_url, declared image_size) from an answer or a callback."""
    url = data.get("image_url")
    if not isinstance(url, str):
        raise ProtocolError(f"{PROVIDER} answer has no image_url")
    size = data.get("image_size")
    return url, size if isinstance(size, int) and not isinstance(size, bool) else None


def _int_field(v: object) -> int | None:
    """An integer, or a string of one (the spec types swap's ``image_width``/``image_height`` as strings)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().isdigit():
        return int(v)
    return None


def result_extra(data: Mapping[str, Any]) -> dict[str, int]:
    """The provider's own ``image_width``/``image_height``/``image_size`` (integers, or strings of
    one), for the result."""
    extra: dict[str, int] = {}
    for k in RESULT_FIELDS:
        v = data.get(k)
        if type(v) is int:  # the common answer: an int as it is (no bool: its type is not int)
            extra[k] = v
        elif v is not None and (n := _int_field(v)) is not None:
            extra[k] = n
    return extra


def task_id_of(data: Mapping[str, Any]) -> str:
    """The task id of an asynchronous swap's first answer."""
    tid = data.get("task_id")
    if not isinstance(tid, str) or not tid:
        raise ProtocolError(f"{PROVIDER} answered an asynchronous swap without task_id")
    return tid


@dataclass(frozen=True)
class SwapCallback:
    """A checked swap callback body: where the image is and what the provider says of it."""

    task_id: str
    image_url: str
    image_width: int | None
    image_height: int | None
    image_size: int | None


def check_callback(payload: Mapping[str, Any], task_id: str | None) -> SwapCallback:
    """A callback (or task) body for ``task_id`` as a :class:`SwapCallback`; typed errors otherwise."""
    tid = payload.get("task_id")
    if not isinstance(tid, str) or not tid:
        raise ProtocolError(f"{PROVIDER} callback has no task_id")
    if task_id is not None and tid != task_id:
        raise ProtocolError(f"{PROVIDER} callback for task {tid} arrived for task {task_id}")
    if payload.get("success") is False or "error" in payload:
        err = payload.get("error")
        msg = err.get("message") if isinstance(err, dict) else err
        raise TaskFailedError(f"{PROVIDER} swap task {tid} failed: {msg}", provider=PROVIDER, task_id=tid)
    url, size = image_result_fields(payload)
    w, h = payload.get("image_width"), payload.get("image_height")
    return SwapCallback(
        tid,
        url,
        w if isinstance(w, int) and not isinstance(w, bool) else None,
        h if isinstance(h, int) and not isinstance(h, bool) else None,
        size,
    )


def unwrap_callback(body: bytes | str | Mapping[str, Any], task_id: str | None = None) -> SwapCallback:
    """Parse (bytes or text) and check a swap callback body."""
    data: Any = body
    if isinstance(body, str):
        try:
            body = body.encode()
        except UnicodeEncodeError:  # a lone surrogate: the caller's str is not text
            raise InvalidRequestError("callback body is not valid text (a lone surrogate)", param="body") from None
    if isinstance(body, bytes):
        data = decode_json(PROVIDER, 200, body)
    if not isinstance(data, Mapping):
        raise ProtocolError(f"{PROVIDER} callback body must be a JSON object")
    return check_callback(data, task_id)


# GUESS, not in the face docs: Ace Data Cloud's other services (and its SDK's fallback for any
# service) answer ``POST /<service>/tasks`` with ``{"id": ..., "action": "retrieve"}`` as a task record
# holding the job's answer under ``response`` once done; the face family is assumed to do the same.
TASKS_PATH = "/face/tasks"
#: Status words of a task record (the SDK's ``task_status`` reads the same ones).
DONE_WORDS = frozenset({"succeed", "succeeded", "success", "completed", "complete", "finished"})
FAILED_WORDS = frozenset({"failed", "failure", "error", "cancelled", "canceled", "rejected"})
#: The SDK polls a task every 3 s: aioface polls one task no more often (``PollPolicy.floor``).
POLL_FLOOR = 3.0


def task_request(base_url: str, token: str, task_id: str) -> RequestSpec:
    """Ask for a task's state; safe to repeat (it starts nothing)."""
    headers = {"accept": "application/json", "authorization": f"Bearer {token}", "content-type": "application/json"}
    body = {"id": task_id, "action": "retrieve"}
    return RequestSpec("POST", base_url.rstrip("/") + TASKS_PATH, headers, json=body, idempotent=True)


def _words(node: Mapping[str, Any]) -> set[str]:
    return {v.lower() for k in ("status", "state") if isinstance(v := node.get(k), str)}


def parse_task(status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """A task record (a JSON object)."""
    return decode_json_object(PROVIDER, status, body, "a task")


def _instant(value: object) -> float | None:
    """Seconds since the epoch from a record's time: a number (seconds, or milliseconds when it is
    that large) or an ISO 8601 string (``Z`` or an offset; naive is read as UTC); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        v = float(value)
        return v / 1000 if v > 1e11 else v
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            return float(text) if text.replace(".", "", 1).isdigit() else _iso(text)
        except ValueError:
            return None
    return None


def _iso(text: str) -> float:
    when = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" else text)
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def task_duration(record: Mapping[str, Any]) -> float | None:
    """How long a finished task took by its record (``finished_at - created_at``, on the record or
    under ``response``), for the poll schedule's learner; None when either is missing or unreadable
    or the difference is not a plausible duration (negative, not finite, over a day)."""
    response = record.get("response")
    nodes = (record, response) if isinstance(response, Mapping) else (record,)
    start = end = None
    for node in nodes:
        start = start if start is not None else _instant(node.get("created_at"))
        end = end if end is not None else _instant(node.get("finished_at"))
    if start is None or end is None:
        return None
    took = end - start
    return took if 0 <= took <= 86_400 and math.isfinite(took) else None


def task_outcome(record: Mapping[str, Any], task_id: str) -> dict[str, Any] | None:
    """The swap's answer once the task is done, None while it runs; :class:`TaskFailedError` when it
    failed (an error, ``success: false`` or a failure status word), :class:`ProtocolError` when it
    says it is done but holds no image.

    Done: the record carries the answer (``response`` with an ``image_url``), or a success status word
    (or ``success: true`` with ``finished_at``). Anything else (no record of an end, an unknown
    status word) is a task still running: it is polled until the deadline.
    """
    response = record.get("response")
    node: Mapping[str, Any] = response if isinstance(response, Mapping) else record
    words = _words(record) | _words(node)
    err = node.get("error") or record.get("error")
    if words & FAILED_WORDS or err or node.get("success") is False or record.get("success") is False:
        msg = err.get("message") if isinstance(err, Mapping) else err
        raise TaskFailedError(
            f"{PROVIDER} swap task {task_id} failed: {msg or ', '.join(sorted(words)) or 'success: false'}",
            provider=PROVIDER,
            task_id=task_id,
        )
    finished = node.get("finished_at") is not None or record.get("finished_at") is not None
    says_done = bool(words & DONE_WORDS) or (
        finished and (node.get("success") is True or record.get("success") is True)
    )
    if isinstance(response, Mapping) and isinstance(response.get("image_url"), str):
        return dict(response)
    if says_done:
        raise ProtocolError(f"{PROVIDER} task {task_id} says it finished but holds no image_url")
    return None
