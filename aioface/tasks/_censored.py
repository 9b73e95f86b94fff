"""Task durations seen only through polls: an interval-censored survival fit (Turnbull's NPMLE by
EM) and the first poll that, with the later ones a floor apart, costs least on it. Pure maths.

A poll schedule sees a task running at ``a`` and ended at ``b``: its duration is somewhere in
``(a, b]``; with polls a provider's floor apart (AILab 5 s) that interval is wide, and its midpoint
is off by up to half a floor. Turnbull's estimator fits the distribution that makes the observed
intervals most likely: EM, each task's unit of probability spread over the cells its interval
covers in proportion to the current masses, then the masses re-estimated from those shares. An
exact duration (Ace's records carry ``created_at`` and ``finished_at``) is an interval of one cell;
a wait given up at ``a`` is ``(a, inf)``.

Cost: the durations are put on a grid of ``floor / 16`` (coarser when they span more than 256
cells); each EM iteration is linear in distinct observations + cells (a running sum and a
difference array, not a cells x observations matrix). For 256 tasks a refit costs 0.9-4 ms in
CPython with intervals (43-245 cells), 0.4-0.6 ms with exact durations (no EM needed), done every
32 ends (:class:`Aimer`); a decision reads the cached aim (2-3 us).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence

#: EM iterations per fit (from a spread-out start, the masses move little after twenty).
ITERATIONS = 20
#: Smoothing passes per EM iteration (EMS).
SMOOTH = 1
#: Grid cells per floor, and the most cells a fit uses.
PER_FLOOR = 16
MAX_CELLS = 256


def grid_step(intervals: Sequence[tuple[float, float]], floor: float) -> float:
    """The grid's cell width for ``intervals`` ((lo, hi), hi = inf when right-censored) under ``floor``."""
    top = max((hi if hi != math.inf else lo) for lo, hi in intervals)
    per = min(PER_FLOOR, max(1, math.floor(MAX_CELLS * floor / top))) if top > 0 else PER_FLOOR
    return max(floor / per, top / MAX_CELLS)  # never more than MAX_CELLS (a floor tiny against the durations)


def survival_grid(
    intervals: Sequence[tuple[float, float]], h: float, iterations: int = ITERATIONS, smooth: int = SMOOTH
) -> list[float]:
    """``S(j * h)`` for ``j = 0 .. n``: the share of tasks still running ``j * h`` seconds in, fitted
    to ``intervals`` ((lo, hi]: a task running at ``lo``, ended by ``hi``; lo == hi an exact
    duration; hi = inf a task still running at ``lo``). The last value is the mass past the grid
    (right-censored tasks never seen to end).

    EM on the grid's cells, each iteration O(observations + cells): the masses' running sum gives
    each observation's probability (the sum over its cells), a difference array spreads its share
    back. After each step the masses are smoothed (``smooth`` passes of a 1-2-1 kernel: Silverman's
    EMS): the plain NPMLE piles mass onto the few cells where many wide intervals overlap, which
    under a floor-wide grid of polls says little about where inside the floor tasks end."""
    obs: dict[tuple[int, int], int] = {}
    top = 0
    for lo, hi in intervals:
        i = int(lo / h)
        j = -1 if hi == math.inf else max(i + 1, math.ceil(hi / h - 1e-9))
        top = max(top, j)
        obs[(i, j)] = obs.get((i, j), 0) + 1
    cells = top + 1  # cells 0..top-1 on the grid (to the last end seen), then cell "top": past it
    ranges = [(min(i, top), cells, w) if j < 0 else (i, j, w) for (i, j), w in obs.items()]
    total = float(sum(w for _, _, w in ranges))
    # Start: each observation's weight spread evenly over its cells.
    diff = [0.0] * (cells + 1)
    for a, b, w in ranges:
        diff[a] += w / (b - a)
        diff[b] -= w / (b - a)
    p, run = [0.0] * cells, 0.0
    for k in range(cells):
        run += diff[k]
        p[k] = run / total
    last = cells - 1  # the cell past the grid is never smoothed into
    for _ in range(iterations):
        cum = [0.0] * (cells + 1)
        acc = 0.0
        for k in range(cells):
            acc += p[k]
            cum[k + 1] = acc
        diff = [0.0] * (cells + 1)
        for a, b, w in ranges:
            den = cum[b] - cum[a]
            if den > 0:
                diff[a] += w / den
                diff[b] -= w / den
        run = 0.0
        for k in range(cells):
            run += diff[k]
            p[k] *= run / total
        for _ in range(smooth if last > 1 else 0):  # mass-preserving: reflected at both ends
            q = p[:]
            q[0] = 0.75 * p[0] + 0.25 * p[1]
            for k in range(1, last - 1):
                q[k] = 0.25 * p[k - 1] + 0.5 * p[k] + 0.25 * p[k + 1]
            q[last - 1] = 0.25 * p[last - 2] + 0.75 * p[last - 1]
            p = q
    s = [1.0] * (cells + 1)
    left = 1.0
    for k in range(last):
        left -= p[k]
        s[k + 1] = max(0.0, left)
    s[cells] = max(0.0, left)  # mass past the grid: "still running" at its end
    return s


