"""Paid results under hostile conditions: retries into sinks, results that cannot be delivered,
sinks fed before the checks, disks that fill during a batch.

Each test builds the tiny aiohttp server it needs (127.0.0.1, a free port) and drives aioface
through its public API.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web

import aioface
from aioface import DownloadError, PollPolicy, RetryPolicy, StorageError
from aioface.jobs._batch import run_batch
from aioface.results import _stream
from tests.support.cli import cli_env, journal_lines, run_cli
from tests.support.disks import tmpfs
from tests.support.files import part_files
from tests.support.servers import noise_jpeg, paid, png_claiming, provider_app, serve

pytestmark = pytest.mark.anyio

IMAGE = noise_jpeg(64)  # a few KB: the header comes in its first bytes
FAST = PollPolicy(initial=0.01, deadline=5)


def client(base: str, **kw: Any) -> aioface.Client:
    kw.setdefault("limits", {"facestudio": "1000/s", "acedata": "1000/s", "ailab": "1000/s"})
    kw.setdefault("retry", RetryPolicy(max_retries=2, base=0.01))
    return aioface.Client(
        facestudio_key="fs-key",
        acedata_token="ace-token",
        ailab_key="ailab-key",
        facestudio_base_url=base,
        acedata_base_url=base,
        ailab_base_url=base,
        persist_limits=False,
        env={},
        **kw,
    )


async def _cut(request: web.Request, body: bytes) -> web.StreamResponse:
    """Headers claiming all of ``body``, half of it, then the connection closed."""
    resp = web.StreamResponse(headers={"Content-Type": "image/jpeg", "Content-Length": str(len(body))})
    await resp.prepare(request)
    await resp.write(body[: len(body) // 2])
    assert request.transport is not None
    request.transport.close()
    return resp


def cutting_app(hits: Counter[str], body: bytes, *, cut_first: int = 1, poll_fails: bool = False) -> web.Application:
    """All three providers; every image answer (Face Studio's, the result URL's) is cut the first
    ``cut_first`` times, then whole. ``poll_fails``: AILab's task polls answer 500."""
    app = web.Application()

    async def image(request: web.Request) -> web.StreamResponse:
        hits[request.path] += 1
        if hits[request.path] <= cut_first:
            return await _cut(request, body)
        return web.Response(body=body, content_type="image/jpeg", headers={"X-Request-ID": "req-7"})

    async def ace(request: web.Request) -> web.Response:
        hits[request.path] += 1
        await request.read()
        url = f"http://{request.host}/img.jpg"
        return web.json_response({"success": True, "image_url": url, "task_id": "ace-t", "trace_id": "trace-1"})

    async def ailab_submit(request: web.Request) -> web.Response:
        hits[request.path] += 1
        await request.read()
        return web.json_response({"error_code": 0, "task_id": "t-1", "request_id": "ailab-req"})

    async def ailab_poll(request: web.Request) -> web.Response:
        hits[request.path] += 1
        if poll_fails:
            return web.json_response({"error": "busy"}, status=500)
        img = f"http://{request.host}/img.jpg"
        return web.json_response({"error_code": 0, "task_status": 2, "data": {"image": img}})

    app.router.add_get("/v1/generate", image)
    app.router.add_get("/img.jpg", image)
    app.router.add_post("/face/{op}", ace)
    app.router.add_post("/api/portrait/editing/ai-face-swap", ailab_submit)
    app.router.add_get("/api/common/query-async-task-result", ailab_poll)
    return app


class Sink:
    """An async sink (an upload, say) that cannot seek."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.parts: list[bytes] = []
        self.fail = fail

    async def write(self, data: bytes) -> None:
        if self.fail is not None:
            raise self.fail
        self.parts.append(data)


class SyncSink:
    """A plain file-like object that cannot seek (a pipe, a socket file)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(data)
        return len(data)


async def _run(c: aioface.Client, how: str, dest: Any) -> aioface.ImageResult:
    if how == "generate":
        return await c.facestudio.generate(dest)
    if how == "ailab":
        return await c.ailab.swap(dest, source=IMAGE, target=IMAGE, poll=FAST)
    if how == "acedata":
        return await c.acedata.change_age("https://cdn.example/a.png", [60], dest)
    return await c.download(how, dest)


