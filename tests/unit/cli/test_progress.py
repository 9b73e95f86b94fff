"""Task progress: on_status callbacks (client-wide, per view) for AILab, Ace Data and Face Studio."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from aioface import CallbackReceiver, PollPolicy, TaskEvent, TaskFailedError
from aioface.emulator import Emulator, Faults
from tests.support.files import image_bytes

pytestmark = pytest.mark.anyio
FAST_POLL = PollPolicy(initial=0.02, factor=1.0, jitter=0.0, deadline=10)


@pytest.mark.aioface_emulator(task_duration=0.6)
async def test_ailab_queued_processing_downloading_done(emu: Emulator, tmp_path: Path) -> None:
    events: list[TaskEvent] = []
    async with emu.client(on_status=events.append, poll=FAST_POLL) as client:
        r = await client.ailab.swap(tmp_path / "s", source=image_bytes(), target=image_bytes("PNG"))
    statuses = [e.status for e in events]
    assert statuses == ["queued", "processing", "downloading", "done"], statuses  # queued once, not again at 0
    assert [e.code for e in events][:2] == [None, 1]
    assert {e.task_id for e in events} == {r.task_id} and {e.provider for e in events} == {"ailab"}
    assert all(a.at <= b.at for a, b in itertools.pairwise(events))


@pytest.mark.aioface_emulator(task_duration=0.05, faults=Faults(task_fail=1.0))
async def test_ailab_failure_is_reported(emu: Emulator, tmp_path: Path) -> None:
    events: list[TaskEvent] = []

    async def on_status(e: TaskEvent) -> None:  # async callbacks are awaited
        events.append(e)

    async with emu.client(poll=FAST_POLL) as client:
        with pytest.raises(TaskFailedError):
            await client.with_options(on_status=on_status).ailab.swap(
                tmp_path / "s", source=image_bytes(), target=image_bytes("PNG")
            )
    assert events[-1].status == "failed" and events[-1].code == 3


async def test_acedata_callback_arrival_and_a_failing_callback_loses_nothing(emu: Emulator, tmp_path: Path) -> None:
    events: list[TaskEvent] = []

    def on_status(e: TaskEvent) -> None:
        events.append(e)
        if e.status == "callback":
            raise RuntimeError("a bug in the user's progress bar")

    async with CallbackReceiver() as rx, emu.client(on_status=on_status) as client:
        face = await client.facestudio.generate(tmp_path / "f", age=30)
        src = f"{emu.url}/files/x.jpg"
        r = await client.acedata.swap(tmp_path / "s", source=src, target=src, callback=rx)
    assert r.path is not None
    assert r.path.exists()
    assert [e.status for e in events] == [
        "processing",
        "downloading",
        "done",
        "queued",
        "callback",
        "downloading",
        "done",
    ]
    assert face.path is not None
    assert [e.provider for e in events][:3] == ["facestudio"] * 3 and face.path.exists()
    assert {e.task_id for e in events[3:]} == {r.task_id}


async def test_no_callback_no_cost(emu: Emulator, tmp_path: Path) -> None:
    async with emu.client() as client:  # nothing to call: nothing breaks
        await client.facestudio.generate(tmp_path / "f", age=30)


@pytest.mark.aioface_emulator(task_duration=0.4)
async def test_cli_progress_counts_queued_processing_downloading(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aioface.cli import _fanout, _progress

    shown: list[str] = []
    monkeypatch.setattr(_progress.Tracker, "show_stages", lambda self, text: shown.append(text))

    async def swap(i: int) -> object:
        return await client.ailab.swap(tmp_path / f"s{i}", source=image_bytes(), target=image_bytes("PNG"))

    async with emu.client(poll=FAST_POLL) as client:
        oks, fails = await _fanout.fan_out(client, swap, list(range(4)), 4, "swap", quiet=True)
    assert len(oks) == 4 and not fails
    assert "queued 4 processing 0 downloading 0" in shown
    assert any(t.startswith("queued 0 processing 4") for t in shown)
    assert any("downloading 1" in t for t in shown)
    assert shown[-1] == "queued 0 processing 0 downloading 0"


async def test_cli_stages_forget_calls_that_ended_by_an_error() -> None:
    import asyncio

    from aioface.cli import _progress

    shown: list[str] = []
    stages = _progress.Stages(shown.append)

    async def fails_while_queued() -> None:
        stages.on_status(TaskEvent("ailab", "queued", "t1"))
        raise RuntimeError("network down")

    task = asyncio.ensure_future(fails_while_queued())
    with pytest.raises(RuntimeError):
        await task
    assert stages.counts()["queued"] == 1  # no event said it ended...
    stages.on_status(TaskEvent("ailab", "processing", "t2"))  # ...the next event forgets it
    assert stages.counts() == {"queued": 0, "processing": 1, "downloading": 0}


async def test_processing_starts_when_the_request_leaves_not_while_it_waits_for_a_slot(tmp_path: Path) -> None:
    """A call still waiting for a rate-limit slot is not ``processing`` (``aioface bench`` would
    count the limiter's wait as the provider's time)."""
    from aioface import Client, LimiterTimeoutError, MockResponse, MockTransport

    events: list[TaskEvent] = []
    transport = MockTransport(lambda r: MockResponse(200, content=image_bytes()))
    async with Client(
        facestudio_key="k",
        transport=transport,
        limits={"facestudio": "1/hour"},
        persist_limits=False,
        env={},
        acquire_timeout=0.05,
        on_status=events.append,
    ) as client:
        await client.facestudio.generate(tmp_path / "a", age=30)
        assert [e.status for e in events] == ["processing", "downloading", "done"]
        events.clear()
        with pytest.raises(LimiterTimeoutError):  # never got its slot: never sent, never processing
            await client.facestudio.generate(tmp_path / "b", age=30)
        assert events == []


async def test_a_run_without_a_bar_makes_no_task_events(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``-q`` or a pipe: nothing shows the stage counts, so no status callback is installed and no
    event is built per call; a bar (or a ``show_stages`` of its own) still gets them."""
    from aioface.cli import _fanout, _progress
    from aioface.providers._base import ProviderContext

    told: list[str] = []
    real_tell = ProviderContext._tell

    async def tell(self: ProviderContext, cb: object, status: str, **kw: object) -> None:
        told.append(status)
        await real_tell(self, cb, status, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ProviderContext, "_tell", tell)

    async def generate(i: int) -> object:
        return await client.facestudio.generate(tmp_path / f"g{i}", age=30)

    async with emu.client() as client:
        oks, fails = await _fanout.fan_out(client, generate, list(range(3)), 3, "generate", quiet=True)
        assert len(oks) == 3 and not fails
        assert told == []
        assert _progress.Tracker(3, "x", quiet=True).stages.options() is None

        shown: list[str] = []
        monkeypatch.setattr(_progress.Tracker, "show_stages", lambda self, text: shown.append(text))
        oks, fails = await _fanout.fan_out(client, generate, list(range(3, 5)), 2, "generate", quiet=True)
    assert len(oks) == 2 and not fails
    assert sorted(told) == sorted(["processing", "downloading", "done"] * 2)
    assert shown[-1] == "queued 0 processing 0 downloading 0"
