"""Progress on the terminal: the bar, calls by stage, the limit-wait line under it; plain lines without one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text

from .._dispatch import LimitWait
from .._errors import AiofaceError, APIError, TaskError, TaskTimeoutError
from .._options import Options
from .._types import TaskEvent

out_console = Console()
err_console = Console(stderr=True)


class LiveColumn(ProgressColumn):
    """A column drawn afresh on every refresh from ``text()`` (counts that change between outcomes)."""

    def __init__(self, text: Callable[[], str]) -> None:
        super().__init__(table_column=Column(no_wrap=True))
        self._text = text

    def render(self, task: Task) -> Text:
        return Text(self._text(), no_wrap=True)


class Bar(Progress):
    """The progress table, and under it a line about a long wait for a rate-limit slot (if any)."""

    def __init__(self, *columns: str | ProgressColumn, note: Callable[[], str], **kwargs: Any) -> None:
        self._note = note
        super().__init__(*columns, **kwargs)

    def get_renderables(self) -> Iterable[RenderableType]:
        yield from super().get_renderables()
        note = self._note()
        if note:
            yield Text(note, style="yellow", no_wrap=True, overflow="ellipsis")


class Tracker:
    """Progress on a terminal (rich); nothing but the summary otherwise.

    Requests waiting for a rate-limit slot are counted apart from those in flight, and a long wait
    (``Client(on_limit_wait=announce_wait)``) shows on the bar with a countdown to the next slot.
    """

    #: The tracker on screen: where :func:`announce_wait` sends notices.
    current: ClassVar[Tracker | None] = None

    def __init__(self, total: int | None, label: str, quiet: bool = False) -> None:
        self.enabled = err_console.is_terminal and not quiet
        self.ok = 0
        self.failed = 0
        self.start = time.monotonic()
        self._running: Callable[[], int] | None = None
        self._waiting: Callable[[], int] | None = None
        self._last_running = 0
        self._notice: tuple[LimitWait, float] | None = None  # the event, and when its slot comes
        self.progress = Bar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            LiveColumn(self._counts),
            LiveColumn(self._stage_text),
            LiveColumn(self._rate),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            note=self._wait_text,
            console=err_console,
            disable=not self.enabled,
        )
        self.task = self.progress.add_task(label, total=total)
        #: Calls queued / processing / downloading, from task events (``on_status``).
        self.stages = Stages(self.show_stages)

    def __enter__(self) -> Tracker:
        self.progress.__enter__()
        Tracker.current = self
        return self

    def __exit__(self, *exc: object) -> None:
        Tracker.current = None
        self.progress.__exit__(None, None, None)

    def show_stages(self, text: str) -> None:
        """Called on each stage change (the bar reads :meth:`_stage_text` live)."""

    def _stage_text(self) -> str:
        return self.stages.text() if self.stages.of else ""

    def watch(self, running: Callable[[], int] | None = None, waiting: Callable[[], int] | None = None) -> None:
        """Read the jobs running and the requests queued for a slot live (cheap reads: the bar is drawn
        from another thread)."""
        self._running = running
        self._waiting = waiting

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
        self.progress.update(self.task, completed=self.ok + self.failed)


def announce_wait(event: LimitWait) -> None:
    """``Client(on_limit_wait=...)`` for the CLI: on the progress bar, else a plain line on stderr."""
    tracker = Tracker.current
    if tracker is not None and tracker.enabled:
        tracker.limit_wait(event)
    else:
        err_console.print(str(event), markup=False, highlight=False, soft_wrap=True)


class Stages:
    """Where each running call is (queued / processing / downloading), from ``on_status`` events.

    A call is known by its task: a fan-out worker runs one call at a time, and :meth:`clear`
    forgets it when the call ends however it ends."""

    def __init__(self, show: Callable[[str], None]) -> None:
        self._show = show
        self.of: dict[object, str] = {}

    def on_status(self, event: TaskEvent) -> None:
        me = asyncio.current_task()
        if event.status in ("done", "failed"):
            self.of.pop(me, None)
        else:
            self.of[me] = "processing" if event.status == "callback" else event.status
        # Calls that ended by an error (no event says so) end with their task: forget those.
        for t in [t for t in self.of if isinstance(t, asyncio.Task) and t.done()]:
            del self.of[t]
        self._show(self.text())

    def clear(self) -> None:
        if self.of.pop(asyncio.current_task(), None) is not None:
            self._show(self.text())

    def counts(self) -> dict[str, int]:
        c = {"queued": 0, "processing": 0, "downloading": 0}
        for stage in self.of.values():
            c[stage] = c.get(stage, 0) + 1
        return c

    def text(self) -> str:
        return " ".join(f"{k} {v}" for k, v in self.counts().items())

    def options(self) -> Options:
        """Options whose ``on_status`` feeds these counts (apply around the fan-out)."""
        return Options(on_status=self.on_status)


def print_summary(ok: int, failed: int, elapsed: float, where: Path | None, skipped: int = 0) -> None:
    """The last line of a run: counts, time, rate and where the files are."""
    rate = (ok + failed) / elapsed if elapsed > 0 else 0.0
    parts = [f"{ok} ok", f"{failed} failed"]
    if skipped:
        parts.append(f"{skipped} already done")
    msg = f"{', '.join(parts)} in {elapsed:.1f}s ({rate:.1f}/s)"
    if where is not None:
        msg += f"; files in {where}"
    out_console.print(msg, highlight=False)


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
