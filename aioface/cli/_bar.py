"""The rich progress bar itself (imported only when a bar is drawn): its live columns, the time
remaining that counts the limits, and the limit-wait line under it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rich.console import RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column
from rich.text import Text


class LiveColumn(ProgressColumn):
    """A column drawn afresh on every refresh from ``text()`` (counts that change between outcomes)."""

    def __init__(self, text: Callable[[], str]) -> None:
        super().__init__(table_column=Column(no_wrap=True))
        self._text = text

    def render(self, task: Task) -> Text:
        return Text(self._text(), no_wrap=True)


class RemainingColumn(ProgressColumn):
    """Time remaining: ``eta(rich's estimate from the recent rate)``, which counts the limits too."""

    max_refresh = 0.5

    def __init__(self, eta: Callable[[float | None], float | None]) -> None:
        super().__init__()
        self._eta = eta

    def render(self, task: Task) -> Text:
        seconds = self._eta(task.time_remaining)
        return Text(clock(seconds), style="progress.remaining")


def clock(seconds: float | None) -> str:
    """``H:MM:SS`` (``-:--:--`` when unknown), as rich shows time remaining."""
    if seconds is None:
        return "-:--:--"
    minutes, s = divmod(int(seconds + 0.999), 60)  # rounded up: "0:00:00" only when done
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{s:02d}"


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


def make_bar(
    live: Iterable[Callable[[], str]],
    eta: Callable[[float | None], float | None],
    note: Callable[[], str],
    console: Any,
) -> Bar:
    """The CLI's bar: label, bar, done/total, the ``live`` columns, elapsed, time remaining."""
    return Bar(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *(LiveColumn(text) for text in live),
        TimeElapsedColumn(),
        RemainingColumn(eta),
        note=note,
        console=console,
    )


__all__ = ["Bar", "LiveColumn", "RemainingColumn", "clock", "make_bar"]
