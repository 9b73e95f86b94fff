"""Field traps, rate limits and waiting (issue 10): a tier learned is remembered, an assumed tier never
blocks the request that would confirm it, and long waits are announced.

API chosen here (public, for the lead to wire):

* ``Client(on_limit_wait=callback, limit_wait_notice=3.0)``: before a request waits on a rate limit
  longer than ``limit_wait_notice`` seconds, ``callback(event)`` is called (like fal-client's
  ``on_queue_update``) with an event carrying ``provider`` ("facestudio"), ``limit`` (the provider's
  own rate, "1/minute"), ``tier`` ("Anon"; None for providers without tiers) and ``seconds`` (real
  seconds until the next slot); ``str(event)`` reads ``facestudio 1/minute (Anon): next slot in 59s``.
  The same text is logged at INFO on the ``aioface`` logger.
* The CLI prints that text as a plain line when not on a terminal; on a terminal the progress bar
  shows it and counts requests waiting for a slot apart from those in flight.
* A tier learned from ``X-User-Class`` is saved with the persisted budget (per provider and hashed
  key) and read back by the next Client sharing the ``state_dir``; a tier that is only assumed (or
  read back from disk, not yet confirmed by an answer in this process) never holds back the one
  request that would confirm it.
"""

from __future__ import annotations

import logging
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from aioface import LimiterTimeoutError
from aioface.emulator import Emulator, EmulatorConfig
from tests.support.cli import EmulatorProcess, LineReader

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
NOTICE = "facestudio 1/minute (Anon)"


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    emu = EmulatorProcess("--time-scale", "600")  # the emulator never throttles: only the client waits
    yield emu
    emu.stop()


# --------------------------------------------------------------------------- tier memory
@pytest.mark.anyio
async def test_enterprise_tier_is_remembered_by_the_next_client(tmp_path: Path) -> None:
    """A key learned to be Enterprise is not treated as Basic (120/day) by the next process."""
    state = tmp_path / "state"
    async with Emulator(EmulatorConfig(time_scale=600.0, keys={"ent-key": "enterprise"})) as emu:
        async with emu.client(facestudio_key="ent-key", state_dir=state) as c:
            outcomes = await c.map(
                lambda i: c.facestudio.generate(tmp_path / "day1" / f"f{i}", resolution=128), range(121), concurrency=32
            )
        assert [o.error for o in outcomes if not o.ok] == []
        # A "day" lasts 144 s here: today's main assumes Basic again, sees 121 sends and waits for tomorrow.
        async with emu.client(facestudio_key="ent-key", state_dir=state, acquire_timeout=5) as c:
            # Remembered, not merely probed: Enterprise's limits before any answer, and the 120 sends
            # of today leave it room for a second request without waiting for an answer to confirm.
            assert c.facestudio.tier == "enterprise"  # known before any limiter or request
            assert [r.limit for r in c.limiter("facestudio").rates] == [120, 6000]
            r = await c.facestudio.generate(tmp_path / "day1-again", resolution=128)
        assert r.user_class == "enterprise"
        assert emu.stats["throttled"] == 0


@pytest.mark.anyio
async def test_a_remembered_tier_never_sends_over_its_spent_window_and_a_given_tier_goes_at_once(
    tmp_path: Path,
) -> None:
    """A Basic key spends its 120/day, then the user upgrades to Enterprise. Issue 21: no request is
    sent over the windows in force, whatever the tier's source, so the next process does not send
    a probe over the spent day (before issue 21 it did); given the new tier, it goes at once."""
    state = tmp_path / "state"
    cfg = EmulatorConfig(time_scale=2000.0, keys={"upgraded": "basic"})  # a minute is 30 ms, a day 43 s
    async with Emulator(cfg) as emu:
        async with emu.client(facestudio_key="upgraded", state_dir=state, limit_margin=0.0) as c:
            outcomes = await c.map(
                lambda i: c.facestudio.generate(tmp_path / "basic" / f"f{i}", resolution=128), range(120), concurrency=8
            )
        assert [o.error for o in outcomes if not o.ok] == []
        assert emu.stats["throttled"] == 0
        sent = emu.stats["facestudio_requests"]
        cfg.keys["upgraded"] = "enterprise"  # the plan changed at the provider
        async with emu.client(facestudio_key="upgraded", state_dir=state, acquire_timeout=0.5) as c:
            with pytest.raises(LimiterTimeoutError):
                await c.facestudio.generate(tmp_path / "probe", resolution=128)
        assert emu.stats["facestudio_requests"] == sent  # nothing sent over the remembered day
        async with emu.client(
            facestudio_key="upgraded", facestudio_tier="enterprise", state_dir=state, acquire_timeout=3
        ) as c:
            first = await c.facestudio.generate(tmp_path / "given", resolution=128)
        assert first.user_class == "enterprise"
        assert emu.stats["throttled"] == 0


