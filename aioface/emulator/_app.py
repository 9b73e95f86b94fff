"""The emulator's aiohttp.web application: Face Studio, Ace Data Cloud and AILabAPI on one port."""

from __future__ import annotations

import asyncio
import io
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from .. import _json
from ._images import dimensions, render
from ._state import ROUTE_PREFIXES, EmulatorConfig, State, Task

STATE: web.AppKey[State] = web.AppKey("aioface_emulator_state", State)
#: The fault picked for a request, for handlers that stream their own bodies.
FAULT: Any = web.RequestKey("aioface_fault", str) if hasattr(web, "RequestKey") else "aioface_fault"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

FS_CHOICES = {
    "gender": ("male", "female"),
    "ethnicity": (
        "european",
        "african",
        "west_asian",
        "south_asian",
        "east_asian",
        "southeast_asian",
        "latin_american",
    ),
    "image_format": ("jpeg", "webp"),
    "eyewear": ("auto", "none", "eyeglasses", "sunglasses"),
    "lighting": ("auto", "studio", "natural", "artistic"),
    "zoom_level": ("standard", "closeup"),
    "stampless": ("yes", "no"),
    "mood": ("auto", "joyous", "composed"),
}
FS_INTS = {
    "age": (0, 80),
    "resolution": (128, 1024),
    "seed": (1, 2**32),
    "skintone": (0, 10),
    "hair_length": (0, 10),
    "facial_hair": (0, 10),
    "view_profile": (-60, 60),
}
FS_ADVANCED = {
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
}


def _json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=_json.dumps(data), status=status, content_type="application/json", headers=headers)


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


# ---------------------------------------------------------------------------------- Face Studio
def _fs_detail(detail: str, status: int, headers: dict[str, str] | None = None) -> web.Response:
    return _json_response({"detail": detail}, status, headers)


async def facestudio_generate(request: web.Request) -> web.StreamResponse:
    st = request.app[STATE]
    cfg = st.config
    st.stats["facestudio_requests"] += 1
    auth = request.headers.get("Authorization", "")
    key: str | None = None
    parts = auth.split()
    if parts and parts[0].lower() == "token":  # DRF TokenAuthentication ignores other schemes
        if len(parts) == 1:
            return _fs_detail("Invalid token header. No credentials provided.", 401)
        if len(parts) > 2:
            return _fs_detail("Invalid token header. Token string should not contain spaces.", 401)
        key = parts[1]
        if cfg.strict and key not in cfg.keys:
            return _fs_detail("Invalid token.", 401)
    tier = "anon" if key is None else cfg.keys.get(key, cfg.default_tier)
    ident = key if key is not None else (request.remote or "anon")
    wait = st.throttle("facestudio", ident, _tier_limits(tier))
    if wait is not None:
        secs = math.ceil(wait)
        unit = "second" if secs == 1 else "seconds"
        return _fs_detail(
            f"Request was throttled. Expected available in {secs} {unit}.", 429, {"Retry-After": str(secs)}
        )
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for name, raw in request.query.items():
        if name in FS_CHOICES:
            if raw not in FS_CHOICES[name]:
                errors[name] = [f'"{raw}" is not a valid choice.']
            values[name] = raw
        elif name in FS_INTS:
            lo, hi = FS_INTS[name]
            try:
                v = int(raw)
            except ValueError:
                errors[name] = ["A valid integer is required."]
                continue
            if v < lo:
                errors[name] = [f"Ensure this value is greater than or equal to {lo}."]
            elif v > hi:
                errors[name] = [f"Ensure this value is less than or equal to {hi}."]
            values[name] = v
    if errors:
        return _json_response(errors, 400, {"X-User-Class": st.tier_name(tier)})
    adv = sorted(FS_ADVANCED & set(values))
    if adv and tier not in ("professional", "enterprise"):
        return _fs_detail(f"Parameter '{adv[0]}' requires the Professional plan or higher.", 403)
    await st.latency()
    seed = values.get("seed") or st.rng.randrange(1, 64)
    age = values.get("age", st.rng.randrange(0, 81))
    data = render(int(seed) % 4096, int(age), int(values.get("resolution", 1024)), values.get("image_format", "jpeg"))
    st.stats["facestudio_images"] += 1
    return web.Response(
        body=data,
        content_type=f"image/{values.get('image_format', 'jpeg')}",
        headers={"X-User-Class": st.tier_name(tier)},
    )


