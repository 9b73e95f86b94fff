"""Poll schedules: backoff, the learned schedule and its learner (pure, seeded), and AILab over
the emulator with learning on."""

from __future__ import annotations

import heapq
import math
import random
from pathlib import Path

import pytest

from aioface import DurationLearners, PollPolicy
from aioface.emulator import Emulator, EmulatorConfig
from aioface.emulator._durations import Durations
from aioface.tasks._learn import DurationLearner, _Window
from aioface.tasks._polling import backoff, intervals, next_delay
from tests.support.files import image_bytes

STILL = PollPolicy(jitter=0.0)  # no jitter: exact delays


def learner_of(durations: list[float], capacity: int = 256) -> DurationLearner:
    lr = DurationLearner(capacity)
    for d in durations:
        lr.record(d)
    return lr


def draws(spec: str, n: int, seed: int = 3) -> list[float]:
    rng = random.Random(seed)
    d = Durations.parse(spec)
    return [d.draw(rng) for _ in range(n)]


# -- backoff ------------------------------------------------------------------------------
def test_backoff_by_elapsed_time_is_the_geometric_schedule() -> None:
    waits = intervals(STILL)
    t = 0.0
    for _ in range(12):
        w = next(waits)
        assert backoff(STILL, t) == pytest.approx(w)
        assert next_delay(STILL, t) == pytest.approx(w)  # no learner: backoff
        t += w
    assert backoff(STILL, 1e6) == STILL.max_interval


def test_policy_validation_and_old_fields_still_work() -> None:
    p = PollPolicy(initial=0.02, factor=1.5, max_interval=0.1, deadline=5)
    assert p.learn and p.min_interval == 0.1
    for bad in ({"min_interval": 0}, {"spacing": -1}, {"min_samples": 0}, {"jitter": 1.0}, {"deadline": 0}):
        with pytest.raises(ValueError):
            PollPolicy(**bad)


# -- the learner ----------------------------------------------------------------------------
def test_midpoint_of_the_last_pending_and_the_done_poll() -> None:
    lr = DurationLearner()
    assert lr.record_polls(2.0, 3.0) == 2.5
    assert lr.record_polls(0.0, 1.2) == pytest.approx(0.6)  # done at the first poll: since submission
    assert lr.observations() == [(2.5, True), (pytest.approx(0.6), True)]
    assert lr.samples == 2


def test_nelson_aalen_hazard_at_and_between_end_times() -> None:
    lr = learner_of([1.0, 2.0, 3.0, 4.0])
    h1, h2, h3, h4 = 1 / 4, 1 / 4 + 1 / 3, 1 / 4 + 1 / 3 + 1 / 2, 1 / 4 + 1 / 3 + 1 / 2 + 1
    assert [lr.cumulative_hazard(x) for x in (1.0, 2.0, 3.0, 4.0)] == pytest.approx([h1, h2, h3, h4])
    assert lr.cumulative_hazard(2.5) == pytest.approx((h2 + h3) / 2)  # linear in between
    assert lr.cumulative_hazard(0.0) == 0.0 and lr.cumulative_hazard(9.0) == pytest.approx(h4)
    assert lr.survival(1.0) == pytest.approx(math.exp(-h1))


def test_censored_tasks_are_at_risk_but_never_end() -> None:
    ends = [1.0, 2.0, 3.0, 4.0]
    plain = learner_of(ends)
    censored = learner_of(ends)
    for _ in range(4):
        censored.record_censored(3.5)  # four waits gave up on tasks still running at 3.5 s
    censored.record_censored(0.0)  # never polled: nothing learned
    assert censored.samples == 4 and len(censored.observations()) == 8
    # More tasks at risk up to 3.5 s: a smaller hazard, tasks look longer than the ends alone say.
    assert censored.survival(3.0) > plain.survival(3.0)
    assert censored.longest() == plain.longest() == 4.0


def test_window_keeps_the_last_capacity_observations() -> None:
    lr = DurationLearner(capacity=4)
    lr.record_censored(9.0)
    for d in (1.0, 2.0, 3.0, 4.0, 5.0):
        lr.record(d)
    assert [d for d, _ in lr.observations()] == [2.0, 3.0, 4.0, 5.0]
    assert lr.samples == 4 and lr.longest() == 5.0
    lr.record(-1.0)
    lr.record(float("nan"))  # nonsense is ignored
    assert lr.samples == 4


