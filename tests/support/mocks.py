"""All three providers in memory (MockTransport) and clients on them."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio

import aioface
from tests.support.servers import JPEG, RESULT, SUBMIT


def mock_providers(image: bytes = JPEG, delay: float = 0.0) -> aioface.MockTransport:
    """All three providers in memory, each answer ``delay`` seconds late; ``transport.requests``
    lists what was sent."""

    async def handler(req: aioface.MockRequest) -> aioface.MockResponse:
        await anyio.sleep(delay)
        path = urlsplit(req.url).path
        if path == "/v1/generate" or path == "/img.jpg":
            return aioface.MockResponse(200, content=image, headers={"Content-Type": "image/jpeg"})
        if path.startswith("/face/"):
            return aioface.MockResponse(200, json={"image_url": "https://cdn.example/img.jpg", "task_id": "t"})
        if path == SUBMIT:
            return aioface.MockResponse(200, json={"error_code": 0, "task_id": "t-1"})
        if path == RESULT:
            data = {"image": "https://cdn.example/img.jpg"}
            return aioface.MockResponse(200, json={"error_code": 0, "task_status": 2, "data": data})
        return aioface.MockResponse(404, json={"detail": "Not found."})

    return aioface.MockTransport(handler)


def mock_client(transport: aioface.MockTransport, **kw: Any) -> aioface.Client:
    kw.setdefault("persist_limits", False)
    kw.setdefault("limits", {"facestudio": "1000/s", "acedata": "1000/s", "ailab": "1000/s"})
    return aioface.Client(
        facestudio_key="fs-key", acedata_token="ace-token", ailab_key="ailab-key", transport=transport, env={}, **kw
    )


def paid_requests(transport: aioface.MockTransport) -> int:
    paths = [urlsplit(r.url).path for r in transport.requests]
    return sum(1 for p in paths if p in ("/v1/generate", SUBMIT) or p.startswith("/face/"))


async def run_op(c: aioface.Client, provider: str, dest: Path | str) -> aioface.ImageResult:
    if provider == "facestudio":
        return await c.facestudio.generate(dest)
    if provider == "acedata":
        return await c.acedata.change_age("https://cdn.example/a.png", [60], dest)
    fast = aioface.PollPolicy(initial=0.01, deadline=5)
    return await c.ailab.swap(dest, source=JPEG, target=JPEG, poll=fast)