def _tier_limits(tier: str) -> tuple[tuple[int, float], ...]:
    from ._state import TIER_LIMITS

    return TIER_LIMITS[tier]


# ---------------------------------------------------------------------------------- Ace Data
def _ace_error(status: int, code: str, message: str) -> web.Response:
    return _json_response(
        {"success": False, "error": {"code": code, "message": message}, "trace_id": str(uuid.uuid4())}, status
    )


def _ace_auth(request: web.Request, st: State) -> web.Response | None:
    auth = request.headers.get("authorization", "")
    parts = auth.split()
    if len(parts) != 2 or parts[0].lower() != "bearer" or not parts[1]:
        return _ace_error(401, "invalid_token", "invalid or missing authorization token")
    if st.config.strict and parts[1] not in st.config.keys:
        return _ace_error(401, "invalid_token", "the token is not valid")
    return None


def _is_url(v: object) -> bool:
    return isinstance(v, str) and v.startswith(("http://", "https://"))


async def acedata_face(request: web.Request) -> web.StreamResponse:
    st = request.app[STATE]
    op = request.match_info["op"]
    st.stats["acedata_requests"] += 1
    denied = _ace_auth(request, st)
    if denied is not None:
        return denied
    if st.config.acedata_limits:
        token = request.headers["authorization"].split()[1]
        if st.throttle("acedata", token, st.config.acedata_limits) is not None:
            return _ace_error(429, "too_many_requests", "too many requests, please slow down")
    if op not in ("change-age", "change-gender", "beautify", "cartoon", "swap", "analyze", "detect-live"):
        return _ace_error(400, "api_not_implemented", f"api /face/{op} is not implemented")
    try:
        body = _json.loads(await request.read())
    except ValueError:
        return _ace_error(400, "token_mismatched", "request body is not valid JSON")
    if not isinstance(body, dict):
        return _ace_error(400, "token_mismatched", "request body must be an object")
    url_fields = ("source_image_url", "target_image_url") if op == "swap" else ("image_url",)
    for f in url_fields:
        if not _is_url(body.get(f)):
            return _ace_error(400, "token_mismatched", f"{f} is required and must be an http(s) URL")
    if any("fetch-fail" in str(body.get(f)) for f in url_fields):
        return _ace_error(500, "api_error", "fetch failed")
    if op == "change-age":
        infos = body.get("age_infos")
        if (
            not isinstance(infos, list)
            or not infos
            or not all(isinstance(i, dict) and isinstance(i.get("age"), int) and 10 <= i["age"] <= 80 for i in infos)
        ):
            return _ace_error(400, "token_mismatched", "age_infos must be a non-empty list of {age: 10..80}")
    if op == "change-gender":
        infos = body.get("gender_infos")
        if (
            not isinstance(infos, list)
            or not infos
            or not all(isinstance(i, dict) and i.get("gender") in (0, 1) for i in infos)
        ):
            return _ace_error(400, "token_mismatched", "gender_infos must be a non-empty list of {gender: 0|1}")
    seed = abs(hash(str(body.get(url_fields[0])))) % 4096
    if op == "analyze":
        await st.latency()
        return _json_response(
            {"face_num": 1, "faces": [{"age": 30 + seed % 40, "gender": seed % 2, "beauty": 70 + seed % 30}]}
        )
    if op == "detect-live":
        await st.latency()
        return _json_response({"score": 90 + seed % 10, "is_live": True})
    if op == "swap":
        timeout = body.get("timeout")
        if timeout is not None and (not isinstance(timeout, int) or timeout <= 0):
            return _ace_error(400, "token_mismatched", "timeout must be a positive integer")
        cb = body.get("callback_url")
        if cb is not None:
            if not _is_url(cb):
                return _ace_error(400, "token_mismatched", "callback_url must be an http(s) URL")
            task_id = str(uuid.uuid4())
            st.spawn(_ace_callback(st, _origin(request), task_id, cb, seed))
            st.stats["acedata_tasks"] += 1
            await st.latency()
            return _json_response({"task_id": task_id})
        if timeout is not None and timeout < st.config.swap_duration:
            await asyncio.sleep(timeout)
            return _ace_error(500, "timeout", "face swap timed out")
        await asyncio.sleep(st.config.swap_duration)
        await st.latency()
        return _json_response(_ace_image(st, _origin(request), seed, str(uuid.uuid4())))
    await st.latency()
    name = st.new_file(seed, 20 + seed % 60, 256, "png")
    return _json_response({"image_url": f"{_origin(request)}/files/{name}"})


