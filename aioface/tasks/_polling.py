"""Poll schedules: learned from past task durations, or exponential backoff; jittered, always under
a deadline. Pure maths: no event loop, no clock, no provider names.

**Backoff.** After ``t`` seconds the next wait is ``min(max_interval, initial + (factor - 1) * t)``:
``initial``, ``initial * factor``, ``initial * factor**2`` ... (the n-th wait of a geometric
schedule, written as a function of the time elapsed so that a schedule can switch to it anywhere).

**Learned.** A :class:`DurationLearner` keeps the last 256 durations of one kind of task. With
``S(t)`` their survival (a Nelson-Aalen estimate) and ``H = -ln S`` their cumulative hazard, the
next poll after ``t`` is at the ``x > t`` with ``(H(x) - H(t)) * (x - t) = c**2``: each gap holds
about the same "chance of ending x length of the gap", so polls crowd where tasks tend to end and
thin out where they do not (the gap that minimises polls + delay goes as ``1 / sqrt(hazard)``).
``H`` is linear between observed durations, so ``x`` need not be one of them (sparse tails would
otherwise leave seconds-wide gaps). Waits are clamped to ``[min_interval, max_interval]``; below
``min_samples`` durations the schedule is backoff, and past the longest duration seen it is
backoff restarted there (nothing is known beyond it).

**What is observed, and censoring.** A poll only tells that a task was running at ``a`` and had
ended at ``b``: its duration is interval-censored in ``(a, b]`` and is recorded as the midpoint
(the learned gaps are short where ends are likely, so the error is too). A wait that gives up
(deadline, cancellation, error) only tells the task was still running at ``a``: it is recorded as
right-censored (at risk up to ``a``, never an end), so tasks that outlive their waits do not drop
out and make tasks look shorter than they are. A failed task ended: polling wants to notice any
end, so failures count. Tasks still running are censored too, and that is the bias of "the last
ends": when many tasks start together they end shortest first, and a window of the most recent
ends would hold only the short ones. So decisions use a *settled* window (the last tasks in
submission order among those submitted before every task still running: a cohort chosen without
looking at durations), and the recent ends only until that window has enough (a cold start).
What no window can know: a cold start in a burst (every task the same age, nothing longer seen
yet) is backoff; saving the durations (:meth:`DurationLearners.save`) lets the next process start warm.

**Above a provider's floor** (``PollPolicy.floor``: AILab 5 s, Ace 3 s between two polls of one
task, as their SDKs poll). The rule above wants gaps far shorter than a floor, so with a floor what
can be chosen is the first poll; every later one is exactly a floor after the one before (as the
SDK's loop, which polls at once and then every floor). The first poll is *aimed*: the ``x`` where
mean notice time + ``c**2 / 8`` per poll (:data:`AIM_COST`) is least when polls follow at ``x + k * floor``, on a fit of
the durations (:mod:`aioface.tasks._censored`): Ace's records tell each duration exactly
(``finished_at - created_at``, passed by the scheduler as ``finish(..., exact=)``); AILab's tell
nothing, so its durations are the polls' intervals, fitted by Turnbull's EM, and a share of first
polls (:data:`EXPLORE`) *probe* at a random phase within half a floor of the aim so that the fit
sees inside the floor-wide gaps. Where durations spread wide against the floor no such schedule
notices sooner than about floor / 2 on average, as the SDK's does: there the aim saves the early
polls the SDK wastes and ties its delay. Before ``min_samples`` durations (cold) the first poll
comes a floor after submission: the SDK's own phase without its poll at once, so a cold task is
noticed exactly when the SDK's loop would notice it, with one poll fewer.
A floor below ``min_interval`` (a provider's, divided by a large ``time_scale``) binds nothing: the
schedule is the one above, each wait at least the floor.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace

from .._errors import ConfigurationError
from ._learn import DurationLearner

#: The share of first polls placed at a random phase around the aimed one when durations are known
#: only to within a floor (AILab): without it every task is polled at the same instants, and what
#: happens between them is never seen (the fit cannot tell where in a floor-wide gap tasks end).
EXPLORE = 0.05
#: What one poll costs, in seconds of notice delay, when the first poll is aimed: ``spacing**2``
#: times this. At 1/2 the aim skipped more early polls than the SDK and noticed Ace's 1-2 minute
#: swaps 0.03 s later than it (simulated); from 1/8 the delay ties the SDK's (polls 59% fewer, not 64%).
AIM_COST = 0.125


@dataclass(frozen=True)
class PollPolicy:
    """How a long task is polled.

    ``learn`` (default): poll where this kind of task tends to finish, learned from the last
    durations (see the module docs), waits clamped to ``[min_interval, max_interval]``; the
    backoff below is used until ``min_samples`` durations are known and past the longest one.
    ``spacing`` is ``c`` (``c**2`` is in seconds): smaller polls more often and notices sooner.
    In simulation (benchmarks/bench_polling_sim.py) a fixed 0.5 s poll is beaten on both polls and
    notice delay for every distribution from about 0.22 (uniform 1-7 s needs that few polls) to
    0.26 (a Pareto tail needs no more delay); 0.24 is in the middle.

    ``learn=False``: backoff only. The n-th wait is ``min(max_interval, initial * factor**n)``
    (``factor=1`` polls at a fixed interval).

    Every wait is scaled by a random factor in ``[1 - jitter, 1 + jitter]`` so that many tasks
    started together do not poll in lockstep. ``deadline`` bounds the whole wait (seconds from
    submission); no wait reaches past it.

    ``floor``: the fewest seconds between two polls of one task. None (default): the provider's own
    (AILab 5 s, Ace Data 3 s, as their SDKs poll; divided by the client's ``time_scale``); give a
    number to change it (``0`` for none). Learned, above a floor: the first poll is aimed where this
    kind of task tends to end, the later ones are exactly a floor apart (see the module docs).
    """

    initial: float = 0.5
    factor: float = 1.5
    max_interval: float = 5.0
    jitter: float = 0.2
    deadline: float = 300.0
    learn: bool = True
    min_interval: float = 0.1
    spacing: float = 0.24
    min_samples: int = 20
    floor: float | None = None

    def __post_init__(self) -> None:
        # Written as "not (ok)" so that NaN, which compares false with everything, is refused too.
        if not (self.initial > 0 and self.factor >= 1 and self.max_interval > 0 and 0 <= self.jitter < 1):
            raise ConfigurationError("PollPolicy needs initial > 0, factor >= 1, max_interval > 0, 0 <= jitter < 1")
        if not self.deadline > 0:
            raise ConfigurationError("PollPolicy.deadline must be > 0")
        if not (self.min_interval > 0 and self.spacing > 0 and self.min_samples >= 1):
            raise ConfigurationError("PollPolicy needs min_interval > 0, spacing > 0, min_samples >= 1")
        if self.floor is not None and not self.floor >= 0:
            raise ConfigurationError("PollPolicy.floor must be >= 0 seconds (or None: the provider's)")

    def with_floor(self, provider_floor: float, time_scale: float = 1.0) -> PollPolicy:
        """This policy with ``floor`` set: its own if given, else ``provider_floor / time_scale``."""
        if self.floor is not None:
            return self
        return replace(self, floor=provider_floor / time_scale)

    def scaled(self, time_scale: float) -> PollPolicy:
        """The same schedule on a clock that runs ``time_scale`` times faster (for an emulator whose
        tasks are that much shorter). ``spacing**2`` is in seconds, so ``spacing`` scales by the root."""
        if not time_scale > 0:
            raise ConfigurationError("time_scale must be > 0")
        k = time_scale
        return replace(
            self,
            initial=self.initial / k,
            max_interval=self.max_interval / k,
            deadline=self.deadline / k,
            min_interval=self.min_interval / k,
            spacing=self.spacing / math.sqrt(k),
            floor=None if self.floor is None else self.floor / k,
        )


def intervals(policy: PollPolicy, rng: random.Random | None = None) -> Iterator[float]:
    """The endless sequence of backoff waits between polls (``learn`` is ignored)."""
    r = rng or random.Random()
    n = 0
    while True:
        base = min(policy.max_interval, policy.initial * policy.factor**n)
        yield base * (1 + policy.jitter * (2 * r.random() - 1))
        n += 1


def backoff(policy: PollPolicy, since: float) -> float:
    """The backoff wait ``since`` seconds into it (no jitter): ``initial + (factor - 1) * since``,
    at most ``max_interval``. With ``since`` the sum of the earlier waits this is ``intervals``."""
    return min(policy.max_interval, policy.initial + (policy.factor - 1) * max(0.0, since))


def next_delay(
    policy: PollPolicy,
    elapsed: float,
    learner: DurationLearner | None = None,
    rng: random.Random | None = None,
    *,
    polled: bool = False,
) -> float | None:
    """Seconds to wait before the next poll of a task submitted ``elapsed`` seconds ago, or None
    when the deadline has come. Learned when ``policy.learn`` and ``learner`` know enough, else
    backoff; jittered; never past ``policy.deadline``; after a poll (``polled``) at least
    ``policy.floor``, the provider's shortest interval between two polls of one task."""
    left = policy.deadline - elapsed
    if left <= 0:
        return None
    if policy.floor and policy.floor >= policy.min_interval and policy.learn and learner is not None:
        if polled:  # a floor apart: as the provider's SDK, from the phase the first poll set
            return min(policy.floor, left)
        x = learner.aim(policy.floor, policy.spacing * policy.spacing * AIM_COST, elapsed, policy.min_samples)
        if x is not None and x > elapsed:
            r = rng or random
            if learner.probe(r.random(), EXPLORE):
                x = max(elapsed + policy.min_interval, x + (r.random() - 0.5) * policy.floor)
            return min(x - elapsed, left)
        if x is None and not polled and learner.longest(policy.min_samples) is None:
            # Cold, nothing to aim with: the SDK's own phase (a floor after submission) without its
            # poll at once, which seldom finds a task done: the same notice, one poll fewer.
            return min(max(policy.floor - elapsed, 0.0), left)
    d = _next_delay(policy, elapsed, learner, rng, left)
    if polled and policy.floor:
        d = min(max(d, policy.floor), left)
    return d


def _next_delay(
    policy: PollPolicy, elapsed: float, learner: DurationLearner | None, rng: random.Random | None, left: float
) -> float:
    u = (rng or random).random()
    if policy.learn and learner is not None:
        x = learner.next_poll(elapsed, policy.spacing * policy.spacing, policy.min_samples)
        if x is not None:
            lo = min(policy.min_interval, policy.max_interval)
            d = (x - elapsed) * (1 + policy.jitter * (2 * u - 1))
            return min(max(lo, min(d, policy.max_interval)), left)
        # Past the longest duration seen, back off from there; below min_samples, from the start.
        longest = learner.longest(policy.min_samples)
        since = elapsed - longest if longest is not None else elapsed
    else:
        since = elapsed
    return min(backoff(policy, since) * (1 + policy.jitter * (2 * u - 1)), left)
