"""Servers that misbehave: callbacks in pieces, trickling bodies, bombs, redirects that carry keys.

Each test builds the tiny aiohttp server it needs inside the test (127.0.0.1, a free port) and
drives aioface through its public API only.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
from aiohttp import web

import aioface
from aioface import (
    AiofaceError,
    CallbackReceiver,
    DownloadError,
    PollPolicy,
    RequestTimeoutError,
    RetryPolicy,
)
from tests.support.files import files_in, image_bytes
from tests.support.servers import png_claiming, serve, trickle

pytestmark = pytest.mark.anyio

JPEG = image_bytes("JPEG", (64, 64))
KEYS = {"facestudio": "fs-secret-0001", "acedata": "ace-secret-0002", "ailab": "ailab-secret-0003"}


def client(base: str, **kw: Any) -> aioface.Client:
    """A client whose three providers live at ``base``; no environment, no persisted limits."""
    kw.setdefault("limits", {"facestudio": "1000/s", "acedata": "1000/s", "ailab": "1000/s"})
    return aioface.Client(
        facestudio_key=KEYS["facestudio"],
        acedata_token=KEYS["acedata"],
        ailab_key=KEYS["ailab"],
        facestudio_base_url=base,
        acedata_base_url=base,
        ailab_base_url=base,
        persist_limits=False,
        env={},
        **kw,
    )


# ------------------------------------------------------------------------------ 1. callbacks
async def _raw_post(url: str, head: dict[str, str], pieces: list[bytes], pause: float) -> int:
    """POST ``pieces`` over a raw TCP connection, sleeping ``pause`` between writes; the status."""
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    lines = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in head.items()]
    async with await anyio.connect_tcp(parts.hostname, parts.port) as stream:
        await stream.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        for piece in pieces:
            await anyio.sleep(pause)
            await stream.send(piece)
        answer = b""
        with anyio.move_on_after(10):
            try:
                while not _complete(answer):
                    answer += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def _complete(answer: bytes) -> bool:
    """Whether ``answer`` holds a whole response (its headers and ``Content-Length`` bytes of body)."""
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def _chunked(body: bytes, size: int) -> list[bytes]:
    out = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)]
    return [*out, b"0\r\n\r\n"]


def _send_styles(body: bytes) -> dict[str, tuple[dict[str, str], list[bytes], float]]:
    length = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    half = len(body) // 2
    return {
        "two TCP pieces": (length, [body[:half], body[half:]], 0.1),
        "chunked": ({"Content-Type": "application/json", "Transfer-Encoding": "chunked"}, _chunked(body, 16), 0.02),
        "slowly": (length, [body[i : i + 8] for i in range(0, len(body), 8)], 0.01),
    }


@pytest.mark.parametrize("style", ["two TCP pieces", "chunked", "slowly"])
async def test_callback_body_arriving_in_pieces_is_accepted(style: str) -> None:
    payload = {"success": True, "task_id": "task-1", "image_url": "https://cdn.example/x.png", "image_size": 10}
    body = json.dumps(payload).encode()
    head, pieces, pause = _send_styles(body)[style]
    async with CallbackReceiver() as rx:
        nonce, url = rx.register()
        with anyio.fail_after(10):
            status = await _raw_post(url, head, pieces, pause)
            got = await rx.wait(nonce, 2)
    assert status == 200
    assert got == payload
    assert rx.stats["accepted"] == 1


async def test_chunked_callback_over_the_cap_is_refused() -> None:
    body = json.dumps({"task_id": "task-1", "pad": "x" * 4000}).encode()
    async with CallbackReceiver(max_body=1024) as rx:
        nonce, url = rx.register()
        with anyio.fail_after(10):
            status = await _raw_post(url, {"Transfer-Encoding": "chunked"}, _chunked(body, 256), 0.01)
            got = await rx.wait(nonce, 0.2)
    assert status == 413
    assert got is None


async def test_callback_sender_that_stalls_is_dropped_after_the_body_timeout() -> None:
    body = json.dumps({"task_id": "task-1"}).encode()
    async with CallbackReceiver(body_timeout=0.5) as rx:
        _, url = rx.register()
        with anyio.fail_after(10):
            # Announces the whole body, sends half, then says nothing more (the handler must not wait forever).
            status = await _raw_post(url, {"Content-Length": str(len(body))}, [body[:5]], 0.0)
    assert status == 408
    assert rx.stats["accepted"] == 0


async def test_acedata_swap_by_callback_sent_in_two_pieces(tmp_path: Path) -> None:
    """End to end: a provider whose callback arrives in two TCP pieces still delivers the paid swap."""
    base: list[str] = []
    calls: list[tuple[str, dict[str, Any]]] = []
    sent = anyio.Event()

    async def swap(request: web.Request) -> web.Response:
        data = await request.json()
        payload = {"success": True, "task_id": "t-1", "image_url": f"{base[0]}/img.jpg", "image_size": len(JPEG)}
        calls.append((data["callback_url"], payload))
        sent.set()
        return web.json_response({"task_id": "t-1"})

    async def img(request: web.Request) -> web.Response:
        return web.Response(body=JPEG, content_type="image/jpeg")

    async def provider_calls_back() -> None:
        await sent.wait()
        await anyio.sleep(0.05)
        url, payload = calls[0]
        body = json.dumps(payload).encode()
        head = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        await _raw_post(url, head, [body[:20], body[20:]], 0.1)

    app = web.Application()
    app.router.add_post("/face/swap", swap)
    app.router.add_get("/img.jpg", img)
    async with serve(app) as url, CallbackReceiver() as rx, client(url) as c, anyio.create_task_group() as tg:
        base.append(url)
        tg.start_soon(provider_calls_back)
        with anyio.fail_after(15):
            r = await c.acedata.swap(
                tmp_path / "s",
                source="https://cdn.example/a.png",
                target="https://cdn.example/b.png",
                callback=rx,
                poll=aioface.PollPolicy(deadline=3),
            )
    assert r.path is not None
    assert r.task_id == "t-1" and r.path.read_bytes() == JPEG


# ------------------------------------------------------------------------------ 4. slow bodies
def _trickler(body: bytes, counter: Counter[str]) -> web.Application:
    async def handler(request: web.Request) -> web.StreamResponse:
        counter[request.path] += 1
        return await trickle(request, body, head=200, step=0.02)

    app = web.Application()
    app.router.add_get("/v1/generate", handler)
    app.router.add_get("/img.jpg", handler)
    return app


@pytest.mark.parametrize("how", ["download", "generate"])
async def test_a_body_trickling_forever_times_out(how: str, tmp_path: Path) -> None:
    """1 byte every 20 ms never trips a per-read timeout of 0.3 s; a total deadline must."""
    seen: Counter[str] = Counter()
    body = JPEG + b"\0" * 100_000
    async with serve(_trickler(body, seen)) as url, client(url, timeout=0.3, retry=RetryPolicy(max_retries=0)) as c:
        with anyio.fail_after(8), pytest.raises(RequestTimeoutError):
            if how == "download":
                await c.download(f"{url}/img.jpg", tmp_path / "r")
            else:
                await c.facestudio.generate(tmp_path / "face")
    assert files_in(tmp_path) == []


async def test_a_views_own_timeout_bounds_a_trickling_download(tmp_path: Path) -> None:
    """``with_options(timeout=...)`` is the grace before the minimum rate counts, for downloads too."""
    seen: Counter[str] = Counter()
    body = JPEG + b"\0" * 100_000
    async with serve(_trickler(body, seen)) as url, client(url, timeout=60, retry=RetryPolicy(max_retries=0)) as c:
        with anyio.fail_after(8), pytest.raises(RequestTimeoutError):
            await c.with_options(timeout=0.3).download(f"{url}/img.jpg", tmp_path / "r")
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("provider", ["acedata", "ailab"])
async def test_a_json_answer_trickling_forever_times_out(provider: str, tmp_path: Path) -> None:
    """Paid JSON answers and poll answers get the same total deadline as result bodies."""
    answer = {"success": True, "image_url": "http://x/img.jpg", "task_id": "t", "pad": "x" * 4000}
    if provider == "ailab":
        answer = {"error_code": 0, "data": {"task_status": 1}, "pad": "x" * 4000}
    body = json.dumps(answer).encode()

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": str(len(body))})
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError):
            for i in range(len(body)):
                await resp.write(body[i : i + 1])
                await anyio.sleep(0.02)
        return resp

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    async with serve(app) as url, client(url, timeout=0.3, retry=RetryPolicy(max_retries=0)) as c:
        with anyio.fail_after(8), pytest.raises(RequestTimeoutError, match="too slow"):
            if provider == "acedata":
                await c.acedata.change_age("https://cdn.example/a.png", [60], tmp_path / "aged")
            else:
                await c.ailab.task("some-task")
    assert files_in(tmp_path) == []


async def test_a_slow_but_steady_body_longer_than_the_timeout_is_kept(tmp_path: Path) -> None:
    """Guard: the deadline grows with the bytes that arrive; a steady body is never cut."""
    body = JPEG + b"\0" * 300_000

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": str(len(body))})
        await resp.prepare(request)
        for i in range(0, len(body), 50_000):
            await resp.write(body[i : i + 50_000])
            await anyio.sleep(0.1)
        return resp

    app = web.Application()
    app.router.add_get("/img.jpg", handler)
    async with serve(app) as url, client(url, timeout=0.3, retry=RetryPolicy(max_retries=0)) as c:
        with anyio.fail_after(15):
            r = await c.download(f"{url}/img.jpg", tmp_path / "r")
    assert r.bytes == len(body)


# ------------------------------------------------------------------------------ 6. bombs
@pytest.mark.parametrize("how", ["download", "generate"])
async def test_a_result_claiming_30000x30000_is_refused_and_nothing_is_left(how: str, tmp_path: Path) -> None:
    bomb = png_claiming(30000, 30000)

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=bomb, content_type="image/png")

    app = web.Application()
    app.router.add_get("/v1/generate", handler)
    app.router.add_get("/bomb.png", handler)
    async with serve(app) as url, client(url, retry=RetryPolicy(max_retries=0)) as c:
        with anyio.fail_after(10), pytest.raises(DownloadError, match="pixels"):
            if how == "download":
                await c.download(f"{url}/bomb.png", tmp_path / "r")
            else:
                await c.facestudio.generate(tmp_path / "face.jpg")
    assert files_in(tmp_path) == []


# ------------------------------------------------------------------------------ 12. keys and redirects
def _recorder(seen: list[str]) -> web.Application:
    """The other host: records every header and query it is sent; answers like the provider would."""
    app = web.Application()

    async def record(request: web.Request) -> web.StreamResponse:
        seen.append(" ".join(f"{k}: {v}" for k, v in request.headers.items()) + " " + request.query_string)
        if request.path == "/img.jpg" or request.path == "/v1/generate":
            return web.Response(body=JPEG, content_type="image/jpeg")
        if request.path.startswith("/face/"):
            return web.json_response({"image_url": f"http://{request.host}/img.jpg", "task_id": "t"})
        if request.path == "/api/common/query-async-task-result":
            img = f"http://{request.host}/img.jpg"
            return web.json_response({"error_code": 0, "task_status": 2, "data": {"image": img}})
        return web.json_response({"error_code": 0, "task_id": "t-1"})

    app.router.add_route("*", "/{tail:.*}", record)
    return app


def _redirector(to: list[str], redirect: Callable[[web.Request], bool]) -> web.Application:
    """The provider: redirects the requests ``redirect`` picks to the other host, answers the rest."""
    app = web.Application()

    async def handle(request: web.Request) -> web.StreamResponse:
        if redirect(request):
            raise web.HTTPTemporaryRedirect(to[0] + request.path_qs)
        if request.path == "/api/portrait/editing/ai-face-swap":
            await request.read()
            return web.json_response({"error_code": 0, "task_id": "t-1"})
        return web.json_response({"error": "unexpected"}, status=500)

    app.router.add_route("*", "/{tail:.*}", handle)
    return app


CASES: dict[str, Callable[[web.Request], bool]] = {
    "facestudio GET": lambda r: r.path == "/v1/generate",
    "acedata POST": lambda r: r.path.startswith("/face/"),
    "ailab submit POST": lambda r: r.path == "/api/portrait/editing/ai-face-swap",
    "ailab poll GET": lambda r: r.path == "/api/common/query-async-task-result",
}


@pytest.mark.parametrize("case", list(CASES))
async def test_keys_never_follow_a_redirect_to_another_port(case: str, tmp_path: Path) -> None:
    seen: list[str] = []
    other: list[str] = []
    async with serve(_recorder(seen)) as other_url, serve(_redirector(other, CASES[case])) as url:
        other.append(other_url)
        async with client(url, retry=RetryPolicy(max_retries=0)) as c:
            with anyio.fail_after(15):
                try:
                    if case.startswith("facestudio"):
                        await c.facestudio.generate(tmp_path / "f")
                    elif case.startswith("acedata"):
                        await c.acedata.change_age("https://cdn.example/a.png", [60], tmp_path / "f")
                    else:
                        fast = PollPolicy(initial=0.01, deadline=5)
                        await c.ailab.swap(tmp_path / "f", source=JPEG, target=JPEG, poll=fast)
                except AiofaceError:
                    pass  # refusing the redirect is fine; leaking the key is not
    if "GET" in case:
        assert seen, "the redirect was not followed at all"
    leaked = [h for h in seen if any(k in h for k in KEYS.values())]
    assert leaked == []


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1:1/x.jpg"])
async def test_a_redirect_to_file_or_ftp_is_a_typed_error_and_not_retried(target: str, tmp_path: Path) -> None:
    hits: Counter[str] = Counter()

    async def handler(request: web.Request) -> web.Response:
        hits[request.path] += 1
        raise web.HTTPFound(target)

    app = web.Application()
    app.router.add_get("/img.jpg", handler)
    app.router.add_get("/v1/generate", handler)
    async with serve(app) as url, client(url) as c:
        with anyio.fail_after(15):
            with pytest.raises(DownloadError, match="http"):
                await c.download(f"{url}/img.jpg", tmp_path / "r")
            with pytest.raises(DownloadError, match="http"):
                await c.facestudio.generate(tmp_path / "face")
    assert hits == {"/img.jpg": 1, "/v1/generate": 1}
    assert files_in(tmp_path) == []
