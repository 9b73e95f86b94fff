"""The emulator's Ace Data Cloud: ``POST /face/{op}``, Bearer auth, sync, async and callback swaps,
``POST /face/tasks``, and the platform's file upload (``POST /api/v1/files/``).

Its rules are written out again here on purpose, not imported from the client: the emulator is an
independent check of the client's reading of the docs. Where the integration guides and the
provider's OpenAPI spec / official SDK disagree, the spec wins (``official-sdk-facts.md``): analyze
answers key points, detect-live a score only, a sync swap past its ``timeout`` a 504, ``timeout`` is
any number, ``async: true`` answers a task id at once.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
from aiohttp import web

from .. import _json
from ._common import STATE, json_response, mount, origin
from ._images import dimensions, render
from ._state import State, Task


def _ace_error(status: int, code: str, message: str) -> web.Response:
    return json_response(
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


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _bad_options(body: dict[str, Any], numbers: tuple[str, ...], strings: tuple[str, ...]) -> str | None:
    """The first optional parameter of the wrong type (the spec's types; it gives no ranges)."""
    for k in numbers:
        if k in body and not _is_number(body[k]):
            return f"{k} must be a number"
    for k in strings:
        if k in body and not isinstance(body[k], str):
            return f"{k} must be a string"
    return None


def _bad_rect(rect: object) -> bool:
    return not (
        isinstance(rect, dict)
        and set(rect) == {"x", "y", "width", "height"}
        and all(_is_number(v) for v in rect.values())
    )


# The spec's key points per face: 90 in all.
_PARTS = (
    ("face_profile", 21),
    ("left_eye", 8),
    ("right_eye", 8),
    ("left_eye_brow", 8),
    ("right_eye_brow", 8),
    ("left_pupil", 1),
    ("right_pupil", 1),
    ("nose", 13),
    ("mouth", 22),
)


def _face_shape(seed: int) -> dict[str, list[dict[str, int]]]:
    return {
        part: [{"x": 100 + (seed + 7 * j + 3 * i) % 200, "y": 120 + (seed + 11 * j + 5 * i) % 220} for i in range(n)]
        for j, (part, n) in enumerate(_PARTS)
    }


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
        # GUIDE ONLY: a face_rect per age ("the face's age and region"); the spec lists age only.
        if any("face_rect" in i and _bad_rect(i["face_rect"]) for i in infos):
            return _ace_error(400, "token_mismatched", "face_rect must be {x, y, width, height}, numbers")
    if op == "change-gender":
        infos = body.get("gender_infos")
        if (
            not isinstance(infos, list)
            or not infos
            or not all(isinstance(i, dict) and i.get("gender") in (0, 1) for i in infos)
        ):
            return _ace_error(400, "token_mismatched", "gender_infos must be a non-empty list of {gender: 0|1}")
        if any("face_rect" in i and _bad_rect(i["face_rect"]) for i in infos):  # the spec's face_rect
            return _ace_error(400, "token_mismatched", "face_rect must be {x, y, width, height}, numbers")
    options = {
        "beautify": (("smoothing", "whitening", "face_lifting", "eye_enlarging"), ()),
        "analyze": (("mode", "need_rotate_detection"), ("face_model_version",)),
        "detect-live": ((), ()),  # face_model_version: a number in the spec, a string in its answers
        "swap": (("timeout",), ("callback_url",)),
    }.get(op)
    bad = _bad_options(body, *options) if options is not None else None
    if bad is not None:
        return _ace_error(400, "token_mismatched", bad)
    seed = abs(hash(str(body.get(url_fields[0])))) % 4096
    version = body.get("face_model_version") if isinstance(body.get("face_model_version"), str) else "3.0"
    if op == "analyze":
        # The spec's answer: the picture's size, the model version, 90 key points per face.
        await st.latency()
        shapes = [_face_shape(seed)]
        return json_response(
            {"image_width": 512, "image_height": 512, "face_model_version": version, "face_shape_set": shapes}
        )
    if op == "detect-live":
        # The spec's answer: {score, face_model_version}; no is_live.
        await st.latency()
        return json_response({"score": 60 + seed % 40, "face_model_version": version})
    if op == "swap":
        return await _swap(request, st, body, seed)
    await st.latency()
    name = st.new_file(seed, 20 + seed % 60, 256, "png")
    return json_response({"image_url": f"{origin(request)}/files/{name}"})


async def _swap(request: web.Request, st: State, body: dict[str, Any], seed: int) -> web.Response:
    timeout = body.get("timeout")
    if timeout is not None and timeout <= 0:  # the spec: a number of seconds (any float)
        return _ace_error(400, "token_mismatched", "timeout must be a positive number")
    run_async = body.get("async", False)
    if not isinstance(run_async, bool):
        return _ace_error(400, "token_mismatched", "async must be a boolean")
    cb = body.get("callback_url")
    if cb is not None and not _is_url(cb):
        return _ace_error(400, "token_mismatched", "callback_url must be an http(s) URL")
    task_id = str(uuid.uuid4())
    if cb is not None or run_async:
        # Answered at once with the task id; retrievable by id (POST /face/tasks) as any task.
        fail = st.rng.random() < st.config.faults.task_fail
        stuck = st.rng.random() < st.config.faults.task_stuck
        task = st.tasks[task_id] = Task(st.now(), st.task_duration(), fail=fail, stuck=stuck, seed=seed)
        task.request = body
        if cb is not None:
            st.spawn(_ace_callback(st, origin(request), task, task_id, cb, seed))
        st.stats["acedata_tasks"] += 1
        await st.latency()
        return json_response({"success": True, "task_id": task_id})
    if timeout is not None and timeout < st.config.swap_duration:
        # The spec: a synchronous swap whose timeout passes answers 504 "timeout", with no task id
        # (the guide's "returns directly on timeout" showed none either).
        await asyncio.sleep(timeout)
        return _ace_error(504, "timeout", "Timeout to generate the image.")
    await asyncio.sleep(st.config.swap_duration)
    await st.latency()
    answer = {"success": True, **_ace_image(st, origin(request), seed, task_id)}
    task = st.tasks[task_id] = Task(st.now(), 0.0, fail=False, stuck=False, seed=seed)
    task.request, task.answer = body, answer
    return json_response(answer)


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


async def _ace_callback(st: State, origin: str, task: Task, task_id: str, url: str, seed: int) -> None:
    cfg = st.config
    await asyncio.sleep(task.duration)
    f = cfg.faults
    if st.rng.random() < f.callback_lost:
        st.stats["acedata_callbacks_lost"] += 1
        return
    if task.fail:
        payload: dict[str, Any] = {
            "success": False,
            "task_id": task_id,
            "error": {"code": "api_error", "message": "face swap failed"},
            "trace_id": str(uuid.uuid4()),
        }
    else:
        payload = {"success": True, **_ace_image(st, origin, seed, task_id)}
    if task.answer is None:
        task.answer = payload
    payload = task.answer
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


async def acedata_tasks(request: web.Request) -> web.StreamResponse:
    """``POST /face/tasks {"id", "action": "retrieve"}``: the task record (a guess modelled on Ace Data's
    Tasks API for its other services, which the SDK uses for any service): ``{id, created_at}`` while
    it runs, then ``finished_at`` and the swap's answer under ``response``."""
    st = request.app[STATE]
    st.stats["acedata_polls"] += 1
    denied = _ace_auth(request, st)
    if denied is not None:
        return denied
    try:
        body = _json.loads(await request.read())
    except ValueError:
        return _ace_error(400, "token_mismatched", "request body is not valid JSON")
    task_id = body.get("id") if isinstance(body, dict) else None
    task = st.tasks.get(task_id) if isinstance(task_id, str) else None
    if task is None or body.get("action") != "retrieve":
        return _ace_error(404, "not_found", "task not found")
    await st.latency()
    # No ``request`` in the record: its URLs would read as the result to the SDK's broad task_status.
    record: dict[str, Any] = {"id": task_id, "created_at": task.wall}
    if task.stuck or st.now() - task.created < task.duration:
        return json_response(record)
    if task.answer is None:
        if task.fail:
            task.answer = {
                "success": False,
                "task_id": task_id,
                "error": {"code": "api_error", "message": "face swap failed"},
                "trace_id": str(uuid.uuid4()),
            }
        else:
            task.answer = {"success": True, **_ace_image(st, origin(request), task.seed, str(task_id))}
    return json_response({**record, "finished_at": task.wall + task.duration, "response": task.answer})


async def platform_upload(request: web.Request) -> web.StreamResponse:
    """The platform's file API (the SDK's ``files.upload``): multipart ``file``, the same bearer
    token; answers the file's URL (GUESS: the answer's shape is not in the spec)."""
    st = request.app[STATE]
    st.stats["acedata_uploads"] += 1
    denied = _ace_auth(request, st)
    if denied is not None:
        return denied
    if not request.content_type.startswith("multipart/"):
        return _ace_error(400, "bad_request", "the body must be multipart/form-data")
    form = await request.post()
    part = form.get("file")
    if not isinstance(part, web.FileField):
        return _ace_error(400, "bad_request", "file is required")
    data = part.file.read()
    if not data:
        return _ace_error(400, "bad_request", "file is empty")
    name = st.add_upload(data, part.filename or "upload", part.content_type or "application/octet-stream")
    await st.latency()
    url = f"{origin(request)}/files/{name}"
    return json_response({"id": name, "filename": part.filename, "size": len(data), "url": url})


def fault(status: int) -> web.Response:
    if status == 403:  # the spec: swap's moderation refusal
        return _ace_error(403, "forbidden", "the picture was refused by content moderation")
    if status == 504:  # the spec's timeout of a synchronous swap
        return _ace_error(504, "timeout", "Timeout to generate the image.")
    return _ace_error(status, "too_many_requests" if status == 429 else "api_error", "injected fault")


def setup(app: web.Application) -> None:
    """Mount Ace Data's routes (before AILab's ``/api/``, so that uploads count as Ace's)."""
    mount(app, "acedata", "/face/", fault)
    mount(app, "acedata", "/api/v1/files/", fault)
    app.router.add_post("/api/v1/files/", platform_upload)
    app.router.add_post("/face/tasks", acedata_tasks)
    app.router.add_post("/face/{op}", acedata_face)