def test_the_table_is_rebuilt_rarely_one_learner_serves_many_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    lr = DurationLearner()
    builds = 0
    real = _Window._build

    def counting(self: _Window) -> None:
        nonlocal builds
        builds += 1
        real(self)

    monkeypatch.setattr(_Window, "_build", counting)
    rng = random.Random(1)
    for _ in range(10_000):
        lr.record(rng.uniform(1, 7))
        next_delay(PollPolicy(), rng.uniform(0, 7), lr, rng)
    assert builds <= 2 * (64 + 10_000 // 16 + 1)  # two windows: every change while small, then every 16th


def test_a_batch_ending_shortest_first_does_not_flush_what_was_learned() -> None:
    lr = learner_of(draws("lognormal:5:1", 256))
    before = [lr.next_poll(t, 0.05, 20) for t in (4.5, 5.5, 6.5)]
    batch = draws("lognormal:5:1", 1000, seed=9)  # submitted in this order...
    tokens = [lr.begin() for _ in batch]
    assert lr.running == 1000
    by_end = sorted(zip(batch, tokens, strict=True))  # ...ending shortest first
    for d, tok in by_end[:300]:
        lr.finish(tok, d - 0.1, d + 0.1)
    assert lr.samples == 256 and max(d for d, _ in lr._recent.observations()) < 5.0  # recent: short ones only
    assert lr.running == 700 and lr.settled == 256
    assert [lr.next_poll(t, 0.05, 20) for t in (4.5, 5.5, 6.5)] == before  # decisions unchanged
    # The rest end (the longest one given up); the settled window then holds the batch's last 256.
    for d, tok in by_end[300:-1]:
        lr.finish(tok, d - 0.1, d + 0.1)
    assert lr.running == 1
    lr.abandon(by_end[-1][1], 7.0)
    assert lr.running == 0
    settled = lr.observations()
    assert len(settled) == 256 and lr.settled == 256 - (by_end[-1][1] >= 744)
    assert [round(d, 6) for d, ended in settled if ended] == [
        round(d, 6) for d, tok in zip(batch, tokens, strict=True) if tok >= 744 and tok != by_end[-1][1]
    ]


def test_a_cold_learner_uses_recent_ends_until_the_settled_window_catches_up() -> None:
    lr = DurationLearner()
    tokens = [lr.begin() for _ in range(40)]
    for tok in tokens[1:31]:  # the first task is still running: nothing settles
        lr.finish(tok, 1.0, 1.2 + tok / 100)
    assert lr.samples == 30 and lr.settled == 0
    assert lr.next_poll(0.5, 0.05, 20) is not None  # learned from the recent ends
    lr.finish(tokens[0], 3.0, 3.2)
    assert lr.settled == 31


# -- the learned schedule -------------------------------------------------------------------
def test_next_poll_solves_the_spacing_equation() -> None:
    lr = learner_of(draws("lognormal:5:1", 256))
    c2 = 0.24**2
    for t in (0.0, 2.0, 3.7, 4.5, 5.0, 6.1):
        x = lr.next_poll(t, c2, 20)
        assert x is not None and x > t
        gap = (lr.cumulative_hazard(x) - lr.cumulative_hazard(t)) * (x - t)
        assert gap == pytest.approx(c2, rel=1e-6) or x == lr.longest()


def test_learned_schedule_polls_densely_where_durations_cluster() -> None:
    lr = learner_of(draws("lognormal:5:0.5", 256))
    before, inside = next_delay(STILL, 1.0, lr), next_delay(STILL, 5.0, lr)
    assert before is not None and inside is not None
    assert before > 2.5  # nothing ends before ~3.5 s: the first poll goes near the cluster
    assert inside < 0.3 and inside < before / 8
    # Two clusters: dense in each, the longest wait in the valley between them.
    lr2 = learner_of(draws("bimodal:3:20:0.3", 256))
    d = {t: next_delay(STILL, t, lr2) for t in (3.0, 8.0, 19.5)}
    assert d[3.0] is not None and d[3.0] < 0.5
    assert d[8.0] == STILL.max_interval  # clamped: no end expected for seconds
    assert d[19.5] is not None and d[19.5] < 1.0


def test_backoff_before_min_samples_and_past_the_longest() -> None:
    durations = draws("uniform:1:7", 20)
    lr = learner_of(durations[:19])
    for t in (0.0, 1.0, 3.0):
        assert next_delay(STILL, t, lr) == pytest.approx(backoff(STILL, t))  # 19 < 20 samples
    lr.record(durations[19])
    assert next_delay(STILL, 3.0, lr) != pytest.approx(backoff(STILL, 3.0))  # learned from 20
    longest = lr.longest()
    assert longest is not None
    for past in (0.0, 0.5, 4.0):  # backoff restarted at the longest duration seen
        assert next_delay(STILL, longest + past, lr) == pytest.approx(backoff(STILL, past))
    # learn=False ignores what was learned
    assert next_delay(PollPolicy(jitter=0.0, learn=False), 3.0, lr) == pytest.approx(backoff(STILL, 3.0))


def test_learned_waits_are_clamped_and_jittered() -> None:
    lr = learner_of(draws("bimodal:3:20:0.3", 128) + draws("lognormal:10:0.1", 128))  # one very tight cluster
    pol = PollPolicy()
    rng = random.Random(5)
    ds = []
    for i in range(2000):
        t = i * 0.01
        if lr.next_poll(t, pol.spacing**2, pol.min_samples) is None:
            continue
        d = next_delay(pol, t, lr, rng)
        assert d is not None and pol.min_interval <= d <= pol.max_interval
        ds.append(d)
    assert min(ds) == pol.min_interval and max(ds) == pol.max_interval  # both bounds are reached
    # Jitter: tasks at the same age do not all poll at the same instant.
    same = {next_delay(pol, 2.9, lr, rng) for _ in range(50)}
    base = next_delay(STILL, 2.9, lr)
    assert base is not None and len(same) > 40
    assert all(d is not None and 0.8 * base - 1e-9 <= d <= 1.2 * base + 1e-9 for d in same)


def test_waits_never_reach_past_the_deadline() -> None:
    lr = learner_of(draws("pareto:2:1.5", 256))
    pol = PollPolicy(deadline=10.0)
    rng = random.Random(2)
    for t in (0.0, 5.0, 9.0, 9.95, 9.999):
        d = next_delay(pol, t, lr, rng)
        assert d is not None and t + d <= pol.deadline + 1e-12
    assert next_delay(pol, 9.99, lr, rng) == pytest.approx(0.01)
    assert next_delay(pol, 10.0, lr, rng) is None and next_delay(pol, 11.0, None, rng) is None


def test_scaled_policy_is_the_same_schedule_on_a_faster_clock() -> None:
    ds = draws("lognormal:5:1", 256)
    slow, fast = learner_of(ds), learner_of([d / 10 for d in ds])
    pol = PollPolicy(jitter=0.0, min_interval=0.01)
    for t in (0.0, 3.0, 4.8, 6.0, 30.0):
        a, b = next_delay(pol, t, slow), next_delay(pol.scaled(10), t / 10, fast)
        assert a is not None and b is not None and b == pytest.approx(a / 10)


def arrivals(spec: str, n: int, in_flight: float) -> tuple[list[float], list[float], random.Random]:
    """``n`` tasks of durations ``spec`` arriving as a Poisson stream with about ``in_flight``
    running at once (seeded): (durations, arrival times, the generator for what follows)."""
    rng = random.Random(11)
    dist = Durations.parse(spec)
    dur = [dist.draw(rng) for _ in range(n)]
    arrive, t = [], 0.0
    for _ in range(n):
        t += rng.expovariate(in_flight / dist.mean())
        arrive.append(t)
    return dur, arrive, rng


def _simulate(spec: str, policy: PollPolicy, n: int = 3000, in_flight: float = 100) -> tuple[float, float]:
    """Poisson arrivals, simulated time: (polls per task, mean notice delay)."""
    dur, arrive, rng = arrivals(spec, n, in_flight)
    lr = DurationLearner()
    last = [0.0] * n
    polls, delay = 0, 0.0
    heap = [(a, i, False) for i, a in enumerate(arrive)]  # (time, task, polled): arrivals first
    heapq.heapify(heap)
    while heap:
        now, i, polled = heapq.heappop(heap)
        age = now - arrive[i]
        if polled:
            polls += 1
            if age >= dur[i]:
                delay += age - dur[i]
                lr.record_polls(last[i], age)
                continue
            last[i] = age
        d = next_delay(policy, age, lr, rng)
        assert d is not None
        heapq.heappush(heap, (now + d, i, True))
    return polls / n, delay / n


@pytest.mark.parametrize("spec", ["lognormal:5:1", "bimodal:3:20:0.3", "uniform:1:7", "pareto:2:1.5"])
def test_simulated_learned_schedule_beats_fixed_half_second_on_both_axes(spec: str) -> None:
    learned = _simulate(spec, PollPolicy())
    fixed = _simulate(spec, PollPolicy(initial=0.5, factor=1.0, max_interval=0.5, jitter=0.0, learn=False))
    assert learned[0] < fixed[0] and learned[1] < fixed[1], (learned, fixed)


# -- persistence ----------------------------------------------------------------------------
def test_learners_round_trip_through_json(tmp_path: Path) -> None:
    book = DurationLearners()
    lr = book.get("ailab", "swap")
    for d in (1.25, 2.5, 3.0):
        lr.record(d)
    lr.record_censored(7.5)
    assert book.get("ailab", "swap") is lr and book.keys() == [("ailab", "swap")]
    path = tmp_path / "state" / "poll-durations.json"
    book.save(path)
    back = DurationLearners.load(path)
    assert back.get("ailab", "swap").observations() == lr.observations()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    # Unreadable, foreign or missing: a cold start, never an error.
    for text in ("{", '{"version": 99}', '{"version": 1, "learners": {"x": [["a", 1]], "ailab/swap": 3}}'):
        assert DurationLearners.from_json(text).keys() == []
    assert DurationLearners.load(tmp_path / "nope.json").keys() == []


def test_duration_specs() -> None:
    assert str(Durations.parse("lognormal:5:1/10")) == "lognormal:5:1/10"
    assert Durations.parse("pareto:2:1.5").params == (2.0, 1.5, 240.0)
    assert all(0.1 <= d <= 0.7 for d in draws("uniform:1:7/10", 200))
    for bad in ("gamma:1:2", "uniform:1", "lognormal:a:b", "uniform:1:7/0"):
        with pytest.raises(ValueError):
            Durations.parse(bad)
    with pytest.raises(ValueError):
        EmulatorConfig(task_distribution="nope:1")


# -- over the emulator --------------------------------------------------------------------
@pytest.mark.anyio
async def test_ailab_swaps_learn_durations_over_the_emulator(tmp_path: Path) -> None:
    cfg = EmulatorConfig(time_scale=600.0, task_distribution="lognormal:5:1/50", seed=4)
    img = image_bytes()
    pol = PollPolicy().scaled(50)
    async with Emulator(cfg) as emu, emu.client(poll=pol) as c:
        results = await c.map(
            lambda i: c.ailab.swap(tmp_path / f"out{i}", source=img, target=img), range(40), concurrency=40
        )
        assert all(o.ok for o in results)
        learner = c.durations.get("ailab", "swap")
        assert learner.samples == 40
        # Estimates are midpoints of real polls around 0.1 s tasks.
        assert all(0.02 < d < 0.3 for d, ended in learner.observations() if ended)
        polls_cold = emu.stats["ailab_polls"]
        # Now warm: the next wave is polled on the learned schedule.
        results = await c.map(
            lambda i: c.ailab.swap(tmp_path / f"warm{i}", source=img, target=img), range(40), concurrency=40
        )
        assert all(o.ok for o in results) and learner.samples == 80
        assert emu.stats["ailab_tasks"] == 80 and emu.stats["ailab_polls"] - polls_cold >= 40
    # A new client can start warm from what this one saved.
    c.durations.save(tmp_path / "durations.json")
    warm = DurationLearners.load(tmp_path / "durations.json")
    assert warm.get("ailab", "swap").samples == 80


@pytest.mark.anyio
async def test_a_timed_out_wait_is_recorded_as_censored() -> None:
    cfg = EmulatorConfig(time_scale=600.0, task_duration=5.0)
    async with Emulator(cfg) as emu, emu.client(poll=PollPolicy(initial=0.05, max_interval=0.1, deadline=0.4)) as c:
        from aioface import TaskTimeoutError

        task_id = await c.ailab.submit(source=image_bytes(), target=image_bytes())
        with pytest.raises(TaskTimeoutError):
            await c.ailab.wait(task_id)
    (seconds, ended), *_ = c.durations.get("ailab", "swap").observations()
    assert not ended and 0.1 < seconds < 0.4


@pytest.mark.anyio
async def test_learned_durations_persist_with_the_limits_so_the_next_process_starts_warm(tmp_path: Path) -> None:
    img = image_bytes()
    fast = PollPolicy(initial=0.05, max_interval=0.1, deadline=20)
    async with Emulator(EmulatorConfig(time_scale=600, task_duration=0.1, seed=3)) as emu:
        async with emu.client(state_dir=tmp_path / "state", poll=fast) as c:
            for i in range(3):
                await c.ailab.swap(tmp_path / f"s{i}", source=img, target=img)
            assert c.durations.get("ailab", "swap").samples == 3
        assert (tmp_path / "state" / "polling.json").is_file()
        again = emu.client(state_dir=tmp_path / "state")
        assert again.durations.get("ailab", "swap").samples == 3  # warm before its first poll
