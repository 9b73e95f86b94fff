"""AILabAPI over loopback: upload, polling, local checks with zero requests, error paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from aioface import (
    AuthenticationError,
    ImageRejectedError,
    InvalidRequestError,
    PollPolicy,
    QuotaExceededError,
    TaskFailedError,
    TaskTimeoutError,
)
from aioface.emulator import Emulator, EmulatorConfig, Faults
from tests.support.files import files_in, image_bytes

pytestmark = pytest.mark.anyio
# floor=0: the emulator's tasks take a tenth of a second; the provider's 5 s between polls is lowered here.
FAST = PollPolicy(initial=0.02, factor=1.5, max_interval=0.1, deadline=5, floor=0)


async def test_swap_from_path_bytes_and_url(emu: Emulator, tmp_path: Path) -> None:
    src = tmp_path / "in" / "me.png"
    src.parent.mkdir()
    src.write_bytes(image_bytes("PNG", (80, 80), "blue"))
    async with emu.client(poll=FAST) as c:
        r1 = await c.ailab.swap(tmp_path / "out" / "one", source=image_bytes(), target=src)
        r2 = await c.ailab.swap(tmp_path / "out" / "two", source=src, target=r1.source_url or "")
    assert r1.path is not None
    assert r1.path.name == "one.jpg" and r1.task_id and r1.width == 320
    assert r2.task_id != r1.task_id
    assert emu.stats["ailab_tasks"] == 2 and emu.stats["ailab_polls"] >= 2
    assert files_in(tmp_path / "out") == ["one.jpg", "two.jpg"]


@pytest.mark.parametrize(
    ("make", "rule"),
    [
        (lambda: image_bytes("GIF"), "format"),
        (lambda: image_bytes("WEBP"), "format"),
        (lambda: b"plain text, named .jpg", "format"),
        (lambda: image_bytes("PNG", (4096, 16)), "dimensions"),
        (lambda: b"\xff\xd8\xff" + bytes(5 * 1024 * 1024), "max_bytes"),
    ],
)
async def test_local_rejection_sends_nothing(emu: Emulator, tmp_path: Path, make: object, rule: str) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(make())  # type: ignore[operator]
    async with emu.client(poll=FAST) as c:
        with pytest.raises(ImageRejectedError) as ei:
            await c.ailab.swap(tmp_path / "x", source=image_bytes(), target=bad)
    assert ei.value.rule == rule and ei.value.param == "target"
    assert emu.stats["ailab_requests"] == 0 and emu.stats["file_requests"] == 0
    assert files_in(tmp_path) == ["bad.jpg"]


async def test_missing_file_and_bad_input_types(emu: Emulator, tmp_path: Path) -> None:
    async with emu.client(poll=FAST) as c:
        with pytest.raises(InvalidRequestError, match="cannot read"):
            await c.ailab.swap(tmp_path / "x", source=image_bytes(), target=tmp_path / "nope.jpg")
        with pytest.raises(InvalidRequestError):
            await c.ailab.swap(tmp_path / "x", source=image_bytes(), target=12345)  # type: ignore[arg-type]
    assert emu.stats["ailab_requests"] == 0


async def test_failed_and_stuck_tasks(tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(task_duration=0.05, faults=Faults(task_fail=1.0))) as emu:
        async with emu.client(poll=FAST) as c:
            with pytest.raises(TaskFailedError) as ei:
                await c.ailab.swap(tmp_path / "f", source=image_bytes(), target=image_bytes())
            assert ei.value.task_id
    async with Emulator(EmulatorConfig(faults=Faults(task_stuck=1.0))) as emu:
        async with emu.client(poll=PollPolicy(initial=0.05, max_interval=0.2, deadline=0.6, floor=0)) as c:
            with pytest.raises(TaskTimeoutError):
                await c.ailab.swap(tmp_path / "s", source=image_bytes(), target=image_bytes())
        polls = emu.stats["ailab_polls"]
    assert 3 <= polls <= 12  # backoff, not a busy loop
    assert files_in(tmp_path) == []


async def test_out_of_credit_is_not_retried_but_rate_limit_is(tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(ailab_credits=0)) as emu, emu.client(poll=FAST) as c:
        with pytest.raises(QuotaExceededError) as ei:
            await c.ailab.swap(tmp_path / "q", source=image_bytes(), target=image_bytes())
        assert ei.value.code == "ERROR_NOT_ENOUGH_CREDITS" and ei.value.request_id
        assert emu.stats["ailab_requests"] == 1
    faults = Faults(schedule={"ailab": ["429", "429", None]})
    async with Emulator(EmulatorConfig(task_duration=0.05, faults=faults)) as emu, emu.client(poll=FAST) as c:
        r = await c.ailab.swap(tmp_path / "r", source=image_bytes(), target=image_bytes())
        assert r.task_id and emu.stats["fault_429"] == 2
        assert c.stats("ailab")["retries"] == 2
        assert c.limiter("ailab").effective_limits[0] < 5  # learned from the 429s


async def test_bad_key(tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(strict=True)) as emu, emu.client(ailab_key="nope", poll=FAST) as c:
        with pytest.raises(AuthenticationError) as ei:
            await c.ailab.swap(tmp_path / "k", source=image_bytes(), target=image_bytes())
    assert ei.value.code == "ERROR_API_KEY_INVALID" and ei.value.status == 401