def aim(survival: Sequence[float], h: float, floor: float, poll_cost: float, start: float = 0.0) -> float | None:
    """The first poll ``x > start`` that, with every later poll ``floor`` after the one before, makes
    mean notice time + ``poll_cost`` x polls least for tasks still running at ``start``; None when
    the grid ends before ``start``. ``survival``: :func:`survival_grid`'s ``S(j * h)``.

    Notice time ``x + floor * T(x)`` and polls ``1 + T(x)``, ``T(x) = sum_k S(x + k * floor)``: ``T``
    for every cell at once by a suffix sum with stride ``floor / h``, so O(cells)."""
    n = len(survival) - 1  # the last entry is the mass past the grid, not a time
    m = max(1, round(floor / h))
    first = max(1, math.ceil(start / h - 1e-9))
    if first >= n:
        return None
    t = [0.0] * (n + m)
    for j in range(n - 1, -1, -1):
        t[j] = survival[j] + t[j + m]
    k = (floor + poll_cost) / max(survival[first - 1], 1e-9)  # per task still running at ``start``
    best_j, best = first, math.inf
    for j in range(first, n):
        c = j * h + k * t[j]
        if c < best:
            best, best_j = c, j
    return best_j * h


class Aimer:
    """A learner's first poll under a floor: the fit behind it, refreshed every ``REFIT`` ends, and
    the probes that keep that fit informed.

    With exact durations (Ace) the fit is of the learner's window. With intervals only (AILab) every
    task aimed at the same ``x`` is seen at ``x, x + floor, ...`` and nothing tells where between those
    it ended: a fit of such intervals is free to pile their mass anywhere inside, and the aim it gives
    can lock itself in. So a share of first polls (all of them until ``MIN_PROBES`` are known or
    under way, then ``explore``) are *probes*: at a random phase within half a floor of the aim. Their intervals, the
    last ``capacity`` of them, are what the fit uses (the learner's window until there are enough):
    random inspection times, from which Turnbull's estimate is consistent.
    """

    __slots__ = ("_aims", "_changes", "_fit", "_inexact", "_last", "_probe_obs", "_probes")

    REFIT = 32
    MIN_PROBES = 32
    #: Probes waiting for their task's end at most (tokens never finished are forgotten beyond it).
    MAX_PENDING = 1 << 16

    def __init__(self, capacity: int) -> None:
        self._probes: set[int] = set()  # tokens of tasks whose first poll was a probe
        self._probe_obs: deque[tuple[float, float]] = deque(maxlen=capacity)
        self._last = -1  # the token begun last: the one whose first poll is being placed
        self._fit: tuple[float, float, list[float]] | None = None  # (floor, grid step, S on the grid)
        self._aims: dict[tuple[float, float], float | None] = {}
        self._changes = 0
        self._inexact = False

    def probes(self) -> list[tuple[float, float]]:
        """The probes' (lo, hi) intervals, oldest first (saved with the learner's durations)."""
        return list(self._probe_obs)

    def load_probes(self, rows: Sequence[tuple[float, float]]) -> None:
        for lo, hi in rows:
            if 0 <= lo <= hi:
                self._probe_obs.append((lo, hi))
        self._fit = None

    def begun(self, token: int) -> None:
        self._last = token

    def ended(self, token: int, lo: float, hi: float) -> None:
        """The task of ``token`` was seen running at ``lo`` and ended by ``hi`` (``inf``: given up)."""
        self._changes += 1
        if token in self._probes:
            self._probes.discard(token)
            self._probe_obs.append((lo, hi))

    def probing(self, u: float, explore: float) -> bool:
        """Whether the first poll being placed is a probe (``u``: uniform in [0, 1)); marks it if so."""
        if len(self._probe_obs) + len(self._probes) >= self.MIN_PROBES and u >= explore:
            return False
        if len(self._probes) >= self.MAX_PENDING:
            self._probes.clear()
        self._probes.add(self._last)
        return True

    @property
    def inexact(self) -> bool:
        """Whether the last fit was of intervals (durations not known exactly)."""
        return self._inexact

    def aim(
        self, floor: float, poll_cost: float, start: float, window: Callable[[], Sequence[tuple[float, float]]]
    ) -> float | None:
        """:func:`aim` on the fit of the probes (when enough), else of the (lo, hi) pairs ``window()``
        gives (called only when the fit is refreshed)."""
        key = (floor, poll_cost)
        if self._fit is None or self._fit[0] != floor or self._changes >= self.REFIT:
            self._changes = 0
            self._aims.clear()
            iv = [(lo, hi) for lo, hi in window() if lo > 0 or hi > 0]
            if not iv:
                self._fit = None
                return None
            self._inexact = 2 * sum(lo < hi for lo, hi in iv) > len(iv)
            if self._inexact and len(self._probe_obs) >= self.MIN_PROBES:
                iv = list(self._probe_obs)
            h = grid_step(iv, floor)
            if self._inexact:
                fitted = survival_grid(iv, h)
            else:  # exact durations, mostly: little for EM to spread (nothing when all are), nothing to smooth
                exact = all(lo == hi for lo, hi in iv)
                fitted = survival_grid(iv, h, iterations=0 if exact else ITERATIONS, smooth=0)
            self._fit = (floor, h, fitted)
        elif start <= 0 and key in self._aims:
            return self._aims[key]
        _, h, s = self._fit
        x = aim(s, h, floor, poll_cost, start)
        if start <= 0:
            self._aims[key] = x
        return x
