"""Running a command's coroutine: the event loop (uvloop when installed), Ctrl-C and SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import NoReturn

from .._config import LOOP_ENV


class Interrupted(Exception):
    """Ctrl-C (SIGINT) stopped the run (raised instead of KeyboardInterrupt, which click would swallow)."""


class Terminated(Exception):
    """SIGTERM arrived: the run was cancelled as Ctrl-C cancels it."""


async def cancel_on_sigterm(coro: Awaitable[int]) -> int:
    """Run ``coro``; SIGTERM cancels it (part files removed, journal closed) and raises Terminated."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    terminated = False

    def on_term() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, on_term)
    try:
        code = await coro
    except (asyncio.CancelledError, Exception):
        if terminated:  # whatever the cancelled run ended with, it ended because of SIGTERM
            raise Terminated from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
    if terminated:  # a run that swallowed the cancellation still exits 143
        raise Terminated
    return code


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when ``aioface[speed]`` is installed (``AIOFACE_LOOP=asyncio`` turns it off)."""
    if os.environ.get(LOOP_ENV, "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


#: The CLI's first-generation GC threshold while a command runs (Python's default is 700): a run
#: makes many short-lived objects per request, most gone before a collection this far apart.
GC_GEN0 = 20_000


@contextlib.contextmanager
def command_gc() -> Iterator[None]:
    """The GC settings of a command's run, put back after: the objects made by the imports frozen
    (never scanned again) and young collections further apart. Only the CLI, which owns its process,
    does this: the library never touches the GC."""
    threshold = gc.get_threshold()
    gc.freeze()
    if threshold[0]:  # 0: automatic collection is off, and stays off
        gc.set_threshold(max(threshold[0], GC_GEN0), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def run_command(coro: Awaitable[int]) -> NoReturn:
    """Run a command's coroutine to its exit code and exit with it.

    Errors go up to the command group, which prints them and maps them to exit codes:
    :class:`Interrupted` for Ctrl-C, :class:`Terminated` for SIGTERM, aioface's errors as they are.
    """
    factory = loop_factory()
    logging.getLogger("aioface").debug("event loop: %s", "uvloop" if factory else "asyncio")
    try:
        with command_gc(), asyncio.Runner(loop_factory=factory) as runner:
            code: int = runner.run(cancel_on_sigterm(coro))
    except KeyboardInterrupt:
        raise Interrupted from None
    sys.exit(code)
