"""Results where users want them: a file, a folder, memory, a file object or async sink, or not downloaded."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from aioface import Client, DownloadError, MockRequest, MockResponse, MockTransport
from aioface.emulator import Emulator
from aioface.results import _stream
from tests.support.files import files_in, image_bytes

pytestmark = pytest.mark.anyio
JPEG = image_bytes("JPEG", (48, 32))


def _client(body: bytes = JPEG, headers: dict[str, str] | None = None) -> Client:
    def handler(req: MockRequest) -> MockResponse:
        return MockResponse(200, content=body, headers=headers or {})

    return Client(facestudio_key="k", transport=MockTransport(handler), persist_limits=False, env={})


class AsyncSink:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.parts.append(data)


async def test_memory_file_object_and_async_sink(tmp_path: Path) -> None:
    async with _client() as client:
        mem = await client.facestudio.generate(age=30)  # dest=None: in memory
        buf = io.BytesIO()
        obj = await client.facestudio.generate(buf, age=30)
        sink = AsyncSink()
        up = await client.facestudio.generate(sink, age=30)
    assert mem.data == JPEG and mem.path is None and (mem.width, mem.height, mem.format) == (48, 32, "jpeg")
    assert buf.getvalue() == JPEG and obj.data is None and obj.path is None and obj.bytes == len(JPEG)
    assert b"".join(sink.parts) == JPEG and up.width == 48
    assert files_in(tmp_path) == []


async def test_memory_is_capped_and_sinks_get_no_non_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_stream, "MEMORY_MAX_BYTES", 100)
    async with _client() as client:
        with pytest.raises(DownloadError, match="100-byte maximum"):
            await client.facestudio.generate(age=30)
    sink = AsyncSink()
    async with _client(b"<html>not an image</html>" * 10) as client:
        with pytest.raises(DownloadError, match="not a JPEG"):
            await client.facestudio.generate(sink, age=30)
    assert sink.parts == []  # bytes are held back until they prove an image


async def test_folder_names_from_request_id_or_a_counter(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "result-0001.png").write_bytes(b"taken")
    async with _client(headers={"X-Request-ID": "req/../7"}) as client:
        named = await client.facestudio.generate(out, age=30)
    async with _client() as client:
        a = await client.facestudio.generate(out, age=30)
        b = await client.facestudio.generate(f"{tmp_path}/new/", age=30)  # a trailing slash: a folder
    assert named.path is not None and named.path.parent == out and named.path.suffix == ".jpg"
    assert named.path.name.startswith("req____7~") and named.path.name.endswith(".jpg")
    assert a.path == out / "result-0002.jpg"
    assert b.path == tmp_path / "new" / "result-0001.jpg"


async def test_request_ids_that_clean_to_the_same_name_get_files_of_their_own(tmp_path: Path) -> None:
    """``a.b``, ``a_b`` and ``a/b`` all clean to ``a_b``: no result may overwrite another."""
    out = tmp_path / "out"
    out.mkdir()
    paths = []
    for rid in ("a.b", "a_b", "a/b"):
        async with _client(headers={"X-Request-ID": rid}) as client:
            r = await client.facestudio.generate(out, age=30)
            assert r.path is not None
            paths.append(r.path)
    assert len(set(paths)) == 3 and sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)
    assert out / "a_b.jpg" in paths  # a plain id keeps its own name


async def test_download_false_gives_the_provider_url_and_metadata(emu: Emulator, tmp_path: Path) -> None:
    async with emu.client() as client:
        aged = await client.acedata.change_age("https://cdn.acedata.cloud/f5687u.png", [60], download=False)
        swapped = await client.ailab.swap(source=image_bytes(), target=image_bytes("PNG"), download=False)
        assert not aged.downloaded and aged.path is None and aged.format is None
        assert aged.source_url and aged.source_url.startswith(emu.url)
        assert aged.bytes is None and aged.width is None  # change-age declares no size
        src = "https://cdn.acedata.cloud/n1lmd8.png"
        ace = await client.acedata.swap(source=src, target=src, download=False)
        assert ace.bytes == ace.extra["image_size"] and (ace.width, ace.height) == (384, 384) and ace.task_id
        assert swapped.source_url and swapped.task_id and not swapped.downloaded
        assert aged.to_json()["source_url"] == aged.source_url
        assert emu.stats["file_requests"] == 0
        later = await client.download(swapped.source_url, tmp_path / "later")  # fetched when wanted
        assert later.path == tmp_path / "later.jpg" and later.downloaded
        in_folder = await client.ailab.swap(tmp_path, source=image_bytes(), target=image_bytes("PNG"))
    assert in_folder.path is not None and in_folder.path.name.startswith(in_folder.task_id or "?")
