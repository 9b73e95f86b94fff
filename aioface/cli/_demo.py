"""``aioface demo``: the emulator in-process and all three providers run against it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import click

from .._client import Client
from ..providers import BatchOp
from . import EXIT_OK, EXIT_SOME_FAILED
from ._fanout import path_of, run_all
from ._params import Named, concurrency_option, out_option, quiet_option
from ._progress import err_console, out_console, print_summary
from ._runner import run_command


@click.command()
@click.option("--count", "-n", default=24, show_default=True, type=click.IntRange(1, 10_000))
@out_option
@concurrency_option
@quiet_option
def demo(count: int, out: Path, concurrency: int, quiet: bool) -> None:
    """Start the emulator in-process and run all three providers against it.

    Generates COUNT faces concurrently at the Professional tier's limits (time compressed 60x),
    ages one face with Ace Data, swaps faces with Ace Data and with AILab, and prints a summary.
    """
    from ..emulator._demo import run_demo

    async def fan(
        client: Client, provider: str, bop: BatchOp, items: Sequence[Named], label: str
    ) -> tuple[list[Path], int]:
        oks, fails = await run_all(client, provider, bop, items, out, concurrency, label, quiet)
        return [path_of(r) for _, r in oks], len(fails)

    def say(line: str) -> None:
        out_console.print(line, highlight=False)

    def fail(error: BaseException) -> None:
        err_console.print(f"[red]failed[/red]: {error}", highlight=False)

    async def go() -> int:
        start = time.monotonic()
        oks, fails = await run_demo(out, count, fan=fan, say=say, fail=fail)
        print_summary(oks, fails, time.monotonic() - start, out)
        return EXIT_SOME_FAILED if fails else EXIT_OK

    run_command(go())
