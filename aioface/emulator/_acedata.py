"""The emulator's Ace Data Cloud: ``POST /face/{op}``, Bearer auth, sync and callback swaps.

Its rules are written out again here on purpose, not imported from the client: the emulator is an
independent check of the client's reading of the docs. Analyze and detect-live bodies are its own
approximations (the docs do not show them).
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
        return json_response(
            {"face_num": 1, "faces": [{"age": 30 + seed % 40, "gender": seed % 2, "beauty": 70 + seed % 30}]}
        )
    if op == "detect-live":
        await st.latency()
        return json_response({"score": 90 + seed % 10, "is_live": True})
    if op == "swap":
        timeout = body.get("timeout")
        if timeout is not None and (not isinstance(timeout, int) or timeout <= 0):
            return _ace_error(400, "token_mismatched", "timeout must be a positive integer")
        cb = body.get("callback_url")
        if cb is not None:
            if not _is_url(cb):
                return _ace_error(400, "token_mismatched", "callback_url must be an http(s) URL")
            task_id = str(uuid.uuid4())
            # Retrievable by id too (POST /face/tasks), as any task of the provider's.
            task = st.tasks[task_id] = Task(st.now(), st.task_duration(), fail=False, stuck=False, seed=seed)
            st.spawn(_ace_callback(st, origin(request), task, task_id, cb, seed))
            st.stats["acedata_tasks"] += 1
            await st.latency()
            return json_response({"task_id": task_id})
        task_id = str(uuid.uuid4())
        if timeout is not None and timeout < st.config.swap_duration:
            # The docs: with ``timeout`` the call "returns directly on timeout" - with the task id.
            st.tasks[task_id] = Task(st.now(), st.config.swap_duration, fail=False, stuck=False, seed=seed)
            await asyncio.sleep(timeout)
            return json_response({"task_id": task_id})
        await asyncio.sleep(st.config.swap_duration)
        await st.latency()
        return json_response(_ace_image(st, origin(request), seed, task_id))
    await st.latency()
    name = st.new_file(seed, 20 + seed % 60, 256, "png")
    return json_response({"image_url": f"{origin(request)}/files/{name}"})


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
    if st.rng.random() < f.task_fail:
        payload: dict[str, Any] = {
            "success": False,
            "task_id": task_id,
            "error": {"code": "api_error", "message": "face swap failed"},
            "trace_id": str(uuid.uuid4()),
        }
    else:
        payload = {"success": True, **_ace_image(st, origin, seed, task_id)}
    task.answer = payload
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
    """``POST /face/tasks {"id", "action": "retrieve"}`` (a guess modelled on Ace Data's Tasks API)."""
    st = request.app[STATE]
    st.stats["acedata_requests"] += 1
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
    if st.now() - task.created < task.duration:
        return json_response({"id": task_id})
    if task.answer is None:
        task.answer = {"success": True, **_ace_image(st, origin(request), task.seed, str(task_id))}
    return json_response({"id": task_id, "response": task.answer})


def fault(status: int) -> web.Response:
    return _ace_error(status, "too_many_requests" if status == 429 else "api_error", "injected fault")


def setup(app: web.Application) -> None:
    """Mount Ace Data's routes."""
    mount(app, "acedata", "/face/", fault)
    app.router.add_post("/face/tasks", acedata_tasks)
    app.router.add_post("/face/{op}", acedata_face)
