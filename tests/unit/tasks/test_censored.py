"""Polling above a provider's floor: the interval-censored fit, the aimed first poll, Ace's exact
durations, and that no schedule polls one task twice within the floor (pure, seeded)."""

from __future__ import annotations

import heapq
import math
import random
from pathlib import Path

import pytest

from aioface import DurationLearners, PollPolicy
from aioface.emulator import Emulator, EmulatorConfig
from aioface.emulator._durations import Durations
from aioface.providers.acedata import _adapter as ace
from aioface.tasks._censored import aim, grid_step, survival_grid
from aioface.tasks._learn import DurationLearner
from aioface.tasks._polling import AIM_COST, next_delay
from tests.unit.tasks.test_polling import arrivals


def draws(spec: str, n: int, seed: int = 3) -> list[float]:
    rng = random.Random(seed)
    d = Durations.parse(spec)
    return [d.draw(rng) for _ in range(n)]


def polled_under_floor(durations: list[float], floor: float, rng: random.Random) -> list[tuple[float, float]]:
    """Each task polled first at a random phase in (0, floor], then every ``floor``: its (lo, hi]."""
    out = []
    for d in durations:
        first = rng.uniform(0.01, floor)
        k = max(0, math.ceil((d - first) / floor))
        hi = first + k * floor
        out.append((hi - floor if k else 0.0, hi))
    return out


def empirical(durations: list[float], t: float) -> float:
    return sum(d > t for d in durations) / len(durations)


# -- the censored fit ---------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["lognormal:5:1", "uniform:1:7", "bimodal:3:20:0.3"])
def test_a_distribution_seen_only_through_polls_5s_apart_is_recovered(spec: str) -> None:
    durations = draws(spec, 256)
    intervals = polled_under_floor(durations, 5.0, random.Random(8))
    h = grid_step(intervals, 5.0)
    s = survival_grid(intervals, h)
    for t in (2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 10.0, 20.0):
        j = round(t / h)
        if j < len(s):
            assert abs(s[j] - empirical(durations, t)) < 0.12, (spec, t, s[j], empirical(durations, t))
    if spec.startswith("uniform"):
        return  # its edges are sharp, which the fit's smoothing blurs; midpoints happen to do well there
    # The midpoints a learner kept before are off by up to half a floor: the fit does better.
    mids = [0.5 * (lo + hi) for lo, hi in intervals]
    err_fit = max(abs(s[round(t / h)] - empirical(durations, t)) for t in (3.0, 4.0, 5.0, 6.0))
    err_mid = max(abs(empirical(mids, t) - empirical(durations, t)) for t in (3.0, 4.0, 5.0, 6.0))
    assert err_fit < err_mid


def test_exact_durations_fit_their_empirical_survival() -> None:
    durations = draws("pareto:2:1.5:240", 200)
    intervals = [(d, d) for d in durations]
    h = grid_step(intervals, 3.0)
    s = survival_grid(intervals, h, smooth=0)
    for j in (5, 10, 20, 40):
        assert s[j] == pytest.approx(empirical(durations, j * h), abs=1 / 200 + 1e-9)
    assert s[0] == 1.0 and s[-1] == pytest.approx(0.0, abs=1e-9)


def test_tasks_given_up_stay_running_past_the_grid() -> None:
    intervals = [(1.0, 2.0)] * 3 + [(4.0, math.inf)]
    s = survival_grid(intervals, 0.25, smooth=0)
    assert s[-1] == pytest.approx(0.25, abs=1e-3) and s[round(2.0 / 0.25)] == pytest.approx(0.25, abs=0.05)


def test_the_aim_is_where_tasks_end_when_they_all_take_the_same_time() -> None:
    intervals = [(d, d) for d in draws("uniform:6:6.2", 100)]
    h = grid_step(intervals, 5.0)
    x = aim(survival_grid(intervals, h, smooth=0), h, 5.0, 0.03)
    assert x is not None and 6.2 <= x <= 6.2 + h  # one poll, right after the last of them ends


def test_the_aim_matches_brute_force_over_known_durations() -> None:
    durations = draws("lognormal:5:1", 256)
    floor, cost = 5.0, 0.0288
    intervals = [(d, d) for d in durations]
    h = grid_step(intervals, floor)
    x = aim(survival_grid(intervals, h, smooth=0), h, floor, cost)

    def total(first: float) -> float:
        ks = [max(0, math.ceil((d - first) / floor)) for d in durations]
        return sum(first + k * floor + cost * (1 + k) for k in ks)

    best = min((j * h for j in range(1, 60)), key=total)
    assert x is not None and total(x) == pytest.approx(total(best), rel=1e-9)


