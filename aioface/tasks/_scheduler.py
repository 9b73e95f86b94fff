"""One scheduler per provider for every single-task wait: a heap of due times, polled by workers.

``wait()``, ``swap()``, ``result()`` and Ace's async tasks each used to poll in a loop of their
own (a coroutine, a cancel scope and a timer or gate future per task, woken at each poll). Here a
waiting task is a row (id, submission time, learner token, last answer, a future) in the
provider's one heap of due times; one timer (``loop.call_at``) is armed for the earliest row, and
due rows are polled by at most ``concurrency`` short-lived worker tasks (the connection pool's
size). The caller awaits the row's future: nothing else of it runs until its task has ended.

Each row carries its own :class:`WaitPlan` (what a call through a client or a view resolved: the
poll policy and deadline, the learner, the ``on_status`` in force, how to poll one task and read
the answer), so waits through different views share the heap and keep their own options. Polls
run in the scope of the call that registered them (``with_options`` scopes applied again), in a
context of their own (nothing of the first caller's context leaks into the workers).

How many polls run at once adapts to the loop (:class:`Pace`): while workers are busy a probe timer
measures how late the loop runs it; when the loop is late (the client's CPU, not the network, bounds
the polls: a saturated loopback, a busy program) the number of workers shrinks, multiplicatively,
down to a floor, and grows back while the loop is on time, up to the pool's size. Only the pace
changes: every due row is still polled, in order of due time, and deadlines are checked as before.

The timing is :func:`~aioface.tasks._polling.next_delay`'s, as in ``wait_many``: learned, jittered,
at least the policy's floor between two polls of a task, never past the deadline (counted from
submission; one poll still when a wait starts after it). A poll that fails ends only its task; a
cancelled waiter gives up its row (the learner hears it was still running) and nothing else.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import math
import random
from abc import ABC, abstractmethod
from collections import deque
from typing import Any, Generic, TypeVar

import anyio

from .. import _otel
from .._errors import ClientClosedError
from .._options import Options, applied
from ._learn import DurationLearner
from ._polling import PollPolicy, next_delay
from ._waitmany import PollKind

T = TypeVar("T")

_RUNNING = frozenset(("queued", "processing"))
_NONE = -(2**62)  # no status seen yet (a code no provider sends)


class WaitPlan(ABC, Generic[T]):
    """How the waits of one call are done: the provider subclasses it with :meth:`poll` (one poll,
    classified as ``(kind, code, value)``) and the error makers; the scheduler does the rest.

    ``policy`` (deadline, floor, jitter), ``learner`` (None: a task of unknown age, backoff only),
    ``rng`` and ``scope`` (the ``with_options`` scope in force when the call was made, applied
    again around each poll and status event) are the call's own: a view's waits keep its options.
    """

    __slots__ = ("learner", "policy", "rng", "scope", "tells")

    def __init__(
        self,
        policy: PollPolicy,
        learner: DurationLearner | None,
        rng: random.Random | None,
        scope: Options | None,
        tells: bool = True,
    ) -> None:
        self.policy = policy
        self.learner = learner
        self.rng = rng
        self.scope = scope
        #: Whether anyone listens to status events (an ``on_status`` in force): when not, a task's
        #: waiter is woken only by its end.
        self.tells = tells

    @abstractmethod
    async def poll(self, task_id: str) -> tuple[PollKind, int, T | None]:
        """One poll of ``task_id``: ``(kind, status code, result when done)``; raises when it failed."""
        ...

    async def announce(self, kind: PollKind, task_id: str, code: int) -> None:
        """Tell ``on_status`` that ``task_id`` is ``kind`` (queued, processing or failed); by default
        nothing. Called in the waiter's own task and context (as its callback expects), not a worker's."""

    def announces(self, code: int) -> bool:
        """Whether a running answer with ``code`` is announced (not an unknown status, say)."""
        return True

    def took(self, task_id: str) -> float | None:
        """The duration of ``task_id`` as its last poll's record told it (seconds), for the learner."""
        return None

    @abstractmethod
    def failed(self, task_id: str, code: int, value: T | None) -> Exception:
        """The error of a task that ended failed (``value``: what the poll returned with it)."""
        ...

    @abstractmethod
    def timed_out(self, task_id: str, deadline: float) -> Exception:
        """The error of a task not done within ``deadline`` seconds of its submission."""
        ...


