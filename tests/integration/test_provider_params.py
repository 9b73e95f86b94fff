"""Field traps, faithful to the docs (issue 10): documented types, no invented caps, the providers'
fields kept, tier-gated parameters refused locally, proxies and sessions, one swap signature.

API chosen here (public):

* ``hair_length`` and ``facial_hair`` take "0".."10" (the docs' type, string) or 0..10.
* Only documented rules are checked locally: change-age takes any number of faces and any integer
  age, swap any integer ``timeout``; the provider answers the rest.
* AILab's ``request_id`` (submit answer) is ``ImageResult.request_id``, its ``log_id`` is
  ``ImageResult.extra["log_id"]``; Ace's ``image_width``/``image_height``/``image_size`` are
  ``ImageResult.extra[...]`` under their own names (``width``/``height`` stay the measured ones).
* ``AceData.swap`` and ``AILab.swap`` are ``swap(dest, *, source, target, ...)``: ``source`` is the face
  to put in, ``target`` the picture to put it into (Ace's ``source_image_url``/``target_image_url``,
  AILab's ``image_template``/``image_target``), keyword-only, as the CLI's ``--source``/``--target``
  and batch's ``"source"``/``"target"``.
* Proxies: ``HTTP_PROXY``/``HTTPS_PROXY`` from the environment; your own session:
  ``Client(transport=aioface.AiohttpTransport(session))`` or ``AiohttpTransport(connector_kwargs=...)``.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

import aioface
from aioface.emulator import Emulator
from tests.support.cli import EmulatorProcess
from tests.support.files import files_in
from tests.support.servers import fake_proxy, picture, serve

SRC = "https://cdn.acedata.cloud/n1lmd8.png"
DST = "https://cdn.acedata.cloud/3np95r.png"
FAST_RETRY = aioface.RetryPolicy(max_retries=1, base=0.01, cap=0.02)


def _client(**kw: Any) -> aioface.Client:
    return aioface.Client(persist_limits=False, env={}, retry=FAST_RETRY, **kw)


def _swap(ns: Any, *, source: Any, target: Any, dest: Path, **kw: Any) -> Any:
    """Swap as this file wants it, or today's form (Ace: face first; AILab: picture first) until then,
    so that the tests below fail for their own reason; test_swap_signatures pins the signature."""
    params = inspect.signature(ns.swap).parameters
    if "source" in params and "target" in params:
        return ns.swap(source=source, target=target, dest=dest, **kw)
    if "template" in params:
        return ns.swap(target, source, dest, **kw)
    return ns.swap(source, target, dest, **kw)


async def _cli(*args: str, env: dict[str, str]) -> Any:
    return await anyio.run_process([sys.executable, "-m", "aioface", *args], env=env, check=False)


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    emu = EmulatorProcess("--time-scale", "600", "--key", "cli-secret-key-0001=professional")
    yield emu
    emu.stop()


def _face_studio(img: bytes, queries: list[dict[str, str]]) -> web.Application:
    async def generate(request: web.Request) -> web.Response:
        queries.append(dict(request.query))
        return web.Response(body=img, headers={"Content-Type": "image/jpeg", "X-User-Class": "Professional"})

    app = web.Application()
    app.router.add_get("/v1/generate", generate)
    return app


# ------------------------------------------------------------------------ documented types
@pytest.mark.anyio
async def test_hair_length_and_facial_hair_take_strings_and_ints(tmp_path: Path) -> None:
    queries: list[dict[str, str]] = []
    async with serve(_face_studio(picture("JPEG"), queries)) as base:
        async with _client(facestudio_key="pro", facestudio_base_url=base, facestudio_tier="professional") as c:
            await c.facestudio.generate(tmp_path / "s", hair_length="7", facial_hair="0")
            await c.facestudio.generate(tmp_path / "i", hair_length=10, facial_hair=3)
            for bad in ("11", "-1", "x", "7.5", "", 11, 2.0, True):
                with pytest.raises(aioface.InvalidRequestError):
                    await c.facestudio.generate(tmp_path / "bad", hair_length=bad)  # type: ignore[arg-type]
    assert [(q["hair_length"], q["facial_hair"]) for q in queries] == [("7", "0"), ("10", "3")]


@pytest.mark.anyio
async def test_batch_takes_hair_length_as_the_docs_string(emulator: EmulatorProcess, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"id": "h", "op": "generate", "hair_length": "7", "facial_hair": "2", "resolution": 128}\n')
    r = await _cli("batch", str(jobs), "--out", str(tmp_path / "o"), env=emulator.env(tmp_path))
    assert r.returncode == 0, r.stderr.decode()
    assert {"h.jpg", "results.jsonl"} <= set(files_in(tmp_path / "o"))


# ------------------------------------------------------------------------- no invented caps
@pytest.mark.anyio
async def test_change_age_sends_more_than_ten_faces_and_any_integer_age(emu: Emulator, tmp_path: Path) -> None:
    async with emu.client() as c:
        r = await c.acedata.change_age("https://cdn.acedata.cloud/f5687u.png", [30] * 11, tmp_path / "eleven")
        assert r.path is not None
        assert r.path.exists()
        with pytest.raises(aioface.BadRequestError):  # the provider's answer, not a local refusal
            await c.acedata.change_age("https://cdn.acedata.cloud/f5687u.png", [5], tmp_path / "five")
    assert emu.stats["acedata_requests"] == 2


@pytest.mark.anyio
async def test_swap_timeout_over_600_is_sent_and_one_of_no_seconds_is_refused(emu: Emulator, tmp_path: Path) -> None:
    """No invented upper cap (900 s goes to the provider); a timeout of no time at all (0, -1) is bad
    input, refused before anything is sent and paid (issue 22 item 8)."""
    async with emu.client() as c:
        r = await _swap(c.acedata, source=SRC, target=DST, dest=tmp_path / "long", timeout=900)
        assert r.path is not None and r.path.exists()
        for nothing in (0, -1):
            with pytest.raises(aioface.InvalidRequestError, match="timeout"):
                await _swap(c.acedata, source=SRC, target=DST, dest=tmp_path / "zero", timeout=nothing)
    assert emu.stats["acedata_requests"] == 1


# ------------------------------------------------------------------- the providers' fields
def _ailab(face: bytes, picture_: bytes, result: bytes, uploads: list[dict[str, bytes]]) -> web.Application:
    async def submit(request: web.Request) -> web.Response:
        form = await request.post()
        uploads.append({k: v.file.read() for k, v in form.items() if isinstance(v, web.FileField)})
        return web.json_response(
            {"request_id": "req-submit", "log_id": "log-submit", "error_code": 0, "task_type": "async", "task_id": "t1"}
        )

    async def poll(request: web.Request) -> web.Response:
        image = f"http://{request.host}/files/r.jpg"
        return web.json_response(
            {
                "request_id": "req-poll",
                "log_id": "log-poll",
                "error_code": 0,
                "task_status": 2,
                "data": {"image": image},
            }
        )

    async def file(request: web.Request) -> web.Response:
        return web.Response(body=result, content_type="image/jpeg")

    app = web.Application()
    app.router.add_post("/api/portrait/editing/ai-face-swap", submit)
    app.router.add_get("/api/common/query-async-task-result", poll)
    app.router.add_get("/files/r.jpg", file)
    return app


FACE = picture("JPEG", color=(250, 10, 10))
PICTURE = picture("JPEG", size=(120, 90), color=(10, 10, 250))
RESULT = picture("JPEG", size=(64, 48))


@pytest.mark.anyio
async def test_ailab_request_id_and_log_id_are_kept(tmp_path: Path) -> None:
    uploads: list[dict[str, bytes]] = []
    fast = aioface.PollPolicy(initial=0.01, max_interval=0.02, deadline=10)
    async with serve(_ailab(FACE, PICTURE, RESULT, uploads)) as base:
        async with _client(ailab_key="k", ailab_base_url=base, poll=fast) as c:
            r = await _swap(c.ailab, source=FACE, target=PICTURE, dest=tmp_path / "s")
    assert r.task_id == "t1" and r.request_id == "req-submit"
    assert r.extra["log_id"] == "log-submit"
    assert r.to_json()["log_id"] == "log-submit"  # and so in batch's results.jsonl


def _ace(img: bytes, bodies: list[dict[str, Any]]) -> web.Application:
    async def swap(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        return web.json_response(
            {
                "image_url": f"http://{request.host}/face/r.png",
                "image_width": 2008,
                "image_height": 1942,
                "image_size": len(img),
                "task_id": "4b13bdeb",
            }
        )

    async def file(request: web.Request) -> web.Response:
        return web.Response(body=img, content_type="image/png")

    app = web.Application()
    app.router.add_post("/face/swap", swap)
    app.router.add_get("/face/r.png", file)
    return app


@pytest.mark.anyio
async def test_ace_image_width_height_and_size_are_kept(tmp_path: Path) -> None:
    img = picture()
    bodies: list[dict[str, Any]] = []
    async with serve(_ace(img, bodies)) as base, _client(acedata_token="t", acedata_base_url=base) as c:
        r = await _swap(c.acedata, source=SRC, target=DST, dest=tmp_path / "s")
    assert (r.extra["image_width"], r.extra["image_height"], r.extra["image_size"]) == (2008, 1942, len(img))
    assert (r.width, r.height) == (96, 80)  # measured on the file
    assert r.to_json()["image_width"] == 2008


# ---------------------------------------------------------------- tier-gated params, no key
@pytest.mark.parametrize("extra", [["--seed", "7"], ["--param", "skintone=3"], ["--param", "hair_length=4"]])
def test_tier_gated_parameters_without_a_key_exit_2_with_nothing_sent(
    emulator: EmulatorProcess, tmp_path: Path, extra: list[str]
) -> None:
    import subprocess

    env = emulator.env(tmp_path)
    env.pop("AIOFACE_FACESTUDIO_KEY")
    before = emulator.stats().get("facestudio_requests", 0)
    r = subprocess.run(
        [sys.executable, "-m", "aioface", "generate", "-n", "3", *extra, "--out", str(tmp_path / "o")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Professional" in r.stderr
    assert emulator.stats().get("facestudio_requests", 0) == before


# ------------------------------------------------------------------ proxies and sessions
@pytest.fixture
def proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


@pytest.mark.anyio
async def test_http_proxy_is_honoured(proxy_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    img = picture("JPEG")
    async with fake_proxy(img, "image/jpeg", [("X-User-Class", "Basic")]) as (proxy, log):
        proxy_env.setenv("HTTP_PROXY", proxy)
        async with _client(facestudio_key="k", facestudio_base_url="http://facestudio.example") as c:
            face = await c.facestudio.generate(tmp_path / "face", age=30)
            cdn = await c.download("http://cdn.example/r.jpg", tmp_path / "cdn")
    assert face.path is not None and cdn.path is not None
    assert face.path.read_bytes() == img and cdn.path.read_bytes() == img
    assert log.lines[0].startswith("GET http://facestudio.example/v1/generate?")
    assert log.lines[1].startswith("GET http://cdn.example/r.jpg ")
    assert log.headers[0].get("authorization") == "Token k"


@pytest.mark.anyio
async def test_https_proxy_is_honoured(proxy_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    async with fake_proxy(b"", "text/plain") as (proxy, log):
        proxy_env.setenv("HTTPS_PROXY", proxy)
        async with _client(facestudio_key="k", facestudio_base_url="https://facestudio.example") as c:
            with pytest.raises(aioface.AiofaceError):  # this proxy refuses every tunnel
                await c.facestudio.generate(tmp_path / "face", age=30)
    assert log.lines and log.lines[0].startswith("CONNECT facestudio.example:443 ")
    assert files_in(tmp_path) == []


@pytest.mark.anyio
async def test_the_cli_honours_http_proxy(tmp_path: Path) -> None:
    img = picture("JPEG")
    async with fake_proxy(img, "image/jpeg", [("X-User-Class", "Basic")]) as (proxy, log):
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env.update(
            HTTP_PROXY=proxy,
            AIOFACE_FACESTUDIO_KEY="k",
            AIOFACE_FACESTUDIO_BASE_URL="http://facestudio.example",
            AIOFACE_CACHE_DIR=str(tmp_path / "cache"),
        )
        r = await _cli("generate", "--out", str(tmp_path / "o"), env=env)
    assert r.returncode == 0, r.stderr.decode()
    assert files_in(tmp_path / "o") == ["face-0000.jpg"] and len(log.lines) == 1


@pytest.mark.anyio
async def test_your_own_session_and_connector_settings(tmp_path: Path) -> None:
    queries: list[dict[str, str]] = []
    seen: list[str] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        seen.append(request.headers.get("X-Mine", ""))
        return await handler(request)  # type: ignore[no-any-return]

    app = _face_studio(picture("JPEG"), queries)
    app.middlewares.append(record)
    async with serve(app) as base:
        session = aiohttp.ClientSession(headers={"X-Mine": "yes"})
        try:
            transport = aioface.AiohttpTransport(session)
            async with _client(facestudio_key="k", facestudio_base_url=base, transport=transport) as c:
                await c.facestudio.generate(tmp_path / "a")
            assert not session.closed  # yours: the client leaves it open
        finally:
            await session.close()
        transport = aioface.AiohttpTransport(connector_kwargs={"limit_per_host": 1, "ttl_dns_cache": 5})
        async with _client(facestudio_key="k", facestudio_base_url=base, transport=transport) as c:
            await c.facestudio.generate(tmp_path / "b")
    assert seen == ["yes", ""] and files_in(tmp_path) == ["a.jpg", "b.jpg"]


# --------------------------------------------------------------------- one swap signature
def test_swap_signatures() -> None:
    for cls in (aioface.AceData, aioface.AILab):
        params = inspect.signature(cls.swap).parameters
        for name in ("source", "target"):
            assert name in params and params[name].kind is inspect.Parameter.KEYWORD_ONLY, (cls.__name__, name)
        assert "template" not in params and "source_url" not in params


@pytest.mark.anyio
async def test_both_swaps_put_the_source_face_into_the_target_picture(tmp_path: Path) -> None:
    uploads: list[dict[str, bytes]] = []
    bodies: list[dict[str, Any]] = []
    fast = aioface.PollPolicy(initial=0.01, max_interval=0.02, deadline=10)
    async with serve(_ailab(FACE, PICTURE, RESULT, uploads)) as lab, serve(_ace(picture(), bodies)) as ace:
        async with _client(ailab_key="k", ailab_base_url=lab, acedata_token="t", acedata_base_url=ace, poll=fast) as c:
            await c.ailab.swap(source=FACE, target=PICTURE, dest=tmp_path / "lab")
            await c.acedata.swap(source=SRC, target=DST, dest=tmp_path / "ace")
            for ns, face, pic in ((c.ailab, FACE, PICTURE), (c.acedata, SRC, DST)):
                try:
                    coro = ns.swap(face, pic, tmp_path / "positional")  # type: ignore[call-arg, arg-type]
                except TypeError:
                    continue
                coro.close()
                pytest.fail(f"{type(ns).__name__}.swap takes its images positionally")
    assert uploads == [{"image_template": FACE, "image_target": PICTURE}]
    assert (bodies[0]["source_image_url"], bodies[0]["target_image_url"]) == (SRC, DST)


@pytest.mark.anyio
async def test_cli_ailab_swap_puts_source_into_target(tmp_path: Path) -> None:
    (tmp_path / "face.jpg").write_bytes(FACE)
    (tmp_path / "picture.jpg").write_bytes(PICTURE)
    uploads: list[dict[str, bytes]] = []
    async with serve(_ailab(FACE, PICTURE, RESULT, uploads)) as base:
        env = {**os.environ, "AIOFACE_AILAB_KEY": "k", "AIOFACE_AILAB_BASE_URL": base}
        env["AIOFACE_CACHE_DIR"] = str(tmp_path / "cache")
        r = await _cli(
            "swap",
            "--provider",
            "ailab",
            "--source",
            str(tmp_path / "face.jpg"),
            "--target",
            str(tmp_path / "picture.jpg"),
            "--out",
            str(tmp_path / "o"),
            env=env,
        )
    assert r.returncode == 0, r.stderr.decode()
    assert uploads == [{"image_template": FACE, "image_target": PICTURE}]