# -- Ace's exact durations ------------------------------------------------------------------
def test_ace_task_records_tell_the_duration() -> None:
    assert ace.task_duration({"created_at": 100.0, "finished_at": 104.5}) == 4.5
    iso = {"created_at": "2026-12-07T10:00:00Z", "finished_at": "2026-12-07T10:01:30.5+00:00"}
    assert ace.task_duration(iso) == 90.5
    assert ace.task_duration({"created_at": 1.7e12, "finished_at": 1.7e12 + 2500}) == 2.5  # milliseconds
    assert ace.task_duration({"response": {"created_at": 1, "finished_at": 3}}) == 2.0
    odds: list[dict[str, object]] = [
        {"created_at": 5},  # not finished
        {"finished_at": 5},
        {"created_at": "yesterday", "finished_at": 5},
        {"created_at": 9, "finished_at": 5},  # negative
        {"created_at": True, "finished_at": 5},
        {"created_at": 0, "finished_at": 1e9},  # not a plausible duration
        {"created_at": [], "finished_at": None},
    ]
    for odd in odds:
        assert ace.task_duration(odd) is None, odd


def test_an_exact_duration_is_learned_as_it_is_and_odd_ones_fall_back_to_the_midpoint() -> None:
    lr = DurationLearner()
    assert lr.finish(lr.begin(), 3.0, 8.0, exact=5.2) == 5.2
    assert lr.intervals()[-1] == (5.2, True, 5.2, 5.2)
    assert lr.finish(lr.begin(), 3.0, 8.0) == 5.5  # no record time: the midpoint, the interval kept
    assert lr.intervals()[-1] == (5.5, True, 3.0, 8.0)
    for odd in (float("nan"), -1.0, float("inf"), 60.0, 0.1):  # nonsense, or not what the polls saw
        assert lr.finish(lr.begin(), 3.0, 8.0, exact=odd) == 5.5, odd


@pytest.mark.anyio
async def test_ace_swaps_teach_the_learner_their_exact_durations(tmp_path: Path) -> None:
    cfg = EmulatorConfig(task_duration=0.3, seed=2)
    async with Emulator(cfg) as emu, emu.client(poll=PollPolicy(floor=0.05, deadline=10)) as c:
        for i in range(3):
            await c.acedata.swap(tmp_path / f"s{i}", source="https://x.example/a.png", target="https://x.example/b.png")
        learned = c.durations.get("acedata", "swap").intervals()
    assert len(learned) == 3
    for seconds, ended, lo, hi in learned:
        assert ended and lo == hi == seconds == pytest.approx(0.3)  # finished_at - created_at, not a midpoint


# -- the schedule ------------------------------------------------------------------------
def simulate(
    spec: str, floor: float, exact: bool, n: int = 3000, in_flight: float = 100, sdk: bool = False
) -> tuple[float, float, float]:
    """Poisson arrivals, simulated time; the learner told each duration exactly (Ace) or only the
    polls' interval (AILab); ``sdk``: a poll at once, then every ``floor``. Returns (polls per task,
    mean notice delay, the shortest gap between two polls of one task)."""
    dur, arrive, rng = arrivals(spec, n, in_flight)
    policy = PollPolicy(floor=floor)
    lr = DurationLearner()
    token, last, prev = [0] * n, [0.0] * n, [-math.inf] * n
    polls, delay, gap = 0, 0.0, math.inf
    heap = [(a, i, False) for i, a in enumerate(arrive)]
    heapq.heapify(heap)
    while heap:
        now, i, polled = heapq.heappop(heap)
        age = now - arrive[i]
        if polled:
            polls += 1
            gap = min(gap, now - prev[i])
            prev[i] = now
            if age >= dur[i]:
                delay += age - dur[i]
                lr.finish(token[i], last[i], age, dur[i] if exact else None)
                continue
            last[i] = age
        else:
            token[i] = lr.begin()
        if sdk:
            d: float | None = 0.0 if not polled else floor
        else:
            d = next_delay(policy, age, lr, rng, polled=polled)
        assert d is not None
        heapq.heappush(heap, (now + d, i, True))
    return polls / n, delay / n, gap


@pytest.mark.parametrize(
    ("spec", "floor", "exact"),
    [("lognormal:5:1", 5.0, False), ("bimodal:3:20:0.3", 5.0, False), ("lognormal:5:1", 3.0, True)],
)
def test_above_the_floor_learned_polling_beats_the_sdks_loop_on_polls_and_delay(
    spec: str, floor: float, exact: bool
) -> None:
    learned = simulate(spec, floor, exact)
    sdk = simulate(spec, floor, exact, sdk=True)
    assert learned[0] < sdk[0] and learned[1] < sdk[1], (learned, sdk)


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("spec", ["uniform:1:7", "pareto:2:1.5:240", "lognormal:90:15"])
def test_no_task_is_polled_twice_within_the_floor(spec: str, exact: bool) -> None:
    floor = 5.0 if not exact else 3.0
    assert simulate(spec, floor, exact, n=1500)[2] >= floor - 1e-9