def _ace_image(st: State, origin: str, seed: int, task_id: str) -> dict[str, Any]:
    name = st.new_file(seed, 40, 384, "png")
    data = render(seed, 40, 384, "png")
    w, h = dimensions(data)
    return {
        "image_url": f"{origin}/files/{name}",
        "image_width": w,
        "image_height": h,
        "image_size": len(data) + st.config.result_padding,
        "task_id": task_id,
    }


async def _ace_callback(st: State, origin: str, task_id: str, url: str, seed: int) -> None:
    cfg = st.config
    await asyncio.sleep(cfg.task_duration + st.rng.uniform(0, cfg.task_jitter))
    f = cfg.faults
    if st.rng.random() < f.callback_lost:
        st.stats["acedata_callbacks_lost"] += 1
        return
    if st.rng.random() < f.task_fail:
        payload: dict[str, Any] = {
            "success": False,
            "task_id": task_id,
            "error": {"code": "api_error", "message": "face swap failed"},
            "trace_id": str(uuid.uuid4()),
        }
    else:
        payload = {"success": True, **_ace_image(st, origin, seed, task_id)}
    times = 2 if st.rng.random() < f.callback_twice else 1
    async with aiohttp.ClientSession() as session:
        for _ in range(times):
            try:
                async with session.post(
                    url, data=_json.dumps(payload), headers={"content-type": "application/json"}
                ) as r:
                    st.stats[f"acedata_callback_{r.status}"] += 1
            except aiohttp.ClientError:
                st.stats["acedata_callback_error"] += 1


# ---------------------------------------------------------------------------------- AILab
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
    return _json_response(_ailab_envelope(status, code, message), status)


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
        duration=cfg.task_duration + st.rng.uniform(0, cfg.task_jitter),
        fail=st.rng.random() < cfg.faults.task_fail,
        stuck=st.rng.random() < cfg.faults.task_stuck,
    )
    st.stats["ailab_tasks"] += 1
    await st.latency()
    return _json_response(_ailab_envelope(task_type="async", task_id=task_id))


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
        return _json_response(_ailab_envelope(task_status=status))
    if task.fail:
        return _json_response(_ailab_envelope(task_status=3, data={}))
    if task.result is None:
        task.result = st.new_file(hash(task_id) % 4096, 35, 320, "jpeg")
    return _json_response(_ailab_envelope(task_status=2, data={"image": f"{_origin(request)}/files/{task.result}"}))


# ---------------------------------------------------------------------------------- files
async def serve_file(request: web.Request) -> web.StreamResponse:
    st = request.app[STATE]
    st.stats["file_requests"] += 1
    entry = st.files.get(request.match_info["name"])
    if entry is None or entry.missing or entry.expires <= st.now():
        return web.Response(status=404, text="Not Found")
    data = render(entry.seed, entry.age, entry.size, entry.fmt)
    pad = st.config.result_padding
    resp = web.StreamResponse(headers={"Content-Type": f"image/{entry.fmt}"})
    resp.content_length = len(data) + pad
    await resp.prepare(request)
    fault = request.get(FAULT)
    if fault in ("truncate", "bad_json", "stall_body"):
        await _faulty_body(request, resp, data, fault)
        return resp
    await resp.write(data)
    zeros = bytes(1 << 16)
    left = pad
    while left > 0:
        n = min(left, len(zeros))
        await resp.write(zeros[:n])
        left -= n
    await resp.write_eof()
    return resp