# ------------------------------------------------------------------------------ 1. retries into sinks
@pytest.mark.parametrize("how", ["generate", "ailab"])
async def test_a_retry_after_a_cut_body_rewinds_a_seekable_file_object(how: str, tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    async with serve(cutting_app(hits, IMAGE)) as url, client(url) as c:
        buf = io.BytesIO(b"kept before")  # bytes the caller wrote first stay
        buf.seek(0, io.SEEK_END)
        with anyio.fail_after(15):
            r = await _run(c, how, buf)
    assert buf.getvalue() == b"kept before" + IMAGE
    assert r.bytes == len(IMAGE)
    assert hits["/v1/generate"] + hits["/img.jpg"] == 2  # cut once, then whole


async def test_a_retry_rewinds_a_real_file_opened_for_writing(tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    async with serve(cutting_app(hits, IMAGE)) as url, client(url) as c:
        with open(tmp_path / "out.jpg", "wb") as f, anyio.fail_after(15):  # noqa: ASYNC230 - the file is the sink
            await c.facestudio.generate(f)
    assert (tmp_path / "out.jpg").read_bytes() == IMAGE


@pytest.mark.parametrize("sink", ["async", "sync"])
@pytest.mark.parametrize("how", ["generate", "ailab", "acedata"])
async def test_a_sink_that_cannot_rewind_is_never_retried_into(how: str, sink: str) -> None:
    hits: Counter[str] = Counter()
    s = Sink() if sink == "async" else SyncSink()
    async with serve(cutting_app(hits, IMAGE)) as url, client(url) as c:
        with anyio.fail_after(15), pytest.raises(DownloadError) as exc:
            await _run(c, how, s)
    held = b"".join(s.parts)
    assert 0 < len(held) < len(IMAGE) and IMAGE.startswith(held)  # the cut part only, nothing appended
    assert hits["/v1/generate"] + hits["/img.jpg"] == 1  # no second GET into it
    e = exc.value
    if how == "generate":
        assert e.request_id is None and e.result_url is None  # the answer was cut before its id could count
    elif how == "ailab":
        assert e.task_id == "t-1" and e.result_url == f"{url}/img.jpg"
    else:
        assert e.task_id == "ace-t" and e.request_id == "trace-1" and e.result_url == f"{url}/img.jpg"
    assert "again" in str(e)


# ------------------------------------------------------------------------------ 2. ids of undelivered results
@pytest.mark.parametrize("how", ["ailab", "acedata"])
async def test_a_result_over_the_memory_cap_keeps_its_ids(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_stream, "MEMORY_MAX_BYTES", 100)
    hits: Counter[str] = Counter()
    async with serve(cutting_app(hits, IMAGE, cut_first=0)) as url, client(url) as c:
        with anyio.fail_after(15), pytest.raises(DownloadError, match="100-byte maximum") as exc:
            await _run(c, how, None)
    e = exc.value
    assert e.result_url == f"{url}/img.jpg"
    assert e.task_id == ("t-1" if how == "ailab" else "ace-t")


@pytest.mark.parametrize("how", ["generate", "ailab", "acedata"])
async def test_a_sink_whose_write_raises_is_a_typed_error_with_the_ids(how: str) -> None:
    hits: Counter[str] = Counter()
    s = Sink(fail=OSError(28, "No space left on device"))
    async with serve(cutting_app(hits, IMAGE, cut_first=0)) as url, client(url) as c:
        with anyio.fail_after(15), pytest.raises(StorageError) as exc:
            await _run(c, how, s)
    e = exc.value
    assert e.errno == 28 and isinstance(e.__cause__, OSError)
    if how == "generate":
        assert e.request_id == "req-7"
    else:
        assert e.result_url == f"{url}/img.jpg" and e.task_id in ("t-1", "ace-t")


async def test_the_batch_journal_records_the_ids_of_a_result_it_could_not_keep(tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    app = cutting_app(hits, b"<html>not an image</html>" * 4, cut_first=0)
    (tmp_path / "s.jpg").write_bytes(IMAGE)
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(
        json.dumps({"id": "a", "op": "swap", "provider": "ailab", "source": str(tmp_path / "s.jpg"),
                    "target": str(tmp_path / "s.jpg")}) + "\n"
        + json.dumps({"id": "b", "op": "change_age", "provider": "acedata", "image_url": "https://x.example/a.png",
                      "ages": [60]}) + "\n"
    )  # fmt: skip
    async with serve(app) as url, client(url, poll=FAST) as c:
        with anyio.fail_after(20):
            summary = await run_batch(c, jobs, tmp_path / "out")
    assert summary.failed == 2
    errors = {rec["id"]: rec["error"] for rec in journal_lines(tmp_path / "out" / "results.jsonl")}
    assert errors["a"]["task_id"] == "t-1" and errors["a"]["result_url"] == f"{url}/img.jpg"
    assert errors["b"]["task_id"] == "ace-t" and errors["b"]["request_id"] == "trace-1"
    assert errors["b"]["result_url"] == f"{url}/img.jpg"
    assert errors["a"]["code"] == "download_error"


async def test_an_ailab_swap_whose_polls_fail_after_submission_keeps_its_task_id() -> None:
    """The submission was paid for: a poll that fails for good must not lose the task."""
    hits: Counter[str] = Counter()
    async with serve(cutting_app(hits, IMAGE, poll_fails=True)) as url, client(url) as c:
        with anyio.fail_after(15), pytest.raises(aioface.ServerError) as exc:
            await c.ailab.swap(None, source=IMAGE, target=IMAGE, poll=FAST)
    assert exc.value.task_id == "t-1"


# ------------------------------------------------------------------------------ 3. sinks see what files see
@pytest.mark.parametrize("kind", ["async", "file object"])
@pytest.mark.parametrize("how", ["generate", "download"])
async def test_a_sink_gets_no_byte_of_a_result_whose_header_claims_a_bomb(how: str, kind: str) -> None:
    bomb = png_claiming(60000, 60000)

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=bomb, content_type="image/png")

    app = web.Application()
    app.router.add_get("/v1/generate", handler)
    app.router.add_get("/bomb.png", handler)
    s: Any = Sink() if kind == "async" else io.BytesIO()
    async with serve(app) as url, client(url) as c:
        with anyio.fail_after(10), pytest.raises(DownloadError, match="pixels"):
            await _run(c, how if how == "generate" else f"{url}/bomb.png", s)
    assert (b"".join(s.parts) if kind == "async" else s.getvalue()) == b""


async def test_a_sink_gets_no_byte_of_a_result_whose_length_is_not_the_declared_size() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield IMAGE

    s = Sink()
    with pytest.raises(DownloadError, match="declared"):
        await _stream.save_stream(chunks(), s, content_length=len(IMAGE), expected_size=len(IMAGE) + 1)
    assert s.parts == []


# ------------------------------------------------------------------------------ 4. a disk that fills
async def test_a_batch_on_a_filling_disk_pays_for_no_more_than_was_in_flight(tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    image = noise_jpeg(600)  # about 450 KB: four fit on the 2 MB disk
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(f'{{"id": "j{i}", "op": "generate"}}\n' for i in range(40)))
    with tmpfs(tmp_path / "out", "2m") as out:
        async with serve(provider_app(hits, image)) as url:
            r = await run_cli("batch", str(jobs), "--out", str(out), "-c", "2", env=cli_env(tmp_path, url), timeout=60)
        assert r.returncode == 1, r.stderr
        assert "space" in (r.stdout + r.stderr).lower()
        kept = sum(1 for rec in journal_lines(out / "results.jsonl") if rec["ok"])
        assert kept >= 1
        assert paid(hits) - kept <= 2, f"paid for {paid(hits) - kept} results it could not keep"
        assert paid(hits) == kept  # here none: the room for one more is checked before each is sent
        assert part_files(out) == []


async def test_a_batch_stops_sending_at_the_first_result_the_disk_refuses(tmp_path: Path) -> None:
    """Results that grow past what the disk holds (the size seen so far says nothing of it):
    the jobs in flight when the first write fails are all that is paid for in vain."""
    hits: Counter[str] = Counter()
    small, big = noise_jpeg(200), noise_jpeg(1000)  # about 50 KB, then about 1.2 MB
    app = web.Application()

    async def generate(request: web.Request) -> web.Response:
        hits[request.path] += 1
        await anyio.sleep(0.05)
        return web.Response(body=small if hits[request.path] <= 2 else big, content_type="image/jpeg")

    app.router.add_get("/v1/generate", generate)
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(f'{{"id": "j{i}", "op": "generate"}}\n' for i in range(40)))
    with tmpfs(tmp_path / "out", "2m") as out:
        async with serve(app) as url, client(url, max_download_bytes=8 << 20) as c:
            with anyio.fail_after(30):
                summary = await run_batch(c, jobs, out, concurrency=2)
        assert summary.stopped is not None and "space" in summary.stopped.lower()
        kept = sum(1 for rec in journal_lines(out / "results.jsonl") if rec["ok"])
        assert kept >= 2
        assert paid(hits) - kept <= 2, f"paid for {paid(hits) - kept} results it could not keep"
        assert part_files(out) == []
