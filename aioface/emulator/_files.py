"""Result files (``GET /files/{name}``) that the providers' answers point at."""

from __future__ import annotations

from aiohttp import web

from ._common import FAULT, STATE, faulty_body, mount
from ._images import render


async def serve_file(request: web.Request) -> web.StreamResponse:
    st = request.app[STATE]
    st.stats["file_requests"] += 1
    entry = st.files.get(request.match_info["name"])
    if entry is None or entry.missing or entry.expires <= st.now():
        return web.Response(status=404, text="Not Found")
    if entry.data is not None:  # an uploaded file, as it came
        return web.Response(body=entry.data, headers={"Content-Type": entry.content_type})
    data = render(entry.seed, entry.age, entry.size, entry.fmt)
    pad = st.config.result_padding
    resp = web.StreamResponse(headers={"Content-Type": f"image/{entry.fmt}"})
    resp.content_length = len(data) + pad
    await resp.prepare(request)
    fault = request.get(FAULT)
    if fault in ("truncate", "bad_json", "stall_body"):
        await faulty_body(request, resp, data, fault)
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


def fault(status: int) -> web.Response:
    return web.Response(status=status, text="injected fault")


def setup(app: web.Application) -> None:
    """Mount the result files."""
    mount(app, "files", "/files/", fault)
    app.router.add_get("/files/{name}", serve_file)
