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
"""

from __future__ import annotations

import json
import math
import os
import random
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError


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
    number to change it (``0`` for none). The schedule decides when, above it.
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


class _Window:
    """The last ``capacity`` observations (seconds, ended) and the hazard table behind them.

    Adding is O(1); the sorted table is rebuilt (O(n log n), n <= capacity) only after a sixteenth
    of the window has changed (every change while it is small), so O(1) amortised per task; each
    decision is two binary searches.
    """

    __slots__ = ("_built_events", "_cumhaz", "_events", "_obs", "_stale", "_times", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        #: (seconds, ended) in the order added; ended=False is right-censored.
        self._obs: deque[tuple[float, bool]] = deque(maxlen=capacity)
        self._events = 0
        self._times: list[float] = []  # distinct end times, ascending
        self._cumhaz: list[float] = []  # Nelson-Aalen H at each of them
        self._built_events = 0
        self._stale = 0

    def add(self, seconds: float, ended: bool) -> None:
        obs = self._obs
        if len(obs) == self.capacity and obs[0][1]:
            self._events -= 1
        obs.append((seconds, ended))
        if ended:
            self._events += 1
        self._stale += 1

    @property
    def events(self) -> int:
        return self._events

    def observations(self) -> list[tuple[float, bool]]:
        return list(self._obs)

    def longest(self) -> float | None:
        self._build_if_stale()
        return self._times[-1] if self._times else None

    def _build_if_stale(self) -> None:
        if self._stale and (self._stale * 16 >= len(self._obs) or self._built_events < 64 or not self._times):
            self._build()

    def _build(self) -> None:
        obs = sorted(self._obs)
        n = len(obs)
        times: list[float] = []
        cum: list[float] = []
        h = 0.0
        i = 0
        while i < n:
            x = obs[i][0]
            j = i
            ended = 0
            while j < n and obs[j][0] == x:
                ended += obs[j][1]
                j += 1
            if ended:
                h += ended / (n - i)  # ends at x / observations still at risk at x
                times.append(x)
                cum.append(h)
            i = j
        self._times, self._cumhaz = times, cum
        self._built_events = self._events
        self._stale = 0

    def _start(self) -> float:
        # H rises linearly from 0 over a gap as wide as the first one before the first end.
        t = self._times
        return max(0.0, 2 * t[0] - t[1]) if len(t) > 1 else 0.0

    def cumulative_hazard(self, t: float) -> float:
        self._build_if_stale()
        return self._h(t, self._start())

    def _h(self, t: float, start: float) -> float:
        times, cum = self._times, self._cumhaz
        k = bisect_right(times, t)
        if k == 0:
            return 0.0 if not times or t <= start else cum[0] * (t - start) / (times[0] - start)
        if k == len(times):
            return cum[-1]
        xa, ha = times[k - 1], cum[k - 1]
        return ha + (cum[k] - ha) * (t - xa) / (times[k] - xa)

    def next_poll(self, t: float, c2: float) -> float | None:
        self._build_if_stale()
        times, cum = self._times, self._cumhaz
        last = len(times) - 1
        if last < 1 or t >= times[last]:
            return None
        start = self._start()
        ht = self._h(t, start)
        if (cum[last] - ht) * (times[last] - t) < c2:
            return times[last]
        lo, hi = bisect_right(times, t), last  # (H(x) - H(t)) * (x - t) grows with x
        while lo < hi:
            mid = (lo + hi) // 2
            if (cum[mid] - ht) * (times[mid] - t) >= c2:
                hi = mid
            else:
                lo = mid + 1
        # The answer lies in the segment (xa, xb] ending at times[lo]: H(t + g) - H(t) = a + s * (g - g0)
        # for g >= g0, where t + g0 = max(t, xa); solve s*g^2 + (a - s*g0)*g - c2 = 0.
        xa, ha = (times[lo - 1], cum[lo - 1]) if lo else (start, 0.0)
        xb, hb = times[lo], cum[lo]
        s = (hb - ha) / (xb - xa)
        p = max(t, xa)
        g0 = p - t
        b = (ha + s * (p - xa) - ht) - s * g0
        g = (-b + math.sqrt(b * b + 4 * s * c2)) / (2 * s)
        return min(xb, max(p, t + g))


class DurationLearner:
    """What one kind of task (a provider's operation) has taken lately, and where to poll next.

    A wait calls ``token = begin()`` when its task is submitted, then ``finish(token, a, b)`` when
    a poll found it ended at ``b`` after one found it running at ``a`` (seconds since submission;
    ``a = 0`` when the first poll found it ended), or ``abandon(token, a)`` when it gave up on a task
    still running at ``a`` (deadline, cancellation, error). ``record*`` add observations directly.

    Two windows of ``capacity`` (256) observations. *Recent*: the last ends, as they come. *Settled*:
    the last tasks in submission order among those submitted before every task still running,
    i.e. a complete cohort, chosen without looking at how long its tasks took. Ends arrive
    shortest first, so after many tasks are submitted together the recent window holds only the
    short ones (and forgets what it knew of longer ones); the settled window does not move until
    the whole batch has ended. Decisions use the settled window once it has ``min_samples`` ends
    and at least half as many as the recent one, the recent one before (a cold start, or a heavy
    tail holding the settled window back). Ends held back for the settled window cost a few
    bytes per task still running.
    """

    __slots__ = ("_held", "_next", "_oldest", "_recent", "_settled", "capacity")

    #: Held-back ends beyond this many (a wait that never finished, abandoned, say) release the oldest.
    MAX_HELD = 1 << 20

    def __init__(self, capacity: int = 256, observations: Iterable[tuple[float, bool]] = ()) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._recent = _Window(capacity)
        self._settled = _Window(capacity)
        self._next = 0  # the next token
        self._oldest = 0  # every token below this one is settled
        self._held: dict[int, tuple[float, bool] | None] = {}  # settled tokens >= _oldest
        for seconds, ended in observations:
            self._add(float(seconds), bool(ended))

    def __repr__(self) -> str:
        return (
            f"DurationLearner({self._recent.events} recent ends, {self._settled.events} settled, "
            f"{self.running} running)"
        )

    # -- recording ----------------------------------------------------------------------
    def _add(self, seconds: float, ended: bool) -> None:
        if not seconds >= 0 or math.isinf(seconds):
            return
        self._recent.add(seconds, ended)
        self._settled.add(seconds, ended)

    def begin(self) -> int:
        """A task was submitted: its token for :meth:`finish` or :meth:`abandon`."""
        token = self._next
        self._next += 1
        return token

    def finish(self, token: int, last_pending: float, ended_at: float) -> float:
        """The task of ``token`` ended (done or failed) at ``ended_at``, seen running at
        ``last_pending``: records the midpoint (see :meth:`record_polls`) and returns it."""
        est = 0.5 * (max(0.0, last_pending) + ended_at)
        if est >= 0 and not math.isinf(est):
            self._recent.add(est, True)
            self._settle(token, (est, True))
        return est

    def abandon(self, token: int, running_at: float) -> None:
        """The wait for ``token`` gave up on a task still running at ``running_at``: right-censored."""
        obs = (running_at, False) if running_at > 0 and not math.isinf(running_at) else None
        if obs is not None:
            self._recent.add(*obs)
        self._settle(token, obs)

    def _settle(self, token: int, obs: tuple[float, bool] | None) -> None:
        if token < self._oldest:
            return
        held = self._held
        held[token] = obs
        oldest = self._oldest
        if len(held) > self.MAX_HELD:
            oldest = min(held)
        settled = self._settled
        while oldest in held:
            o = held.pop(oldest)
            if o is not None:
                settled.add(*o)
            oldest += 1
        self._oldest = oldest

    def record(self, seconds: float) -> None:
        """A task that took ``seconds``."""
        self._add(seconds, True)

    def record_polls(self, last_pending: float, ended_at: float) -> float:
        """A task seen running at ``last_pending`` and ended at ``ended_at``: records and returns
        the midpoint. The duration is interval-censored in that gap; the midpoint is unbiased when
        the end is equally likely anywhere in it, and the learned gaps are short where ends are likely."""
        est = 0.5 * (max(0.0, last_pending) + ended_at)
        self._add(est, True)
        return est

    def record_censored(self, running_at: float) -> None:
        """A task given up while still running at ``running_at``."""
        if running_at > 0:
            self._add(running_at, False)

    # -- reading ------------------------------------------------------------------------
    @property
    def running(self) -> int:
        """Tasks begun and neither finished nor abandoned."""
        return self._next - self._oldest - len(self._held)

    @property
    def samples(self) -> int:
        """Ends in the recent window (censored observations not counted)."""
        return self._recent.events

    @property
    def settled(self) -> int:
        """Ends in the settled window."""
        return self._settled.events

    def _window(self, min_samples: int) -> _Window | None:
        if self._settled.events >= min_samples and 2 * self._settled.events >= self._recent.events:
            return self._settled
        if self._recent.events >= min_samples:
            return self._recent
        return None

    def observations(self) -> list[tuple[float, bool]]:
        """(seconds, ended), oldest first: the settled window's, or the recent one's when the
        settled window has no end yet (what is worth saving)."""
        w = self._settled if self._settled.events else self._recent
        return w.observations()

    def longest(self, min_samples: int = 1) -> float | None:
        """The longest end time in the window decisions use (None below ``min_samples`` ends)."""
        w = self._window(min_samples)
        return w.longest() if w is not None else None

    def cumulative_hazard(self, t: float) -> float:
        """``H(t)`` of the window decisions use: Nelson-Aalen (at each observed end time, the sum
        of ends / observations at risk), linear in between; constant past the longest end."""
        w = self._window(1)
        return w.cumulative_hazard(t) if w is not None else 0.0

    def survival(self, t: float) -> float:
        """``S(t) = exp(-H(t))``: the share of tasks still running ``t`` seconds in."""
        return math.exp(-self.cumulative_hazard(t))

    def next_poll(self, t: float, c2: float, min_samples: int = 1) -> float | None:
        """The poll time after ``t``: the ``x > t`` with ``(H(x) - H(t)) * (x - t) = c2`` (``H``
        linear between observed end times, so each end is spread over the gap before it), or the
        longest end if even that is not enough. None below ``min_samples`` ends, or at or past the
        longest (nothing is known there). O(log n): a binary search over the end times for the gap
        that holds the answer, then a quadratic inside it.

        Linear, not a step: with a step ``H`` the answer is always an observed duration, and where
        observations are sparse (a heavy tail, the valley of a bimodal) consecutive ones are
        seconds apart, so polls land seconds late (simulated Pareto p99 notice delay 3.7 s, not 1.1 s).
        """
        w = self._window(min_samples)
        return w.next_poll(t, c2) if w is not None else None


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


class DurationLearners:
    """One :class:`DurationLearner` per (provider, operation); saved and loaded as JSON so a new
    process starts with what the last one learned."""

    VERSION = 1

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._by_key: dict[tuple[str, str], DurationLearner] = {}

    def __repr__(self) -> str:
        return f"DurationLearners({', '.join(f'{p}/{o}: {v!r}' for (p, o), v in self._by_key.items())})"

    def get(self, provider: str, operation: str) -> DurationLearner:
        """The learner for ``(provider, operation)`` (made empty on first use)."""
        key = (provider, operation)
        learner = self._by_key.get(key)
        if learner is None:
            learner = self._by_key[key] = DurationLearner(self.capacity)
        return learner

    def keys(self) -> list[tuple[str, str]]:
        return list(self._by_key)

    def to_json(self) -> str:
        """``{"version": 1, "learners": {"provider/operation": [[seconds, ended], ...]}}``, oldest first."""
        data: dict[str, Any] = {
            "version": self.VERSION,
            "learners": {
                f"{p}/{o}": [[round(s, 4), int(e)] for s, e in lr.observations()]
                for (p, o), lr in self._by_key.items()
                if lr.observations()
            },
        }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes, capacity: int = 256) -> DurationLearners:
        """Learners from :meth:`to_json`'s text; anything unreadable is skipped (a cold start)."""
        out = cls(capacity)
        try:
            data = json.loads(text)
        except ValueError:
            return out
        if not isinstance(data, dict) or data.get("version") != cls.VERSION:
            return out
        learners = data.get("learners")
        if not isinstance(learners, dict):
            return out
        for key, rows in learners.items():
            provider, sep, operation = str(key).partition("/")
            if not sep or not isinstance(rows, list):
                continue
            obs = [
                (float(r[0]), bool(r[1]))
                for r in rows
                if isinstance(r, list) and len(r) == 2 and isinstance(r[0], (int, float))
            ]
            out._by_key[(provider, operation)] = DurationLearner(capacity, obs)
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_json` to ``path`` atomically (a temporary file, then a rename)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        os.replace(tmp, p)

    @classmethod
    def load(cls, path: str | os.PathLike[str], capacity: int = 256) -> DurationLearners:
        """:meth:`from_json` of ``path``; a missing or unreadable file is a cold start."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError:
            return cls(capacity)
        return cls.from_json(text, capacity)
