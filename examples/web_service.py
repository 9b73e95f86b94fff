"""One aioface Client for the lifetime of an aiohttp.web app, shared by every handler.

Run it:  python examples/web_service.py   then   curl -o face.jpg 'http://127.0.0.1:8080/face?age=30'
(set AIOFACE_FACESTUDIO_BASE_URL to an emulator, e.g. `aioface emulator --port 8765`, to try it locally).

Each face is streamed to a temporary file, read back, removed and sent; the temporary folder goes at
shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

import aioface

CLIENT = web.AppKey("aioface_client", aioface.Client)
OUT = web.AppKey("aioface_out", Path)


def create_app(
    make_client: Callable[[], aioface.Client] = aioface.Client, out_dir: Path | None = None
) -> web.Application:
    """The app: ``GET /face?age=N`` answers a generated face; limits are shared by all requests.

    Faces pass through ``out_dir`` (default: a temporary folder made at start-up, removed at shutdown).
    """
    app = web.Application()

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        own = out_dir is None
        app[OUT] = Path(tempfile.mkdtemp(prefix="aioface-service-")) if out_dir is None else out_dir
        try:
            async with make_client() as client:  # opened at start-up, closed at shutdown
                app[CLIENT] = client
                yield
        finally:
            if own:
                shutil.rmtree(app[OUT], ignore_errors=True)

    async def face(request: web.Request) -> web.StreamResponse:
        try:
            age = int(request.query.get("age", "30"))
            result = await request.app[CLIENT].facestudio.generate(
                request.app[OUT] / str(uuid.uuid4()), age=age, resolution=256
            )
        except (ValueError, aioface.InvalidRequestError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except aioface.RateLimitError as exc:
            return web.json_response({"error": exc.code, "retry_after": exc.retry_after}, status=503)
        except aioface.AiofaceError as exc:
            return web.json_response({"error": exc.code}, status=502)
        try:
            body = await asyncio.to_thread(result.path.read_bytes)  # a face is a few hundred KB at most
        finally:
            with contextlib.suppress(FileNotFoundError):
                result.path.unlink()
        return web.Response(
            body=body, content_type=f"image/{result.format}", headers={"X-User-Class": result.user_class or ""}
        )

    app.cleanup_ctx.append(lifetime)
    app.router.add_get("/face", face)
    return app


if __name__ == "__main__":
    web.run_app(create_app(), host="127.0.0.1", port=8080)
