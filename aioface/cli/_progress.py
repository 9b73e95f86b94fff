"""Progress on the terminal: the bar, calls by stage, the limit-wait line under it; plain lines without one."""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TextIO

from .._dispatch import LimitWait
from .._errors import AiofaceError, APIError, TaskError, TaskTimeoutError
from .._options import Options
from .._types import TaskEvent

if TYPE_CHECKING:
    from rich.console import Console

    from ._bar import Bar


class LazyConsole:
    """A rich ``Console`` made on first use: a run that prints nothing through it never imports rich."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._kwargs)
        return self._console

    def _plain(self) -> TextIO | None:
        """The stream, when rich would only pass text through: no console yet, not a terminal, and
        nothing in the environment asks for one."""
        stream = sys.stderr if self._kwargs.get("stderr") else sys.stdout
        if self._console is None and not _forced_terminal() and not stream.isatty():
            return stream
        return None

    @property
    def is_terminal(self) -> bool:
        return self._plain() is None and self.console.is_terminal

    def print(self, *objects: Any, **kwargs: Any) -> None:
        self.console.print(*objects, **kwargs)

    def line(self, text: str) -> None:
        """One line as it is (no markup, highlighting or wrapping): written straight to a stream that
        is not a terminal, where rich would add nothing (and is not imported for it)."""
        stream = self._plain()
        if stream is not None:
            stream.write(text + "\n")
            stream.flush()
        else:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)


def _forced_terminal() -> bool:
    """The environment asks rich for a terminal whatever the stream is (then rich decides)."""
    return any(os.environ.get(v) for v in ("FORCE_COLOR", "FORCE_TERMINAL", "TTY_COMPATIBLE", "TTY_INTERACTIVE"))


out_console = LazyConsole()
err_console = LazyConsole(stderr=True)


class TimeForLimiter(Protocol):
    """A limiter that can say how long its windows need for n more requests (both built-in ones)."""

    def time_for(self, n: int) -> float: ...


def time_remaining(left: int, observed: float | None, by_limits: float | None) -> float | None:
    """Seconds until ``left`` items are done: the estimate from the recent rate (``observed``) or the
    time the limits in force need (``by_limits``, from the limiter's ``time_for``), whichever is
    longer; None when there is nothing to go on yet. 50 left at 30/minute is about 100 s, however
    fast the first 30 went."""
    if left <= 0:
        return 0.0
    if observed is None or by_limits is None:
        return by_limits if observed is None else observed
    return max(observed, by_limits)


class Tracker:
    """Progress on a terminal (rich); nothing but the summary otherwise.

    Requests waiting for a rate-limit slot are counted apart from those in flight, and a long wait
    (``Client(on_limit_wait=announce_wait)``) shows on the bar with a countdown to the next slot.
    """

    #: The tracker on screen: where :func:`announce_wait` sends notices.
    current: ClassVar[Tracker | None] = None

    def __init__(self, total: int | None, label: str, quiet: bool = False) -> None:
        self.enabled = not quiet and err_console.is_terminal
        self.total = total
        self.ok = 0
        self.failed = 0
        self.start = time.monotonic()
        self._running: Callable[[], int] | None = None
        self._waiting: Callable[[], int] | None = None
        self._limiter: TimeForLimiter | None = None
        self._limits_done_at: float | None = None  # when the limits in force let the rest through
        self._checked_at = -math.inf
        self._last_running = 0
        self._notice: tuple[LimitWait, float] | None = None  # the event, and when its slot comes
        self.progress: Bar | None = None
        if self.enabled:  # rich's progress machinery is imported only to draw a bar
            from ._bar import make_bar

            live = (self._counts, self._stage_text, self._rate)
            self.progress = make_bar(live, self.eta, self._wait_text, err_console.console)
            self.task = self.progress.add_task(label, total=total)
        #: Calls queued / processing / downloading, from task events (``on_status``): counted only
        #: when something looks (the bar, or a ``show_stages`` of a subclass or test); otherwise the
        #: calls run with no status callback at all, and no event is built.
        shown = type(self).show_stages is not Tracker._show_nothing
        self.stages = Stages(self.show_stages if shown else None, active=self.enabled or shown)

    def __enter__(self) -> Tracker:
        if self.progress is not None:
            self.progress.__enter__()
        Tracker.current = self
        return self

    def __exit__(self, *exc: object) -> None:
        Tracker.current = None
        if self.progress is not None:
            self.progress.__exit__(None, None, None)

    def _show_nothing(self, text: str) -> None:
        """Called on each stage change (the bar reads :meth:`_stage_text` live)."""

    show_stages = _show_nothing

    def _stage_text(self) -> str:
        return self.stages.text() if self.stages.of else ""

    def watch(
        self,
        running: Callable[[], int] | None = None,
        waiting: Callable[[], int] | None = None,
        limiter: object | None = None,
    ) -> None:
        """Read the jobs running and the requests queued for a slot live (cheap reads: the bar is drawn
        from another thread); with the ``limiter`` they go through, time remaining counts its limits."""
        self._running = running
        self._waiting = waiting
        self._limiter = limiter if callable(getattr(limiter, "time_for", None)) else None  # type: ignore[assignment]
        self._check_limits(force=True)

    def _left(self) -> int:
        return 0 if self.total is None else max(0, self.total - self.ok - self.failed)

    def _check_limits(self, force: bool = False) -> None:
        """How long the limits in force need for the items not yet granted a slot (run on the event
        loop, not the bar's thread: the limiter is read where it changes)."""
        if self._limiter is None or self.total is None or not self.enabled:  # no bar: no estimate
            self._limits_done_at = None
            return
        now = time.monotonic()
        if not force and now - self._checked_at < 0.2:  # the bar shows it twice a second at most
            return
        self._checked_at = now
        running = self._running() if self._running is not None else self._last_running
        holding = running - (self._waiting() if self._waiting is not None else 0)  # sent or answered
        self._limits_done_at = now + self._limiter.time_for(max(0, self._left() - holding))

    def eta(self, observed: float | None) -> float | None:
        """Seconds remaining: rich's ``observed`` estimate (recent rate) or the limits', the longer."""
        done_at = self._limits_done_at
        by_limits = None if done_at is None else max(0.0, done_at - time.monotonic())
        return time_remaining(self._left(), observed, by_limits)

    def _counts(self) -> str:
        running = self._running() if self._running is not None else self._last_running
        text = f"ok {self.ok} failed {self.failed} in flight "
        if self._waiting is None:
            return f"{text}{running}"
        waiting = self._waiting()
        return f"{text}{max(0, running - waiting)} waiting {waiting}"

    def _rate(self) -> str:
        return f"{(self.ok + self.failed) / max(1e-9, time.monotonic() - self.start):.1f}/s"

    def _wait_text(self) -> str:
        notice = self._notice
        if notice is None:
            return ""
        left = notice[1] - time.monotonic()
        return str(replace(notice[0], seconds=left)) if left > 0 else ""

    def limit_wait(self, event: LimitWait) -> None:
        """Show a long wait on the bar, counting down to its slot."""
        self._notice = (event, time.monotonic() + event.seconds)

    def update(self, ok: bool, in_flight: int) -> None:
        if ok:
            self.ok += 1
        else:
            self.failed += 1
        self._last_running = in_flight
        self._check_limits()
        if self.progress is not None:
            self.progress.update(self.task, completed=self.ok + self.failed)


def announce_wait(event: LimitWait) -> None:
    """``Client(on_limit_wait=...)`` for the CLI: on the progress bar, else a plain line on stderr."""
    tracker = Tracker.current
    if tracker is not None and tracker.enabled:
        tracker.limit_wait(event)
    else:
        err_console.line(str(event))


class Stages:
    """Where each running call is (queued / processing / downloading), from ``on_status`` events.

    A call is known by its task: a fan-out worker runs one call at a time, and :meth:`clear`
    forgets it when the call ends however it ends. Counts are kept as events come (an event costs
    the same with 1 or 1000 calls running)."""

    def __init__(self, show: Callable[[str], None] | None, *, active: bool = True) -> None:
        self._show = show
        #: False: nobody reads the counts, so no callback is installed (:meth:`options` is None).
        self.active = active
        self.of: dict[object, str] = {}
        self._counts = {"queued": 0, "processing": 0, "downloading": 0}

    def _forget(self, key: object) -> bool:
        stage = self.of.pop(key, None)
        if stage is None:
            return False
        self._counts[stage] -= 1
        return True

    def on_status(self, event: TaskEvent) -> None:
        me = asyncio.current_task()
        if event.status in ("done", "failed"):
            self._forget(me)
        else:
            if me not in self.of:
                # A call starts. Calls that ended by an error (no event says so) end with their task:
                # forget those now (each started call looks once, so none is kept for long).
                for t in [t for t in self.of if isinstance(t, asyncio.Task) and t.done()]:
                    self._forget(t)
            else:
                self._forget(me)
            stage = "processing" if event.status == "callback" else event.status
            self.of[me] = stage
            self._counts[stage] = self._counts.get(stage, 0) + 1
        if self._show is not None:
            self._show(self.text())

    def clear(self) -> None:
        if self.of and self._forget(asyncio.current_task()) and self._show is not None:
            self._show(self.text())

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def text(self) -> str:
        c = self._counts
        if len(c) == 3:
            return f"queued {c['queued']} processing {c['processing']} downloading {c['downloading']}"
        return " ".join(f"{k} {v}" for k, v in c.items())

    def options(self) -> Options | None:
        """Options whose ``on_status`` feeds these counts (apply around the fan-out); None when
        nobody reads them (no bar): then no task event is made at all."""
        return Options(on_status=self.on_status) if self.active else None


def print_summary(ok: int, failed: int, elapsed: float, where: Path | None, skipped: int = 0) -> None:
    """The last line of a run: counts, time, rate and where the files are."""
    rate = (ok + failed) / elapsed if elapsed > 0 else 0.0
    parts = [f"{ok} ok", f"{failed} failed"]
    if skipped:
        parts.append(f"{skipped} already done")
    msg = f"{', '.join(parts)} in {elapsed:.1f}s ({rate:.1f}/s)"
    if where is not None:
        msg += f"; files in {where}"
    out_console.line(msg)


def print_failure(item: object, error: BaseException) -> None:
    """One failed item, on stderr, as the run goes (with how to fetch a result that was paid for)."""
    err_console.print(f"[red]failed[/red] {item}: {error}", highlight=False)
    for line in paid_hints(error):
        err_console.print(f"  {line}", highlight=False, soft_wrap=True)  # a command or URL stays whole


def paid_hints(error: BaseException) -> list[str]:
    """How to get a result the provider did (and billed) but that could not be kept: the command
    that waits for or fetches the task again, the result URL, or at least the request id."""
    if not isinstance(error, AiofaceError):
        return []
    provider = error.provider
    if isinstance(error, TaskTimeoutError):
        if error.task_id and provider:
            return [f"the task may still finish: aioface result --task-id {error.task_id} --provider {provider}"]
        return []
    if isinstance(error, TaskError):
        return []  # the provider says it failed: nothing to fetch
    task_id, url = error.task_id, error.result_url
    rid = None if isinstance(error, APIError) else error.request_id  # an API error's own id is no result
    if not (task_id or url or rid):
        return []
    lines = []
    if task_id and provider and _has_result_op(provider):
        lines.append(
            f"paid for but not saved: fetch it again with aioface result --task-id {task_id} --provider {provider}"
        )
    if url:
        lines.append(f"result URL (valid for hours; client.download fetches it): {url}")
    if not lines:
        ids = f"task {task_id}" if task_id else f"request {rid}"
        lines.append(f"paid for but not saved ({ids}); the provider keeps no copy to fetch again")
    return lines


def _has_result_op(provider: str) -> bool:
    from ..providers import operations

    return any(spec.name == provider for spec, _ in operations().get("result", ()))