def test_after_a_poll_the_wait_is_the_floor_whatever_the_learner_knows() -> None:
    rng = random.Random(4)
    for learner in (None, DurationLearner()):
        pol = PollPolicy(floor=5.0, deadline=300)
        for _ in range(200):
            t = rng.uniform(0, 250)
            d = next_delay(pol, t, learner, rng, polled=True)
            assert d is not None and d >= 5.0
    warm = DurationLearner()
    for d in draws("lognormal:5:1", 256):
        warm.finish(warm.begin(), max(0.0, d - 2), d + 3)
    for t in (0.5, 4.0, 9.0, 60.0):
        assert next_delay(PollPolicy(floor=5.0), t, warm, rng, polled=True) == 5.0
    assert next_delay(PollPolicy(floor=5.0, deadline=10), 8.0, warm, rng, polled=True) == 2.0  # the deadline


def test_first_polls_are_aimed_and_some_probe_when_only_intervals_are_known() -> None:
    pol = PollPolicy(floor=5.0)
    rng = random.Random(6)
    durations = draws("lognormal:5:1", 256)
    exact, censored = DurationLearner(), DurationLearner()
    for d, (lo, hi) in zip(durations, polled_under_floor(durations, 5.0, rng), strict=True):
        exact.finish(exact.begin(), max(0.0, d - 2), d + 3, exact=d)
        censored.finish(censored.begin(), lo, hi)
    x = exact.aim(5.0, pol.spacing**2 * AIM_COST)
    assert x is not None and 5.0 < x < 7.5  # past most of the durations: one poll for most tasks
    firsts = []
    for _ in range(100):
        exact.begin()
        firsts.append(next_delay(pol, 0.0, exact, rng))
    assert set(firsts) == {x}  # exact durations: every first poll aimed
    y = censored.aim(5.0, pol.spacing**2 * AIM_COST)
    assert y is not None and abs(y - x) < 1.0
    firsts = []
    for _ in range(400):
        censored.begin()
        firsts.append(next_delay(pol, 0.0, censored, rng))
    probes = [f for f in firsts if f != y]
    assert all(f is not None and abs(f - y) <= 2.5 for f in probes)
    assert 0.08 < len(probes) / len(firsts) < 0.2  # the first 32 probe, then about 5%


def test_probes_and_intervals_survive_a_json_round_trip(tmp_path: Path) -> None:
    book = DurationLearners()
    lr = book.get("ailab", "swap")
    rng = random.Random(2)
    durations = draws("lognormal:5:1", 64)
    for lo, hi in polled_under_floor(durations, 5.0, rng):
        token = lr.begin()
        lr.probe(0.0, 0.15)  # before any fit: not a probe (nothing to aim at)
        lr.finish(token, lo, hi)
    assert lr.probes() == []
    lr.aim(5.0, 0.03)  # a fit of intervals: first polls may now probe
    for d in durations[:32]:
        token = lr.begin()
        assert lr.probe(0.99, 0.15)  # fewer than 32 probes known: every first poll probes
        lr.finish(token, max(0.0, d - 5), d + 0.5)
    lr.begin()
    assert not lr.probe(0.99, 0.15) and lr.probe(0.1, 0.15)  # then a share of them
    assert len(lr.probes()) == 32
    path = tmp_path / "d.json"
    book.save(path)
    back = DurationLearners.load(path).get("ailab", "swap")
    assert back.intervals() == [pytest.approx(row, abs=1e-3) for row in lr.intervals()]
    assert back.probes() == [pytest.approx(p, abs=1e-3) for p in lr.probes()]


def test_a_floor_below_min_interval_binds_nothing() -> None:
    """A provider's floor divided by a large time_scale (5 s / 1e6): the schedule's own waits, at
    least the floor, never a poll every few microseconds; no aim on a grid of microseconds."""
    pol = PollPolicy(floor=5e-6)
    lr = DurationLearner()
    for d in draws("lognormal:5:1", 256):
        lr.finish(lr.begin(), max(0.0, d - 0.1), d + 0.1)
    rng = random.Random(1)
    for t in (0.0, 1.0, 4.5, 6.0):
        wait = next_delay(pol, t, lr, rng, polled=t > 0)
        assert wait is not None and wait >= pol.min_interval * (1 - pol.jitter), (t, wait)
    h = grid_step([(0.0, 5.0), (5.0, 100.0)], 5e-6)
    assert 100.0 / h <= 256


@pytest.mark.parametrize(("spec", "floor", "exact"), [("bimodal:3:20:0.3", 5.0, False), ("uniform:1:7", 3.0, True)])
def test_cold_a_burst_is_noticed_when_the_sdk_notices_it_with_one_poll_fewer(
    spec: str, floor: float, exact: bool
) -> None:
    """Nothing learned yet (a burst submitted at once to an empty learner): the first poll comes a
    floor after submission, the SDK's own phase without its poll at once, so every task is noticed
    exactly when the SDK's loop notices it and costs one poll fewer (backoff's 0.5 s first poll
    was a phase of its own: later than the SDK by 0.35 s on this bimodal burst)."""
    learned = simulate(spec, floor, exact, n=500, in_flight=1e9)
    sdk = simulate(spec, floor, exact, n=500, in_flight=1e9, sdk=True)
    assert learned[1] == pytest.approx(sdk[1], abs=1e-6), (learned, sdk)
    assert learned[0] == pytest.approx(sdk[0] - 1, abs=1e-9), (learned, sdk)
