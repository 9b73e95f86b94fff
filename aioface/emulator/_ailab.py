"""The emulator's AILabAPI: multipart submit, task polling, credits, its error envelope.

Its rules are written out again here on purpose, not imported from the client: the emulator is an
independent check. Error codes other than those the docs name are its own approximations.
"""

from __future__ import annotations

import io
import uuid
from typing import Any

from aiohttp import web

from ._common import STATE, json_response, mount, origin
from ._state import State, Task


def _ailab_envelope(status: int = 200, code: str = "", message: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "request_id": str(uuid.uuid4()),
        "log_id": uuid.uuid4().hex[:16],
        "error_code": 0 if status == 200 else status,
        "error_code_str": code,
        "error_msg": message,
        "error_detail": {"status_code": status, "code": code, "code_message": message, "message": message},
        **extra,
    }


def _ailab_error(status: int, code: str, message: str) -> web.Response:
    return json_response(_ailab_envelope(status, code, message), status)


def _ailab_auth(request: web.Request, st: State) -> web.Response | None:
    key = request.headers.get("ailabapi-api-key", "")
    if not key:
        return _ailab_error(401, "ERROR_API_KEY_MISSING", "ailabapi-api-key header is required")
    if st.config.strict and key not in st.config.keys:
        return _ailab_error(401, "ERROR_API_KEY_INVALID", "invalid API key")
    if st.config.ailab_limits and st.throttle("ailab", key, st.config.ailab_limits) is not None:
        return _ailab_error(429, "EXCEEDING_LIMITS", "request rate exceeds the limit")
    return None


def _check_upload(field: str, data: bytes) -> web.Response | None:
    from PIL import Image, UnidentifiedImageError

    if len(data) > 5 * 1024 * 1024:
        return _ailab_error(400, "ERROR_IMAGE_SIZE", f"{field}: image size exceeds 5 MB")
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt, (w, h) = im.format, im.size
    except (UnidentifiedImageError, OSError):
        return _ailab_error(400, "ERROR_IMAGE_FORMAT", f"{field}: unsupported image format")
    if fmt not in ("JPEG", "PNG"):
        return _ailab_error(400, "ERROR_IMAGE_FORMAT", f"{field}: unsupported image format {fmt}")
    if w >= 4096 or h >= 4096:
        return _ailab_error(400, "ERROR_IMAGE_RESOLUTION", f"{field}: resolution must be less than 4096x4096")
    return None


async def ailab_swap(request: web.Request) -> web.StreamResponse:
    st = request.app[STATE]
    st.stats["ailab_requests"] += 1
    denied = _ailab_auth(request, st)
    if denied is not None:
        return denied
    if not request.content_type.startswith("multipart/"):
        return _ailab_error(400, "ERROR_INVALID_PARAMETER", "the body must be multipart/form-data")
    form = await request.post()
    files: dict[str, bytes] = {}
    for field in ("image_target", "image_template"):
        part = form.get(field)
        if not isinstance(part, web.FileField):
            return _ailab_error(400, "ERROR_INVALID_PARAMETER", f"{field} is required")
        files[field] = part.file.read()
        bad = _check_upload(field, files[field])
        if bad is not None:
            return bad
    if st.ailab_credits is not None:
        if st.ailab_credits <= 0:
            return _ailab_error(429, "ERROR_NOT_ENOUGH_CREDITS", "not enough credits")
        st.ailab_credits -= 1
    cfg = st.config
    task_id = uuid.uuid4().hex
    st.tasks[task_id] = Task(
        created=st.now(),
        duration=st.task_duration(),
        fail=st.rng.random() < cfg.faults.task_fail,
        stuck=st.rng.random() < cfg.faults.task_stuck,
    )
    st.stats["ailab_tasks"] += 1
    await st.latency()
    return json_response(_ailab_envelope(task_type="async", task_id=task_id))


async def ailab_result(request: web.Request) -> web.StreamResponse:
    st = request.app[STATE]
    st.stats["ailab_polls"] += 1
    denied = _ailab_auth(request, st)
    if denied is not None:
        return denied
    task_id = request.query.get("task_id", "")
    if not task_id:
        return _ailab_error(400, "ERROR_INVALID_PARAMETER", "task_id is required")
    task = st.tasks.get(task_id)
    if task is None:
        return _ailab_error(404, "ERROR_TASK_NOT_FOUND", "task not found or expired")
    elapsed = st.now() - task.created
    await st.latency()
    if task.stuck or elapsed < task.duration:
        status = 0 if elapsed < task.duration * 0.3 else 1
        return json_response(_ailab_envelope(task_status=status))
    if task.fail:  # 3: failed, as the official SDK reads it (the docs list 0, 1 and 2 only)
        return json_response(_ailab_envelope(task_status=3, data={}))
    if task.result is None:
        task.result = st.new_file(hash(task_id) % 4096, 35, 320, "jpeg")
    return json_response(_ailab_envelope(task_status=2, data={"image": f"{origin(request)}/files/{task.result}"}))


async def ailab_credits(request: web.Request) -> web.StreamResponse:
    """``GET /api/common/query-credits`` (the SDK's ``commonQueryCredits``): the account's balance,
    ``ailab_credits`` when it is set (else a large made-up one), in the SDK's ``data`` list."""
    st = request.app[STATE]
    denied = _ailab_auth(request, st)
    if denied is not None:
        return denied
    balance = float(st.ailab_credits) if st.ailab_credits is not None else 1_000_000.0
    total = float(st.config.ailab_credits) if st.config.ailab_credits is not None else balance
    entry = {"unique_sign": "emulator", "name": "AI Face Swap", "balance": balance, "total": total}
    await st.latency()
    return json_response(_ailab_envelope(data=[entry]))


def fault(status: int) -> web.Response:
    return _ailab_error(status, "EXCEEDING_LIMITS" if status == 429 else "ERROR_INTERNAL", "injected fault")


def setup(app: web.Application) -> None:
    """Mount AILab's routes."""
    mount(app, "ailab", "/api/", fault)
    app.router.add_post("/api/portrait/editing/ai-face-swap", ailab_swap)
    app.router.add_get("/api/common/query-async-task-result", ailab_result)
    app.router.add_get("/api/common/query-credits", ailab_credits)
