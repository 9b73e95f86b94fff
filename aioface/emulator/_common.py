"""What the emulator's provider modules share: the app keys, JSON answers, body faults, mounts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .. import _json
from ._state import State

STATE: web.AppKey[State] = web.AppKey("aioface_emulator_state", State)
#: The fault picked for a request, for handlers that stream their own bodies.
FAULT: Any = web.RequestKey("aioface_fault", str) if hasattr(web, "RequestKey") else "aioface_fault"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Mount:
    """One provider's part of the app: the path prefix its faults apply to, and its fault answer."""

    name: str
    prefix: str
    fault: Callable[[int], web.Response]


MOUNTS: web.AppKey[list[Mount]] = web.AppKey("aioface_emulator_mounts", list)


def mount(app: web.Application, name: str, prefix: str, fault: Callable[[int], web.Response]) -> None:
    """Declare a provider's path prefix (for fault injection) and how it answers an injected status."""
    app[MOUNTS].append(Mount(name, prefix, fault))


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=_json.dumps(data), status=status, content_type="application/json", headers=headers)


def origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


async def faulty_body(request: web.Request, resp: web.StreamResponse, data: bytes, kind: str) -> None:
    """Send half of ``data``, then cut the connection (truncate) or stall before the rest."""
    await resp.write(data[: len(data) // 2])
    if kind == "stall_body":
        await asyncio.sleep(request.app[STATE].config.faults.stall_seconds)
        await resp.write(data[len(data) // 2 :])
        await resp.write_eof()
        return
    if request.transport is not None:
        request.transport.abort()
