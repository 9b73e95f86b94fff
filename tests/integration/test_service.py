"""The README's web-service example, driven with concurrent requests over loopback."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path
from types import ModuleType

import aiohttp
import anyio
import pytest
from aiohttp import web
from PIL import Image

from aioface.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.anyio
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "web_service.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("web_service", EXAMPLE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


async def test_one_shared_client_serves_concurrent_requests(tmp_path: Path) -> None:
    mod = _load()
    cfg = EmulatorConfig(time_scale=600.0, keys={"svc": "professional"}, latency=0.01)
    async with Emulator(cfg) as emu:
        app = mod.create_app(lambda: emu.client(facestudio_key="svc", facestudio_tier="professional"), tmp_path)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        from aioface._net import bound_port

        base = f"http://127.0.0.1:{bound_port(site)}"
        statuses: list[int] = []
        sizes: list[tuple[int, int]] = []
        async with aiohttp.ClientSession() as s:

            async def hit(age: int) -> None:
                async with s.get(f"{base}/face", params={"age": str(age)}) as r:
                    statuses.append(r.status)
                    if r.status == 200:
                        with Image.open(io.BytesIO(await r.read())) as im:
                            sizes.append(im.size)

            async with anyio.create_task_group() as tg:
                for age in range(40):
                    tg.start_soon(hit, age)
            async with s.get(f"{base}/face", params={"age": "300"}) as r:
                bad = (r.status, await r.json())
        client = app[mod.CLIENT]
        limiter = client.limiter("facestudio")
        await runner.cleanup()
        assert client.closed  # closed at shutdown
    assert statuses == [200] * 40 and sizes == [(256, 256)] * 40
    assert bad[0] == 400 and "age" in bad[1]["error"]
    assert limiter.granted == 40  # one limiter shared by every handler
    assert emu.stats["throttled"] == 0