# --------------------------------------------------------------------------- announcements
@pytest.mark.anyio
async def test_a_long_wait_is_logged_at_info_before_it_starts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Anonymous: 1/minute. The second face waits ~10 s here (time scale 6); the log says so at once."""
    caplog.set_level(logging.INFO, logger="aioface")
    announced = anyio.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if NOTICE in record.getMessage():
                announced.set()

    watch = Watch()
    logging.getLogger("aioface").addHandler(watch)
    try:
        async with Emulator(EmulatorConfig(time_scale=6.0)) as emu, emu.client(facestudio_key="") as c:
            await c.facestudio.generate(tmp_path / "first", resolution=128)
            async with anyio.create_task_group() as tg:
                tg.start_soon(c.facestudio.generate, tmp_path / "second")
                with anyio.move_on_after(3):
                    await announced.wait()
                tg.cancel_scope.cancel()
    finally:
        logging.getLogger("aioface").removeHandler(watch)
    notices = [r for r in caplog.records if NOTICE in r.getMessage()]
    assert notices, "no INFO line announced the wait"
    assert notices[0].levelno == logging.INFO
    assert re.search(r"\d+(\.\d+)?\s*s\b", notices[0].getMessage())  # how long until the next slot


@pytest.mark.anyio
async def test_a_long_wait_reaches_the_callers_hook(tmp_path: Path) -> None:
    events: list[Any] = []
    announced = anyio.Event()

    def hook(event: Any) -> None:
        events.append(event)
        announced.set()

    async with Emulator(EmulatorConfig(time_scale=6.0)) as emu:
        async with emu.client(facestudio_key="", on_limit_wait=hook) as c:
            await c.facestudio.generate(tmp_path / "first", resolution=128)
            async with anyio.create_task_group() as tg:
                tg.start_soon(c.facestudio.generate, tmp_path / "second")
                with anyio.move_on_after(3):
                    await announced.wait()
                tg.cancel_scope.cancel()
    assert len(events) == 1
    ev = events[0]
    assert ev.provider == "facestudio"
    assert ev.limit == "1/minute" and ev.tier == "Anon"
    assert 5.0 < ev.seconds <= 10.5  # real seconds: a minute lasts 10 s at time scale 6
    assert NOTICE in str(ev)


@pytest.mark.anyio
async def test_the_notice_threshold_is_configurable(tmp_path: Path) -> None:
    """Waits under the threshold stay quiet; over it, announced. Time scale 60: a minute lasts 1 s."""
    events: list[Any] = []
    async with Emulator(EmulatorConfig(time_scale=60.0)) as emu:
        async with emu.client(facestudio_key="", on_limit_wait=events.append, limit_wait_notice=5.0) as c:
            await c.facestudio.generate(tmp_path / "a", resolution=128)
            await c.facestudio.generate(tmp_path / "b", resolution=128)  # waits ~1 s: under 5 s, quiet
        assert events == []
        async with emu.client(facestudio_key="", on_limit_wait=events.append, limit_wait_notice=0.2) as c:
            await c.facestudio.generate(tmp_path / "c", resolution=128)
            await c.facestudio.generate(tmp_path / "d", resolution=128)  # waits ~1 s: over 0.2 s, announced
    assert len(events) >= 1 and NOTICE in str(events[0])


def _anonymous_cli_env(emulator: EmulatorProcess, tmp_path: Path) -> dict[str, str]:
    env = emulator.env(tmp_path)
    env.pop("AIOFACE_FACESTUDIO_KEY")
    env.pop("AIOFACE_FACESTUDIO_LIMITS", None)
    return env


def test_cli_without_a_terminal_prints_a_plain_line_for_a_long_wait(emulator: EmulatorProcess, tmp_path: Path) -> None:
    """`aioface generate -n 2` anonymously: the second face waits a minute; a plain line says so at once."""
    run = LineReader(
        ["generate", "-n", "2", "--resolution", "128", "--out", str(tmp_path / "o")],
        _anonymous_cli_env(emulator, tmp_path),
    )
    try:
        line = run.wait_for(NOTICE, timeout=15)
    finally:
        run.stop()
    assert line is not None, "nothing announced the wait:\n" + "\n".join(run.lines)
    assert re.search(r"\d+(\.\d+)?\s*s\b", line), line  # time to the next slot
    assert "\x1b[" not in line  # plain text, no terminal codes


def test_cli_progress_bar_shows_the_wait_and_counts_waiting_apart(emulator: EmulatorProcess, tmp_path: Path) -> None:
    """On a terminal the bar names the limit and counts the request waiting for a slot apart from in flight."""
    env = {**_anonymous_cli_env(emulator, tmp_path), "COLUMNS": "220", "TERM": "xterm"}
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aioface", "generate", "-n", "2", "--resolution", "128", "--out", str(tmp_path / "o")],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    seen = ""
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (NOTICE in seen and "waiting" in seen):
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    seen += ANSI.sub("", os.read(master, 65536).decode("utf-8", "replace"))
                except OSError:
                    break
    finally:
        proc.terminate()
        proc.wait(10)
        os.close(master)
    assert NOTICE in seen, seen[-2000:]
    assert "waiting" in seen, seen[-2000:]


@pytest.mark.anyio
async def test_a_failing_wait_hook_never_fails_the_request_and_a_views_own_limit_is_announced(tmp_path: Path) -> None:
    """The hook is the caller's display: if it raises, the call still goes through (logged). A wait
    held by a view's own stricter limit (``with_options(limits=...)``) is announced like any other."""
    from aioface import Client, MockResponse, MockTransport
    from tests.support.files import image_bytes

    seen: list[Any] = []

    def hook(event: Any) -> None:
        seen.append(event)
        raise RuntimeError("display broke")

    transport = MockTransport(lambda r: MockResponse(200, content=image_bytes()))
    async with Client(facestudio_key="k", transport=transport, persist_limits=False, env={},
                      on_limit_wait=hook, limit_wait_notice=0.2) as c:  # fmt: skip
        view = c.with_options(limits={"facestudio": "1/0.6s"})
        await view.facestudio.generate(tmp_path / "a")
        with anyio.fail_after(5):
            r = await view.facestudio.generate(tmp_path / "b")  # waits ~0.6 s on the view's own limit
    assert r.path is not None and r.path.exists()
    assert len(seen) == 1 and seen[0].provider == "facestudio" and seen[0].seconds > 0.2
