"""The emulator's aiohttp.web application: result files plus every registered provider's routes,
behind one fault-injecting middleware."""

from __future__ import annotations

import asyncio
import importlib

from aiohttp import web

from ._common import FAULT, MOUNTS, STATE, Handler, faulty_body, json_response
from ._files import setup as setup_files
from ._state import EmulatorConfig, State


async def emulator_stats(request: web.Request) -> web.StreamResponse:
    """The emulator's own counters (not part of any provider): requests, 429s sent, faults."""
    return json_response(dict(request.app[STATE].stats))


async def emulator_task(request: web.Request) -> web.StreamResponse:
    """When an AILab task is (or was) done, on this machine's monotonic clock (for benchmarks)."""
    task = request.app[STATE].tasks.get(request.match_info["task_id"])
    if task is None:
        return json_response({"error": "no such task"}, 404)
    return json_response({"created": task.created, "done_at": task.created + task.duration})


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    st = request.app[STATE]
    m = next((m for m in request.app[MOUNTS] if request.path.startswith(m.prefix)), None)
    if m is None:
        return await handler(request)
    kind = st.pick_fault(m.name)
    if kind is None:
        return await handler(request)
    st.stats[f"fault_{kind}"] += 1
    st.stats["faults"] += 1
    if kind.isdigit():
        return m.fault(int(kind))
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
        await faulty_body(request, out, body, kind)
        return out
    return resp


def create_app(config: EmulatorConfig | None = None) -> web.Application:
    """The emulator as an ``aiohttp.web.Application`` (serve it yourself or use :class:`Emulator`)."""
    from ..providers import providers

    app = web.Application(middlewares=[fault_middleware], client_max_size=32 * 1024 * 1024)
    app[STATE] = State(config or EmulatorConfig())
    app[MOUNTS] = []
    setup_files(app)
    for spec in providers().values():
        if spec.emulator:
            module, _, func = spec.emulator.partition(":")
            getattr(importlib.import_module(module), func)(app)
    app.router.add_get("/_emulator/stats", emulator_stats)
    app.router.add_get("/_emulator/tasks/{task_id}", emulator_task)

    async def _cleanup(app: web.Application) -> None:
        for t in list(app[STATE].background):
            t.cancel()

    app.on_cleanup.append(_cleanup)
    return app


__all__ = ["STATE", "create_app"]
