"""Ace Data Cloud over loopback: every endpoint, errors, and callbacks."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from aioface import (
    AuthenticationError,
    BadRequestError,
    CallbackReceiver,
    ConfigurationError,
    InvalidRequestError,
    PollPolicy,
    ServerError,
    TaskFailedError,
    TaskTimeoutError,
)
from aioface.emulator import Emulator, EmulatorConfig, Faults
from tests.support.files import files_in

pytestmark = pytest.mark.anyio
SRC = "https://cdn.acedata.cloud/n1lmd8.png"
DST = "https://cdn.acedata.cloud/3np95r.png"


async def test_change_age_and_image_family(emu: Emulator, tmp_path: Path) -> None:
    async with emu.client() as c:
        aged = await c.acedata.change_age("https://cdn.acedata.cloud/f5687u.png", [60, 20], tmp_path / "aged")
        gender = await c.acedata.change_gender(SRC, [1], tmp_path / "gender")
        pretty = await c.acedata.beautify(SRC, tmp_path / "pretty")
        toon = await c.acedata.cartoon(SRC, tmp_path / "toon")
        analysis = await c.acedata.analyze(SRC)
        live = await c.acedata.detect_live(SRC)
    assert aged.path is not None
    assert aged.path.name == "aged.png" and aged.format == "png" and aged.width == 256
    assert aged.source_url is not None and aged.source_url.startswith(emu.url)
    assert gender.path is not None and pretty.path is not None and toon.path is not None
    assert {gender.path.name, pretty.path.name, toon.path.name} == {"gender.png", "pretty.png", "toon.png"}
    # The spec's shapes: 90 key points per face; a score and no is_live (issue 20 changed both).
    assert len(analysis.faces) == 1 and len(analysis.faces[0].points) == 90
    assert live.score is not None and live.is_live is None and "is_live" not in live
    assert files_in(tmp_path) == ["aged.png", "gender.png", "pretty.png", "toon.png"]


async def test_sync_swap_checks_declared_size(emu: Emulator, tmp_path: Path) -> None:
    async with emu.client() as c:
        r = await c.acedata.swap(tmp_path / "s", source=SRC, target=DST, timeout=30)
    assert r.path is not None
    assert r.task_id and r.bytes == r.path.stat().st_size and (r.width, r.height) == (384, 384)


async def test_fetch_failed_keeps_code_message_trace_and_is_not_retried(emu: Emulator, tmp_path: Path) -> None:
    async with emu.client() as c:
        with pytest.raises(ServerError) as ei:
            await c.acedata.change_age("https://example.com/fetch-fail.png", [50], tmp_path / "x")
    e = ei.value
    assert (e.status, e.code, e.message, e.provider) == (500, "api_error", "fetch failed", "acedata")
    assert e.request_id and len(e.request_id) == 36
    assert emu.stats["acedata_requests"] == 1  # a POST that may have started paid work is not repeated


async def test_auth_and_local_checks(tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(strict=True, keys={"good": "basic"})) as emu:
        async with emu.client(acedata_token="bad-token-777") as c:
            with pytest.raises(AuthenticationError) as ei:
                await c.acedata.cartoon(SRC, tmp_path / "x")
            assert ei.value.code == "invalid_token" and "bad-token-777" not in str(ei.value)
            with pytest.raises(InvalidRequestError):
                await c.acedata.change_age("not a url", [30], tmp_path / "x")
            with pytest.raises(InvalidRequestError):
                await c.acedata.change_age(SRC, ["100"], tmp_path / "x")  # type: ignore[list-item]
        async with emu.client(acedata_token="") as c:
            with pytest.raises(ConfigurationError, match="AIOFACE_ACEDATA_TOKEN"):
                await c.acedata.cartoon(SRC, tmp_path / "x")
        assert emu.stats["acedata_requests"] == 1
        # The provider's own 400 envelope, reached directly (the client would refuse it locally).
        async with aiohttp.ClientSession() as s:
            r = await s.post(
                f"{emu.url}/face/change-age", json={"image_url": SRC}, headers={"authorization": "Bearer good"}
            )
            body = await r.json()
        assert r.status == 400 and body["success"] is False and body["error"]["code"] == "token_mismatched"
        from aioface.providers.acedata._adapter import parse_error

        assert isinstance(parse_error(400, {}, _dumps(body)), BadRequestError)


def _dumps(obj: object) -> bytes:
    from aioface import _json

    return _json.dumps(obj)


async def test_callback_swap_many_without_holding_connections(tmp_path: Path) -> None:
    cfg = EmulatorConfig(task_duration=0.3, task_jitter=0.2, seed=3)
    async with Emulator(cfg) as emu, CallbackReceiver() as rx, emu.client(limits={"acedata": "200/s"}) as c:
        outcomes = await c.map(
            lambda i: c.acedata.swap(
                tmp_path / f"cb{i}", source=SRC, target=DST, callback=rx, poll=PollPolicy(deadline=10)
            ),
            range(40),
            concurrency=40,
        )
    assert [o.error for o in outcomes if not o.ok] == []
    assert len({o.unwrap().task_id for o in outcomes}) == 40
    assert rx.stats == {"accepted": 40, "duplicate": 0, "rejected": 0}
    assert len(files_in(tmp_path)) == 40


async def test_callback_failures_duplicates_and_timeouts(tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(task_duration=0.05, faults=Faults(callback_twice=1.0))) as emu:
        async with CallbackReceiver() as rx, emu.client() as c:
            await c.acedata.swap(tmp_path / "twice", source=SRC, target=DST, callback=rx, poll=PollPolicy(deadline=5))
            for _ in range(50):
                if rx.stats["duplicate"]:
                    break
                import anyio

                await anyio.sleep(0.05)
            assert rx.stats["accepted"] == 1 and rx.stats["duplicate"] == 1
    async with Emulator(EmulatorConfig(task_duration=0.05, faults=Faults(task_fail=1.0))) as emu:
        async with CallbackReceiver() as rx, emu.client() as c:
            with pytest.raises(TaskFailedError) as ei:
                await c.acedata.swap(
                    tmp_path / "fail", source=SRC, target=DST, callback=rx, poll=PollPolicy(deadline=5)
                )
            assert ei.value.task_id
    async with Emulator(EmulatorConfig(task_duration=0.05, faults=Faults(callback_lost=1.0))) as emu:
        async with CallbackReceiver() as rx, emu.client() as c:
            with pytest.raises(TaskTimeoutError):
                await c.acedata.swap(
                    tmp_path / "lost", source=SRC, target=DST, callback=rx, poll=PollPolicy(deadline=0.5)
                )
    assert files_in(tmp_path) == ["twice.png"]


async def test_receiver_rejects_unknown_secret_task_big_and_non_json() -> None:
    async with CallbackReceiver(max_body=1024) as rx, aiohttp.ClientSession() as s:
        nonce, url = rx.register()
        rx.bind(nonce, "task-1")
        base = f"{rx.public_url}{rx.path}"
        r1 = await s.post(f"{base}/wrong-secret", json={"task_id": "task-1"})
        r2 = await s.post(url, json={"task_id": "task-2"})
        r3 = await s.post(url, data=b"{not json")
        r4 = await s.post(url, json={"task_id": "task-1", "pad": "x" * 5000})
        r5 = await s.post(url, json={"no": "task"})
        ok = await s.post(url, json={"task_id": "task-1", "image_url": "https://x/y.png"})
        dup = await s.post(url, json={"task_id": "task-1", "image_url": "https://x/y.png"})
        payload = await rx.wait(nonce, 1)
    assert [r1.status, r2.status, r3.status, r4.status, r5.status] == [403, 404, 400, 413, 400]
    assert ok.status == 200 and dup.status == 200 and (await dup.json())["duplicate"] is True
    assert payload is not None and payload["task_id"] == "task-1"
    assert rx.stats == {"accepted": 1, "duplicate": 1, "rejected": 5}


async def test_a_views_settings_apply_to_an_edit_without_download(emu: Emulator) -> None:
    """The one-coroutine edit path reads the view's settings: its ``on_status`` hears the edit, the
    client's own calls (no callback) tell nobody; a ``str`` subclass URL is sent as the URL."""

    class Url(str):
        pass

    heard: list[tuple[str, str]] = []
    async with emu.client() as c:
        view = c.with_options(on_status=lambda e: heard.append((e.provider, e.status)))
        r = await view.acedata.change_age(Url("https://cdn.acedata.cloud/f5687u.png"), [60], download=False)
        plain = await c.acedata.cartoon(SRC, download=False)
    assert heard == [("acedata", "processing"), ("acedata", "done")]
    assert r.path is None and r.source_url and r.source_url.startswith(emu.url)
    assert plain.source_url and emu.stats["acedata_requests"] == 2
