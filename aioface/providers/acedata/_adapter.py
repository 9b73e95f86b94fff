"""Ace Data Cloud face API: POST JSON, Bearer token, ``{success, error:{code,message}, trace_id}``."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
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
from ..._types import FaceAnalysis, FaceInfo, Liveness
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
    "timeout": ServerError,
}


def _face_rect(rect: object, i: int) -> dict[str, int]:
    if not isinstance(rect, Mapping) or set(rect) != {"x", "y", "width", "height"}:
        raise InvalidRequestError(f"face_rects[{i}] must have exactly x, y, width, height", param="face_rects")
    return {k: require_int(rect[k], f"face_rects[{i}].{k}", 0, 100_000) for k in ("x", "y", "width", "height")}


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
    faces and which ages the model takes is the provider's to answer.
    """
    check_http_url(image_url, param="image_url")
    infos: list[dict[str, Any]] = [{"age": _int(a, "ages")} for a in _entries(ages, "ages")]
    if face_rects is not None:
        if len(face_rects) != len(infos):
            raise InvalidRequestError("face_rects must have one entry per age", param="face_rects")
        for i, rect in enumerate(face_rects):
            infos[i]["face_rect"] = _face_rect(rect, i)
    return {"image_url": image_url, "age_infos": infos}


def change_gender_body(image_url: str, genders: Sequence[int]) -> dict[str, Any]:
    """``{"image_url", "gender_infos": [{"gender": 0|1}]}`` (0 male to female, 1 female to male)."""
    check_http_url(image_url, param="image_url")
    infos = [{"gender": require_int(g, "genders", 0, 1)} for g in _entries(genders, "genders")]
    return {"image_url": image_url, "gender_infos": infos}


def image_body(image_url: str) -> dict[str, Any]:
    """``{"image_url"}`` for analyze, beautify, cartoon and detect-live."""
    return {"image_url": check_http_url(image_url, param="image_url")}


def swap_body(
    source_url: str, target_url: str, timeout: int | None = None, callback_url: str | None = None
) -> dict[str, Any]:
    """``{"source_image_url", "target_image_url", "timeout"?, "callback_url"?}``.

    ``timeout`` is seconds ("the processing timeout"); the docs bound it nowhere, so neither do we.
    """
    body: dict[str, Any] = {
        "source_image_url": check_http_url(source_url, param="source_url"),
        "target_image_url": check_http_url(target_url, param="target_url"),
    }
    if timeout is not None:
        body["timeout"] = _int(timeout, "timeout")
    if callback_url is not None:
        body["callback_url"] = check_http_url(callback_url, param="callback_url")
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


def _error_from(status: int, headers: Mapping[str, str], data: Any) -> APIError:
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        code = str(err.get("code") or f"http_{status}")
        message = str(err.get("message") or code)
    elif isinstance(err, str):
        code, message = (f"http_{status}" if status >= 400 else "error"), err
    else:
        code, message = f"http_{status}", f"HTTP {status}"
    cls = _CODE_CLASSES.get(code) or api_error_for_status(status)
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
    return _error_from(status, headers, data)


def parse_result(status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """A 2xx answer: the result dict, or a typed error when it says ``success: false``."""
    data = decode_json_object(PROVIDER, status, body)
    if data.get("success") is False or "error" in data:
        raise _error_from(status if status >= 400 else 500, headers, data)
    return data


def _number(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _integer(v: object) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def analysis(data: Mapping[str, Any]) -> FaceAnalysis:
    """``/face/analyze``'s answer, typed where it has the usual fields (``faces: [{age, gender,
    beauty, ...}]``); anything else stays in ``raw`` and each face's ``extra``."""
    faces_raw = data.get("faces")
    if faces_raw is None:
        faces_raw = data.get("face_infos", [])
    if not isinstance(faces_raw, list):
        raise ProtocolError(f"{PROVIDER} analyze answer: faces is not a list")
    faces = []
    for f in faces_raw:
        if not isinstance(f, Mapping):
            raise ProtocolError(f"{PROVIDER} analyze answer: a face is not an object")
        extra = {k: v for k, v in f.items() if k not in ("age", "gender", "beauty")}
        faces.append(FaceInfo(_integer(f.get("age")), _integer(f.get("gender")), _number(f.get("beauty")), extra))
    trace = data.get("trace_id")
    return FaceAnalysis(PROVIDER, tuple(faces), dict(data), str(trace) if trace else None)


def liveness(data: Mapping[str, Any]) -> Liveness:
    """``/face/detect-live``'s answer: ``is_live`` and ``score`` typed, the rest in ``raw``."""
    live = data.get("is_live")
    trace = data.get("trace_id")
    return Liveness(
        PROVIDER,
        live if isinstance(live, bool) else None,
        _number(data.get("score")),
        dict(data),
        str(trace) if trace else None,
    )


def image_result_fields(data: Mapping[str, Any]) -> tuple[str, int | None]:
    """(image_url, declared image_size) from an answer or a callback."""
    url = data.get("image_url")
    if not isinstance(url, str):
        raise ProtocolError(f"{PROVIDER} answer has no image_url")
    size = data.get("image_size")
    return url, size if isinstance(size, int) and not isinstance(size, bool) else None


def result_extra(data: Mapping[str, Any]) -> dict[str, int]:
    """The provider's own ``image_width``/``image_height``/``image_size`` (integers only), for the result."""
    return {k: v for k in RESULT_FIELDS if isinstance(v := data.get(k), int) and not isinstance(v, bool)}


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


# GUESS, not in the face docs: Ace Data Cloud's other services answer ``POST /<service>/tasks``
# with ``{"id": ..., "action": "retrieve"}`` as ``{"id", "response": <the answer>}`` once done
# (no ``response`` before); the face family is assumed to do the same.
TASKS_PATH = "/face/tasks"


def task_request(base_url: str, token: str, task_id: str) -> RequestSpec:
    """Ask for a task's state; safe to repeat (it starts nothing)."""
    headers = {"accept": "application/json", "authorization": f"Bearer {token}", "content-type": "application/json"}
    body = {"id": task_id, "action": "retrieve"}
    return RequestSpec("POST", base_url.rstrip("/") + TASKS_PATH, headers, json=body, idempotent=True)


def parse_task(status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any] | None:
    """The task's final answer, or None while it runs."""
    data = decode_json_object(PROVIDER, status, body, "a task")
    response = data.get("response")
    if response is None:
        return None
    if not isinstance(response, dict):
        raise ProtocolError(f"{PROVIDER} task response is not an object")
    return response