async def emulator_stats(request: web.Request) -> web.StreamResponse:
    """The emulator's own counters (not part of any provider): requests, 429s sent, faults."""
    return _json_response(dict(request.app[STATE].stats))


async def emulator_task(request: web.Request) -> web.StreamResponse:
    """When an AILab task is (or was) done, on this machine's monotonic clock (for benchmarks)."""
    task = request.app[STATE].tasks.get(request.match_info["task_id"])
    if task is None:
        return _json_response({"error": "no such task"}, 404)
    return _json_response({"created": task.created, "done_at": task.created + task.duration})


# ---------------------------------------------------------------------------------- faults
def _provider_of(path: str) -> str | None:
    for prefix, name in ROUTE_PREFIXES:
        if path.startswith(prefix):
            return name
    return None


def _fault_response(provider: str, status: int) -> web.Response:
    if provider == "facestudio":
        if status == 429:
            return _fs_detail("Request was throttled. Expected available in 1 second.", 429, {"Retry-After": "1"})
        return _fs_detail("A server error occurred.", status)
    if provider == "acedata":
        code = "too_many_requests" if status == 429 else "api_error"
        return _ace_error(status, code, "injected fault")
    if provider == "ailab":
        code = "EXCEEDING_LIMITS" if status == 429 else "ERROR_INTERNAL"
        return _ailab_error(status, code, "injected fault")
    return web.Response(status=status, text="injected fault")


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    st = request.app[STATE]
    provider = _provider_of(request.path)
    if provider is None:
        return await handler(request)
    kind = st.pick_fault(provider)
    if kind is None:
        return await handler(request)
    st.stats[f"fault_{kind}"] += 1
    st.stats["faults"] += 1
    if kind.isdigit():
        return _fault_response(provider, int(kind))
    if kind == "reset":
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError()
    if kind == "stall":
        await asyncio.sleep(st.config.faults.stall_seconds)
        return await handler(request)
    request[FAULT] = kind  # streaming handlers apply body faults themselves
    resp = await handler(request)
    if not isinstance(resp, web.Response) or resp.body is None:
        return resp
    body = bytes(resp.body) if isinstance(resp.body, (bytes, bytearray)) else b""
    if kind == "bad_json" and resp.content_type == "application/json":
        return web.Response(body=b'{"broken": ', status=200, content_type="application/json")
    if kind in ("truncate", "bad_json", "stall_body") and body:
        out = web.StreamResponse(status=resp.status, headers={"Content-Type": resp.content_type})
        out.content_length = len(body)
        await out.prepare(request)
        await _faulty_body(request, out, body, kind)
        return out
    return resp


async def _faulty_body(request: web.Request, resp: web.StreamResponse, data: bytes, kind: str) -> None:
    """Send half of ``data``, then cut the connection (truncate) or stall before the rest."""
    await resp.write(data[: len(data) // 2])
    if kind == "stall_body":
        await asyncio.sleep(request.app[STATE].config.faults.stall_seconds)
        await resp.write(data[len(data) // 2 :])
        await resp.write_eof()
        return
    if request.transport is not None:
        request.transport.abort()


def create_app(config: EmulatorConfig | None = None) -> web.Application:
    """The emulator as an ``aiohttp.web.Application`` (serve it yourself or use :class:`Emulator`)."""
    app = web.Application(middlewares=[fault_middleware], client_max_size=32 * 1024 * 1024)
    app[STATE] = State(config or EmulatorConfig())
    app.router.add_get("/v1/generate", facestudio_generate)
    app.router.add_post("/face/{op}", acedata_face)
    app.router.add_post("/api/portrait/editing/ai-face-swap", ailab_swap)
    app.router.add_get("/api/common/query-async-task-result", ailab_result)
    app.router.add_get("/files/{name}", serve_file)
    app.router.add_get("/_emulator/stats", emulator_stats)
    app.router.add_get("/_emulator/tasks/{task_id}", emulator_task)

    async def _cleanup(app: web.Application) -> None:
        for t in list(app[STATE].background):
            t.cancel()

    app.on_cleanup.append(_cleanup)
    return app


__all__ = ["STATE", "create_app"]
