"""Face Studio end to end over loopback against the emulator."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from PIL import Image

from aioface import (
    AuthenticationError,
    Client,
    InvalidRequestError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
)
from aioface.emulator import Emulator, EmulatorConfig
from tests.support.files import files_in

pytestmark = pytest.mark.anyio


async def test_generate_jpeg_and_webp(aioface_client: Client, tmp_path: Path) -> None:
    client = aioface_client  # the pytest plugin's fixture (aioface.testing)
    jpg = await client.facestudio.generate(tmp_path / "a", age=30, resolution=256)
    webp = await client.facestudio.generate(tmp_path / "b", image_format="webp", resolution=128)
    assert jpg.path == tmp_path / "a.jpg" and jpg.format == "jpeg" and (jpg.width, jpg.height) == (256, 256)
    assert webp.path == tmp_path / "b.webp" and webp.format == "webp"
    with Image.open(webp.path) as im:
        assert im.format == "WEBP" and im.size == (128, 128)
    assert jpg.bytes == jpg.path.stat().st_size
    assert jpg.user_class == "basic"  # a valid key the emulator does not list is Basic
    assert files_in(tmp_path) == ["a.jpg", "b.webp"]


@pytest.mark.aioface_emulator(keys={"pro-key": "professional"})
async def test_anonymous_and_tier_from_header_adjusts_limits(emu: Emulator, tmp_path: Path) -> None:
    async with emu.client(facestudio_key="") as anon:
        r = await anon.facestudio.generate(tmp_path / "anon", resolution=128)
        assert r.user_class == "anon"
        assert [x.limit for x in anon.limiter("facestudio").rates] == [1, 60]
    async with emu.client(facestudio_key="pro-key") as pro:
        assert [x.limit for x in pro.limiter("facestudio").rates] == [5, 120]  # assumed Basic until told
        r = await pro.facestudio.generate(tmp_path / "pro", resolution=128, seed=42)
        assert r.user_class == "professional" and pro.facestudio.tier == "professional"
        assert [x.limit for x in pro.limiter("facestudio").rates] == [30, 1000]
    async with emu.client(facestudio_key="pro-key", limits={"facestudio": "2/s"}) as pinned:
        await pinned.facestudio.generate(tmp_path / "pin", resolution=128)
        assert [x.limit for x in pinned.limiter("facestudio").rates] == [2]  # explicit beats the header


async def test_bad_parameters_send_nothing(emu: Emulator, tmp_path: Path) -> None:
    async with emu.client() as client:
        for kwargs in ({"age": 200}, {"gender": "x"}, {"resolution": 64}, {"view_profile": 90}):
            with pytest.raises(InvalidRequestError):
                await client.facestudio.generate(tmp_path / "x", **kwargs)
    assert emu.stats["facestudio_requests"] == 0
    assert files_in(tmp_path) == []


async def test_advanced_params_refused_locally_once_tier_is_known(emu: Emulator, tmp_path: Path) -> None:
    async with emu.client() as client:
        # Tier unknown yet: the provider decides, and says 403.
        with pytest.raises(PermissionDeniedError) as ei:
            await client.facestudio.generate(tmp_path / "x", seed=5)
        assert ei.value.status == 403 and "seed" in ei.value.message
        await client.facestudio.generate(tmp_path / "y", resolution=128)
        sent = emu.stats["facestudio_requests"]
        with pytest.raises(InvalidRequestError, match="Professional"):
            await client.facestudio.generate(tmp_path / "z", mood="joyous")
        assert emu.stats["facestudio_requests"] == sent


async def test_invalid_token_is_typed_and_keeps_the_message(tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(strict=True, keys={"good": "basic"})) as emu:
        async with emu.client(facestudio_key="wrong-key-123") as client:
            with pytest.raises(AuthenticationError) as ei:
                await client.facestudio.generate(tmp_path / "x")
    assert ei.value.message == "Invalid token." and ei.value.status == 401
    assert "wrong-key-123" not in str(ei.value) and "wrong-key-123" not in repr(ei.value)
    assert files_in(tmp_path) == []


async def test_429_pauses_the_limiter_and_is_retried(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # The client is told a looser limit than the server enforces: the server's 429 says when to retry.
    async with Emulator(EmulatorConfig(time_scale=60.0, keys={"secret-key-xyz": "basic"})) as emu:
        async with emu.client(facestudio_key="secret-key-xyz", limits={"facestudio": "100/s"}) as client:
            with caplog.at_level(logging.INFO, logger="aioface"):
                for i in range(6):
                    await client.facestudio.generate(tmp_path / f"f{i}", resolution=128)
            stats = client.stats("facestudio")
    assert emu.stats["throttled"] == 1  # 5/"minute": the 6th is refused once, then waits the hinted second
    assert stats["throttled"] == 1 and stats["retries"] == 1
    assert len(files_in(tmp_path)) == 6
    assert "throttled" in caplog.text and "secret-key-xyz" not in caplog.text


async def test_429_beyond_max_wait_is_raised(tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(time_scale=1.0, keys={"k": "anon"})) as emu:
        async with emu.client(facestudio_key="", limits={"facestudio": "100/s"}, retry=RetryPolicy(max_wait=5)) as c:
            await c.facestudio.generate(tmp_path / "one", resolution=128)
            with pytest.raises(RateLimitError) as ei:
                await c.facestudio.generate(tmp_path / "two", resolution=128)
    assert ei.value.retry_after is not None and ei.value.retry_after > 5


async def test_limits_hold_the_server_to_zero_429s(tmp_path: Path) -> None:
    """Professional tier, a "minute" lasting 0.5 s: 75 requests at concurrency 20, no 429."""
    cfg = EmulatorConfig(time_scale=120.0, keys={"k": "professional"}, latency=0.005, latency_jitter=0.01)
    async with Emulator(cfg) as emu, emu.client(facestudio_key="k", facestudio_tier="professional") as client:
        outcomes = await client.map(
            lambda i: client.facestudio.generate(tmp_path / f"f{i}", resolution=128), range(75), concurrency=20
        )
    assert [o.error for o in outcomes if not o.ok] == []
    assert emu.stats["throttled"] == 0
    assert emu.stats["facestudio_images"] == 75


async def test_environment_configuration(emu: Emulator, tmp_path: Path) -> None:
    env = {
        "AIOFACE_FACESTUDIO_BASE_URL": emu.url,
        "AIOFACE_FACESTUDIO_KEY": "env-key",
        "AIOFACE_FACESTUDIO_LIMITS": "7/minute,70/day",
    }
    async with Client(env=env, persist_limits=False, time_scale=600.0) as client:
        r = await client.facestudio.generate(tmp_path / "e", resolution=128)
        assert r.user_class == "basic"
        assert [x.limit for x in client.limiter("facestudio").rates] == [7, 70]
        assert "env-key" not in repr(client)
    async with Client(env=env, facestudio_base_url="http://127.0.0.1:9", persist_limits=False) as client:
        assert client.base_urls["facestudio"] == "http://127.0.0.1:9"  # arguments win