class Pace:
    """How many polls a scheduler runs at once: additive increase, multiplicative decrease on the
    event loop's lag (how late a probe timer runs), between ``floor`` and the pool's size.

    A late loop means the client's CPU bounds the polls: more of them in flight only make each loop
    turn longer (every caller waits that long), not the polls faster, so their number is cut; a loop
    on time means the network bounds them, so it grows back. Lag from anything else (the program's
    own work, a GC pause) slows the polls too, never stops them (``floor`` >= 1).
    """

    __slots__ = ("calm", "floor", "high", "limit", "low")

    #: Seconds between two probes while polls run.
    EVERY = 0.02

    def __init__(self, *, floor: int = 4, high: float = 0.015, low: float = 0.005) -> None:
        self.limit = 0  # 0: not cut yet (the pool's size)
        self.floor = max(1, floor)
        self.high = high  # lag (seconds) over which the number of polls is cut
        self.low = low  # under which, twice in a row, it grows (one probe on time is chance)
        self.calm = 0  # probes on time in a row

    def of(self, cap: int) -> int:
        """The most polls in flight now, with a pool of ``cap``."""
        return min(self.limit, cap) if self.limit else cap

    def adapt(self, lag: float, cap: int) -> int:
        """The limit after a probe ran ``lag`` seconds late, with a pool of ``cap``."""
        limit = self.of(cap)
        if lag > self.high:
            self.calm = 0
            limit = max(min(self.floor, cap), limit * 3 // 4)
        elif lag < self.low:
            self.calm += 1
            if self.calm >= 2:
                limit = min(cap, limit + max(1, limit // 10))
        else:
            self.calm = 0
        self.limit = limit
        return limit


class _Note:
    """What a worker wakes a waiter with to announce a status change (then waits on a new future)."""

    __slots__ = ("code", "kind")

    def __init__(self, kind: PollKind, code: int) -> None:
        self.kind = kind
        self.code = code


class _Row:
    """One waiting task."""

    __slots__ = ("ended", "future", "pending", "plan", "polled", "polls", "seen", "start", "task_id", "token")

    def __init__(self, task_id: str, plan: WaitPlan[Any], start: float, seen: int, token: int) -> None:
        self.task_id = task_id
        self.plan = plan
        self.start = start  # submission time (loop clock)
        self.seen = seen  # the last running status code announced (or seen)
        self.token = token  # the learner's
        self.pending = 0.0  # seconds after submission of the last poll that found it running
        self.polled = False
        self.polls = 0  # polls sent for it (told to the waiter's trace span, which a worker cannot reach)
        self.ended = False
        self.future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()


class Scheduler:
    """Every single-task wait of one provider (per client, shared by its views): see the module docs.

    Started lazily by the first :meth:`wait`; :meth:`close` (the client closing) ends every wait
    still registered with :class:`~aioface.ClientClosedError`.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        # (due, sequence) pairs, which the cyclic GC does not track, and the rows by sequence.
        self._heap: list[tuple[float, int]] = []
        self._rows: dict[int, _Row] = {}
        self._seq = 0
        self._ready: deque[_Row] = deque()  # due, waiting for a worker
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._workers: set[asyncio.Task[None]] = set()
        self._concurrency = 1  # the pool's size: the most polls ever in flight
        self.pace = Pace()
        self._probe: asyncio.TimerHandle | None = None
        self._probe_at = 0.0
        self._open = 0  # rows registered and not ended
        self._polls = 0

    def __repr__(self) -> str:
        return f"Scheduler({self.name!r}, {self._open} waiting, {len(self._workers)} workers)"

    @property
    def waiting(self) -> int:
        """Tasks registered and not yet ended."""
        return self._open

    @property
    def workers(self) -> int:
        """Worker tasks alive now (at most the concurrency)."""
        return len(self._workers)

    @property
    def limit(self) -> int:
        """The most polls in flight now (adapted to the loop's lag, at most the pool's size)."""
        return self.pace.of(self._concurrency)

    @property
    def polls(self) -> int:
        """Polls sent since the scheduler was made."""
        return self._polls

    # -- the callers' side --------------------------------------------------------------
    async def wait(
        self,
        plan: WaitPlan[T],
        task_id: str,
        *,
        concurrency: int,
        start: float | None = None,
        first_delay: bool = True,
        seen: int | None = None,
    ) -> T:
        """Wait for ``task_id`` (submitted at ``start``, loop clock; default now) as ``plan`` says;
        its result, or the error that ended it. ``first_delay=False`` polls at once; ``seen``: the
        status already announced. ``concurrency``: the most polls in flight (the pool's size)."""
        row = self._register(plan, task_id, concurrency, start, first_delay, seen)
        try:
            while True:
                got = await row.future
                if type(got) is not _Note:
                    result: T = got
                    return result
                await plan.announce(got.kind, task_id, got.code)  # here: the caller's task and context
        finally:
            if _otel.ENABLED and row.polls:  # the workers polled outside the caller's span: tell it here
                _otel.polled(row.polls)
            if not row.ended:  # the caller was cancelled: give the row up, nothing else
                self._end(row)
                if not row.future.done():
                    row.future.cancel()

    def _register(
        self,
        plan: WaitPlan[Any],
        task_id: str,
        concurrency: int,
        start: float | None,
        first_delay: bool,
        seen: int | None,
    ) -> _Row:
        """A new row in the heap (apart from :meth:`wait`, whose frame every waiting task keeps: the
        fewer its locals, the smaller it is)."""
        self._concurrency = max(1, concurrency)
        now = asyncio.get_running_loop().time()
        learner = plan.learner
        row = _Row(
            task_id,
            plan,
            now if start is None else start,
            _NONE if seen is None else seen,
            learner.begin() if learner is not None else 0,
        )
        self._open += 1
        delay = next_delay(plan.policy, now - row.start, learner, plan.rng) if first_delay else 0.0
        self._push(now + (delay or 0.0), row)  # past its deadline already: one poll still
        return row

    def close(self) -> None:
        """End every registered wait with ClientClosedError and stop the timer and workers."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, math.inf
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        rows = [*self._rows.values(), *self._ready]
        self._heap.clear()
        self._rows.clear()
        self._ready.clear()
        for task in list(self._workers):
            task.cancel()  # its row ends below or in the worker's handler
        for row in rows:
            self._deliver(row, None, ClientClosedError(f"the client closed while waiting for {row.task_id}"))

    # -- bookkeeping ----------------------------------------------------------------------
    def _push(self, due: float, row: _Row) -> None:
        self._seq = seq = self._seq + 1
        self._rows[seq] = row
        heapq.heappush(self._heap, (due, seq))
        if due < self._timer_at:
            self._arm(due)

    def _arm(self, due: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = due
        self._timer = asyncio.get_running_loop().call_at(due, self._fire)

    def _fire(self) -> None:
        """The timer: due rows for the idle worker places (never more: 100,000 rows due at once
        are popped a pool's worth at a time, by the workers as they free up), then re-armed."""
        self._timer, self._timer_at = None, math.inf
        now = asyncio.get_running_loop().time()
        self._fill(now)
        self._rearm(now)

    def _fill(self, now: float) -> None:
        """Due rows for the idle worker places, and workers for them."""
        heap, ready = self._heap, self._ready
        room = self.limit - len(self._workers) - len(ready)
        while room > 0 and heap and heap[0][0] <= now:
            row = self._rows.pop(heapq.heappop(heap)[1])
            if not row.ended:
                ready.append(row)
                room -= 1
        self._spawn()

    def _rearm(self, now: float) -> None:
        """Arm the timer for the earliest row, unless it is due and the busy workers will take it."""
        heap = self._heap
        if heap and self._timer is None and not (heap[0][0] <= now and self._workers):
            self._arm(heap[0][0])

    def _spawn(self) -> None:
        """Workers for the ready rows, up to the concurrency."""
        loop = asyncio.get_running_loop()
        for _ in range(min(self.limit - len(self._workers), len(self._ready))):
            # A context of its own: nothing of whichever caller started it leaks into the polls.
            task = loop.create_task(self._work(), context=contextvars.Context())
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)
        if self._workers and self._probe is None:
            self._probe_at = loop.time() + Pace.EVERY
            self._probe = loop.call_at(self._probe_at, self._measure)

    def _measure(self) -> None:
        """The probe: how late it ran is the loop's lag; the limit adapts to it (see :class:`Pace`).
        Re-armed while workers run; more workers for due rows when the limit grew."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._probe = None
        self.pace.adapt(now - self._probe_at, self._concurrency)
        self._fill(now)
        if self._workers and self._probe is None:
            self._probe_at = now + Pace.EVERY
            self._probe = loop.call_at(self._probe_at, self._measure)

    def _next(self) -> _Row | None:
        """The next row to poll: a ready one, or the earliest if it is due; None when none is."""
        ready, heap = self._ready, self._heap
        while ready:
            row = ready.popleft()
            if not row.ended:
                return row
        now = asyncio.get_running_loop().time()
        while heap and heap[0][0] <= now:
            row = self._rows.pop(heapq.heappop(heap)[1])
            if not row.ended:
                return row
        return None

    def _end(self, row: _Row, ended_at: float | None = None, exact: float | None = None) -> None:
        """The row is done with; the learner hears an end at ``ended_at``, else that it was given up."""
        row.ended = True
        self._open -= 1
        learner = row.plan.learner
        if learner is not None:
            if ended_at is not None:
                learner.finish(row.token, row.pending, ended_at, exact)
            else:
                learner.abandon(row.token, row.pending)

    def _deliver(
        self,
        row: _Row,
        value: object,
        error: BaseException | None,
        ended_at: float | None = None,
        exact: float | None = None,
    ) -> None:
        if row.ended:
            return
        self._end(row, ended_at, exact)
        fut = row.future
        if not fut.done():
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(value)

    @staticmethod
    def _note(row: _Row, kind: PollKind, code: int) -> None:
        """Wake the waiter to announce ``kind``; what comes next goes on a new future."""
        told = row.future
        if told.done():  # the waiter is gone (a note not yet read is on an earlier future)
            return
        row.future = told.get_loop().create_future()
        told.set_result(_Note(kind, code))

    # -- the workers ------------------------------------------------------------------------
    async def _work(self) -> None:
        try:
            while len(self._workers) <= self.limit and (row := self._next()) is not None:
                try:
                    await self._step(row)
                except asyncio.CancelledError:  # the client closed during this poll
                    self._deliver(row, None, ClientClosedError(f"the client closed while waiting for {row.task_id}"))
                    raise
                except Exception as exc:  # never lose a task to a bug in a callback: its waiter hears it
                    self._deliver(row, None, exc)
        finally:
            me = asyncio.current_task()
            if me is not None:
                self._workers.discard(me)
            self._rearm(asyncio.get_running_loop().time())

    async def _step(self, row: _Row) -> None:
        """Poll ``row`` once: delivered when it ended, back in the heap when it runs on."""
        plan = row.plan
        policy = plan.policy
        task_id = row.task_id
        deadline_at = row.start + policy.deadline
        now = anyio.current_time()
        if row.polled and now >= deadline_at:
            self._deliver(row, None, plan.timed_out(task_id, policy.deadline))
            return
        with applied(plan.scope):
            try:
                with anyio.move_on_after(deadline_at - now if now < deadline_at else math.inf) as cancel:
                    self._polls += 1
                    row.polls += 1
                    kind, code, value = await plan.poll(task_id)
            except Exception as exc:  # the poll failed (after its retries): this task's outcome
                self._deliver(row, None, exc)
                return
            if cancel.cancelled_caught:
                self._deliver(row, None, plan.timed_out(task_id, policy.deadline))
                return
            if row.ended:  # its waiter left during the poll
                return
            at = anyio.current_time() - row.start  # the answer's time
            row.polled = True
            if kind in _RUNNING:
                if code != row.seen and plan.tells and plan.announces(code):
                    self._note(row, kind, code)
                row.seen = code
            elif kind == "done":
                self._deliver(row, value, None, at, plan.took(task_id))
                return
            else:
                error = plan.failed(task_id, code, value)
                if plan.tells:
                    self._note(row, "failed", code)  # heard before the error
                self._deliver(row, None, error, at)  # a failure is an end, for the learner
                return
        if row.ended:
            return
        row.pending = at
        delay = next_delay(policy, at, plan.learner, plan.rng, polled=True)
        if delay is None:
            self._deliver(row, None, plan.timed_out(task_id, policy.deadline))
            return
        self._push(anyio.current_time() + delay, row)


__all__ = ["Pace", "Scheduler", "WaitPlan"]
