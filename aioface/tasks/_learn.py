"""What polling learns: task durations per (provider, operation), a hazard table, saved as JSON between runs."""

from __future__ import annotations

import json
import math
import os
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._censored import Aimer

#: One observation: (seconds, ended, lo, hi). ``seconds``/``ended`` feed the hazard table (the
#: midpoint of an interval, or a right-censored time); ``(lo, hi]`` is what was seen (lo == hi an
#: exact duration, hi = inf a task still running at lo) and feeds the censored fit.
_Obs = tuple[float, bool, float, float]


class _Window:
    """The last ``capacity`` observations (seconds, ended) and the hazard table behind them.

    Adding is O(1); the sorted table is rebuilt (O(n log n), n <= capacity) only after a sixteenth
    of the window has changed (every change while it is small), so O(1) amortised per task; each
    decision is two binary searches.
    """

    __slots__ = ("_built_events", "_cumhaz", "_events", "_obs", "_stale", "_times", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        #: :data:`_Obs` in the order added; ended=False is right-censored.
        self._obs: deque[_Obs] = deque(maxlen=capacity)
        self._events = 0
        self._times: list[float] = []  # distinct end times, ascending
        self._cumhaz: list[float] = []  # Nelson-Aalen H at each of them
        self._built_events = 0
        self._stale = 0

    def add(self, seconds: float, ended: bool, lo: float | None = None, hi: float | None = None) -> None:
        obs = self._obs
        if len(obs) == self.capacity and obs[0][1]:
            self._events -= 1
        if lo is None or hi is None:
            lo, hi = (seconds, seconds) if ended else (seconds, math.inf)
        obs.append((seconds, ended, lo, hi))
        if ended:
            self._events += 1
        self._stale += 1

    @property
    def events(self) -> int:
        return self._events

    def observations(self) -> list[tuple[float, bool]]:
        return [(s, e) for s, e, _, _ in self._obs]

    def intervals(self) -> list[_Obs]:
        return list(self._obs)

    def longest(self) -> float | None:
        self._build_if_stale()
        return self._times[-1] if self._times else None

    def _build_if_stale(self) -> None:
        if self._stale and (self._stale * 16 >= len(self._obs) or self._built_events < 64 or not self._times):
            self._build()

    def _build(self) -> None:
        obs = sorted((s, e) for s, e, _, _ in self._obs)
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

    __slots__ = ("_aimer", "_held", "_next", "_oldest", "_recent", "_settled", "capacity")

    #: Held-back ends beyond this many (a wait that never finished, abandoned, say) release the oldest.
    MAX_HELD = 1 << 20

    def __init__(self, capacity: int = 256, observations: Iterable[tuple[float, bool] | _Obs] = ()) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._recent = _Window(capacity)
        self._settled = _Window(capacity)
        self._next = 0  # the next token
        self._oldest = 0  # every token below this one is settled
        self._held: dict[int, _Obs | None] = {}  # settled tokens >= _oldest
        self._aimer = Aimer(capacity)
        for row in observations:
            seconds, ended = row[0], row[1]
            lo, hi = (float(row[2]), float(row[3])) if len(row) == 4 else (None, None)
            if lo is not None and hi is not None and not 0 <= lo <= seconds <= hi:
                lo = hi = None
            self._add(float(seconds), bool(ended), lo, hi)

    def __repr__(self) -> str:
        return (
            f"DurationLearner({self._recent.events} recent ends, {self._settled.events} settled, "
            f"{self.running} running)"
        )

    # -- recording ----------------------------------------------------------------------
    def _add(self, seconds: float, ended: bool, lo: float | None = None, hi: float | None = None) -> None:
        if not seconds >= 0 or math.isinf(seconds):
            return
        self._recent.add(seconds, ended, lo, hi)
        self._settled.add(seconds, ended, lo, hi)

    def begin(self) -> int:
        """A task was submitted: its token for :meth:`finish` or :meth:`abandon`."""
        token = self._next
        self._next += 1
        self._aimer.begun(token)
        return token

    def finish(self, token: int, last_pending: float, ended_at: float, exact: float | None = None) -> float:
        """The task of ``token`` ended (done or failed) at ``ended_at``, seen running at
        ``last_pending``: records its duration and returns it. ``exact``: the duration as the
        provider's record tells it (Ace's ``finished_at - created_at``), used when it is a number
        consistent with the polls (within half a second or a tenth); else the midpoint (see
        :meth:`record_polls`), the interval ``(last_pending, ended_at]`` kept for the censored fit."""
        lo = max(0.0, last_pending)
        if exact is not None and _consistent(exact, lo, ended_at):
            obs: _Obs = (exact, True, exact, exact)
        else:
            est = 0.5 * (lo + ended_at)
            if not (est >= 0 and not math.isinf(est)):
                return est
            obs = (est, True, lo, max(est, ended_at))
        self._recent.add(*obs)
        self._settle(token, obs)
        self._aimer.ended(token, obs[2], obs[3])
        return obs[0]

    def abandon(self, token: int, running_at: float) -> None:
        """The wait for ``token`` gave up on a task still running at ``running_at``: right-censored."""
        obs: _Obs | None = (
            (running_at, False, running_at, math.inf) if running_at > 0 and not math.isinf(running_at) else None
        )
        if obs is not None:
            self._recent.add(*obs)
            self._aimer.ended(token, obs[2], obs[3])
        self._settle(token, obs)

    def _settle(self, token: int, obs: _Obs | None) -> None:
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
        lo = max(0.0, last_pending)
        est = 0.5 * (lo + ended_at)
        self._add(est, True, lo, max(est, ended_at))
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

    def intervals(self) -> list[tuple[float, bool, float, float]]:
        """(seconds, ended, lo, hi) of the same window: ``(lo, hi]`` is what the polls saw (lo == hi
        an exact duration, hi = inf a task still running at lo)."""
        w = self._settled if self._settled.events else self._recent
        return w.intervals()

    def aim(self, floor: float, poll_cost: float, start: float = 0.0, min_samples: int = 1) -> float | None:
        """Where to poll first (seconds since submission, after ``start``) when polls must then be
        ``floor`` apart: least mean notice time + ``poll_cost`` per poll on the durations' censored
        fit (:class:`~aioface.tasks._censored.Aimer`). None below ``min_samples`` ends."""
        w = self._window(min_samples)
        if w is None:
            return None
        return self._aimer.aim(floor, poll_cost, start, lambda: [(lo, hi) for _, _, lo, hi in w.intervals()])

    def probes(self) -> list[tuple[float, float]]:
        """The (lo, hi) intervals of the tasks whose first poll was a probe (see :meth:`probe`)."""
        return self._aimer.probes()

    def load_probes(self, rows: Iterable[tuple[float, float]]) -> None:
        """Probes' intervals saved by an earlier process (:meth:`DurationLearners.to_json`)."""
        self._aimer.load_probes(list(rows))

    def probe(self, u: float, explore: float) -> bool:
        """Whether the first poll of the task begun last is to be a probe (see
        :class:`~aioface.tasks._censored.Aimer`): only when durations are known only as intervals.
        The probe is marked on the token :meth:`begin` returned last, so a waiter places a task's
        first poll (``next_delay(..., polled=False)``) right after its ``begin()``, with no await
        between (the scheduler and ``wait_many`` do)."""
        return self._aimer.inexact and self._aimer.probing(u, explore)

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


def _consistent(exact: float, lo: float, hi: float) -> bool:
    """Whether a duration the provider reported fits the polls: seen running at ``lo``, ended by ``hi``
    (the provider's clock starts a little after the submission was sent: some slack)."""
    if not (isinstance(exact, (int, float)) and exact >= 0 and not math.isinf(exact)):
        return False
    slack = max(0.5, 0.1 * hi)
    return lo - slack <= exact <= hi + slack


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
        """``{"version": 1, "learners": {"provider/operation": [[seconds, ended(, lo, hi)], ...]},
        "probes": {"provider/operation": [[lo, hi], ...]}}``, oldest first; ``lo, hi`` only for an end
        seen between two polls (not an exact duration); the probes' intervals feed the first poll's aim."""
        data: dict[str, Any] = {
            "version": self.VERSION,
            "learners": {
                f"{p}/{o}": [_row(*ob) for ob in lr.intervals()]
                for (p, o), lr in self._by_key.items()
                if lr.observations()
            },
            "probes": {
                f"{p}/{o}": [[round(lo, 4), round(hi, 4)] for lo, hi in lr.probes() if hi != math.inf]
                for (p, o), lr in self._by_key.items()
                if lr.probes()
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
            obs: list[tuple[float, bool] | _Obs] = []
            for r in rows:
                if not (isinstance(r, list) and len(r) in (2, 4)):
                    continue
                if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (r[0], *r[2:])):
                    continue
                obs.append((float(r[0]), bool(r[1])) if len(r) == 2 else (float(r[0]), bool(r[1]), r[2], r[3]))
            out._by_key[(provider, operation)] = DurationLearner(capacity, obs)
        probes = data.get("probes")
        for key, rows in (probes if isinstance(probes, dict) else {}).items():
            provider, _, operation = str(key).partition("/")
            learner = out._by_key.get((provider, operation))
            if learner is not None and isinstance(rows, list):
                learner.load_probes(
                    (float(r[0]), float(r[1]))
                    for r in rows
                    if isinstance(r, list) and len(r) == 2 and all(type(v) in (int, float) for v in r)
                )
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


def _row(seconds: float, ended: bool, lo: float, hi: float) -> list[float]:
    row = [round(seconds, 4), int(ended)]
    return [*row, round(lo, 4), round(hi, 4)] if ended and lo < hi else row
