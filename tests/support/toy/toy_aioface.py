"""A third-party provider, as a plug-in package would ship it (used by tests/test_registry.py).

"Toy Faces": ``GET /toy/face?n=N`` with ``X-Toy-Key`` returns a PNG; errors are ``{"oops": msg}``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aioface import APIError, ImageResult, ServerError
from aioface.providers import BatchOp, BenchOp, ProviderNamespace, ProviderSpec, RequestSpec


def png(n: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (10 + n, 20), (n % 256, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


def parse_error(status: int, headers: Mapping[str, str], body: bytes) -> APIError:
    cls = ServerError if status >= 500 else APIError
    return cls(body.decode("utf-8", "replace"), provider="toy", status=status, code="oops")


class Toy(ProviderNamespace):
    async def face(self, dest: str | Path, *, n: int = 1) -> ImageResult:
        ctx = self._ctx
        spec = RequestSpec("GET", f"{ctx.base_url}/toy/face", {"X-Toy-Key": ctx.key() or ""}, params={"n": str(n)})
        return await ctx.call_image(spec, dest)


async def _run(ns: Toy, params: Mapping[str, Any], dest: Path) -> ImageResult:
    return await ns.face(dest, n=int(params.get("n", 1)))


def _check(params: Mapping[str, Any]) -> None:
    from aioface import InvalidRequestError

    if not isinstance(params.get("n", 1), int) or not 1 <= params.get("n", 1) <= 50:
        raise InvalidRequestError("n must be an integer from 1 to 50", param="n")


def setup(app: Any) -> None:
    """The toy's routes in aioface's emulator."""
    from aiohttp import web

    async def face(request: web.Request) -> web.Response:
        if not request.headers.get("X-Toy-Key"):
            return web.Response(status=401, text="no key")
        return web.Response(body=png(int(request.query.get("n", "1"))), content_type="image/png")

    app.router.add_get("/toy/face", face)


SPEC = ProviderSpec(
    name="toy",
    namespace=Toy,
    parse_error=parse_error,
    default_base_url="https://toy.invalid",
    default_limits="50/second",
    adaptive=False,
    batch_ops=(BatchOp("toyface", _run, optional=frozenset({"n"}), precheck=_check),),
    bench=BenchOp("toy face", lambda ns: lambda dest: ns.face(dest, n=3)),
    emulator="toy_aioface:setup",
)
