"""Many calls at once for a command: a fan-out under the progress bar, failures reported as they come."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from .._client import Client
from .._options import applied
from .._types import ImageResult, Result
from ..providers import BatchOp
from ..tasks._fanout import FanOut
from ._params import Named
from ._progress import Tracker, print_failure

T = TypeVar("T")
R = TypeVar("R")


async def fan_out(
    client: Client,
    fn: Callable[[T], Awaitable[R]],
    items: Sequence[T],
    concurrency: int,
    label: str,
    quiet: bool = False,
    waiting: Callable[[], int] | None = None,
    limiter: object | None = None,
) -> tuple[list[tuple[T, R]], list[tuple[T, BaseException]]]:
    """``fn`` for each item, ``concurrency`` at once, under a progress bar: (successes, failures);
    time remaining counts the ``limiter``'s limits."""
    oks: list[tuple[T, R]] = []
    fails: list[tuple[T, BaseException]] = []
    with Tracker(len(items), label, quiet) as tracker:
        stages = tracker.stages

        async def tracked(item: T) -> R:
            try:
                return await fn(item)
            finally:
                stages.clear()

        with applied(stages.options()):  # the fan-out's tasks inherit it
            async with FanOut(tracked, items, concurrency=concurrency) as results:
                tracker.watch(lambda: results.in_flight, waiting, limiter)
                async for o in results:
                    if o.ok:
                        assert o.value is not None
                        oks.append((o.item, o.value))
                    else:
                        assert o.error is not None
                        fails.append((o.item, o.error))
                        print_failure(o.item, o.error)
                    tracker.update(o.ok, results.in_flight)
    return oks, fails


async def run_all(
    client: Client,
    provider: str,
    bop: BatchOp,
    items: Sequence[Named],
    out: Path,
    concurrency: int,
    label: str,
    quiet: bool,
) -> tuple[list[tuple[Named, Result]], list[tuple[Named, BaseException]]]:
    """Run ``bop`` for each (file stem, parameters), saved under ``out``."""
    ns = client.provider(provider)
    if bop.check is not None:
        for _, params in items:
            bop.check(ns, params)  # InvalidRequestError: exit 2, nothing sent
    limiter = client.limiter(provider)
    return await fan_out(
        client,
        lambda it: bop.run(ns, it[1], out / it[0]),
        items,
        concurrency,
        label,
        quiet,
        lambda: limiter.waiting,
        limiter,
    )


def image_of(result: Result) -> ImageResult:
    """The image an image operation returned."""
    if not isinstance(result, ImageResult):
        raise TypeError(f"expected an image result, got {type(result).__name__}")
    return result


def path_of(result: Result) -> Path:
    """The file an image operation saved (the CLI always gives a file)."""
    path = image_of(result).path
    assert path is not None
    return path
