"""``client.ailab.wait_many``: many AILab tasks waited for by one scheduler, over the emulator."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import anyio
import pytest

from aioface import APIError, PollPolicy, TaskEvent, TaskFailedError, TaskTimeoutError
from aioface.emulator import Emulator, EmulatorConfig, Faults
from tests.support.files import image_bytes

pytestmark = pytest.mark.anyio
FAST = PollPolicy(initial=0.02, factor=1.5, max_interval=0.1, deadline=5)


async def _submit(c: object, n: int) -> list[str]:
    img = image_bytes()
    return [await c.ailab.submit(source=img, target=img) for _ in range(n)]  # type: ignore[attr-defined]


async def test_every_id_yields_exactly_once_with_failures_as_outcomes() -> None:
    events: list[TaskEvent] = []
    cfg = EmulatorConfig(time_scale=600.0, task_duration=0.1, seed=5, faults=Faults(task_fail=0.3))
    async with Emulator(cfg) as emu, emu.client(poll=FAST, on_status=events.append) as c:
        ids = await _submit(c, 40)
        async with c.ailab.wait_many(ids, concurrency=4) as results:
            outcomes = [o async for o in results]
        assert sorted(o.item for o in outcomes) == sorted(ids)
        assert sorted(o.index for o in outcomes) == list(range(40))
        assert all(ids[o.index] == o.item for o in outcomes)
        failed = [o for o in outcomes if not o.ok]
        assert 0 < len(failed) < 40
        for o in failed:
            assert isinstance(o.error, TaskFailedError) and o.error.task_id == o.item
        for o in outcomes:
            if o.ok:
                assert o.unwrap().startswith(emu.url) and "/files/" in o.unwrap()
        # Learned like wait(): every end (failures too) is a duration, nobody is left running.
        learner = c.durations.get("ailab", "swap")
        assert learner.samples == 40 and learner.running == 0
        assert all(0 < d < 1.0 for d, ended in learner.observations() if ended)
        # on_status: each status announced once per task when a poll first sees it; failed for each failure.
        by = Counter((e.task_id, e.status) for e in events)
        assert all(n == 1 for n in by.values())
        assert {s for _, s in by} <= {"queued", "processing", "failed"}
        assert {t for t, s in by if s == "failed"} == {o.item for o in failed}
        assert emu.stats["ailab_polls"] >= 40


async def test_deadlines_are_timeouts_carrying_the_task_id_and_censored_for_the_learner() -> None:
    cfg = EmulatorConfig(time_scale=600.0, faults=Faults(task_stuck=1.0))
    pol = PollPolicy(initial=0.05, max_interval=0.1, deadline=0.5)
    async with Emulator(cfg) as emu, emu.client(poll=pol) as c:
        ids = await _submit(c, 6)
        async with c.ailab.wait_many(ids) as results:
            outcomes = [o async for o in results]
        assert sorted(o.item for o in outcomes) == sorted(ids)
        for o in outcomes:
            assert isinstance(o.error, TaskTimeoutError) and o.error.task_id == o.item
        polls = emu.stats["ailab_polls"]
    assert 6 * 2 <= polls <= 6 * 12  # backoff, not a busy loop
    learner = c.durations.get("ailab", "swap")
    assert learner.samples == 0 and learner.running == 0
    obs = learner.observations()
    assert len(obs) == 6 and not any(ended for _, ended in obs)


async def test_a_failing_poll_is_that_tasks_outcome_only(emu: Emulator) -> None:
    async with emu.client(poll=FAST) as c:
        ids = await _submit(c, 3)
        mixed = [ids[0], "no-such-task", ids[1], ids[2]]
        async with c.ailab.wait_many(mixed) as results:
            outcomes = {o.index: o for o in [o async for o in results]}
    assert sorted(outcomes) == [0, 1, 2, 3]
    assert isinstance(outcomes[1].error, APIError) and outcomes[1].item == "no-such-task"
    assert all(outcomes[i].ok for i in (0, 2, 3))


async def test_leaving_early_stops_polling_and_gives_up_the_rest() -> None:
    cfg = EmulatorConfig(time_scale=600.0, task_duration=30.0)
    async with Emulator(cfg) as emu, emu.client(poll=FAST) as c:
        ids = await _submit(c, 20)
        async with c.ailab.wait_many(["no-such-task", *ids]) as results:
            first = await results.__anext__()
        assert first.item == "no-such-task" and not first.ok
        learner = c.durations.get("ailab", "swap")
        assert learner.running == 0  # every task begun was given up
        await anyio.sleep(0.05)  # a poll cancelled on the wire may still reach the server
        polls = emu.stats["ailab_polls"]
        await anyio.sleep(0.3)  # several poll intervals: nothing polls any more
        assert emu.stats["ailab_polls"] == polls


async def test_pairs_with_submission_times_and_an_async_source(emu: Emulator) -> None:
    events: list[TaskEvent] = []
    async with emu.client(poll=FAST, on_status=events.append) as c:
        img = image_bytes()

        async def submitted() -> AsyncIterator[tuple[str, float]]:
            for _ in range(8):
                task_id = await c.ailab.submit(source=img, target=img)
                yield task_id, anyio.current_time()

        got: list[str] = []
        async with c.ailab.wait_many(submitted(), concurrency=1) as results:
            async for o in results:
                got.append(o.unwrap())
        assert len(got) == 8 and len(set(got)) == 8
        assert c.durations.get("ailab", "swap").samples == 8
        assert not any(e.status == "failed" for e in events)


async def test_the_same_learner_as_wait_and_a_warm_schedule(emu: Emulator) -> None:
    async with emu.client(poll=FAST) as c:
        ids = await _submit(c, 25)
        async with c.ailab.wait_many(ids) as results:
            assert sum([o.ok async for o in results]) == 25
        learner = c.durations.get("ailab", "swap")
        assert learner.samples == 25 and learner.longest(20) is not None  # past min_samples: learned polls
        task_id = await c.ailab.submit(source=image_bytes(), target=image_bytes())
        await c.ailab.wait(task_id)
        assert learner.samples == 26


async def test_iterating_outside_the_block_is_an_error(emu: Emulator) -> None:
    async with emu.client(poll=FAST) as c:
        waits = c.ailab.wait_many(["a"])
        with pytest.raises(RuntimeError, match="async with"):
            await waits.__anext__()
        with pytest.raises(ValueError):
            c.ailab.wait_many(["a"], concurrency=0)
