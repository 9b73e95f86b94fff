"""``aioface batch``: a JSON-lines file of jobs into a folder, with a journal to resume from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .._client import Client
from .._options import applied
from ..jobs._batch import count_jobs, run_batch
from . import EXIT_OK, EXIT_SOME_FAILED
from ._params import (
    check_out,
    concurrency_option,
    limit_option,
    out_option,
    parse_limit_options,
    quiet_option,
    store_option,
)
from ._progress import Tracker, announce_wait, err_console, out_console, print_summary
from ._runner import run_command


@click.command()
@click.argument("jobs", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@out_option
@concurrency_option
@limit_option
@store_option
@quiet_option
def batch(
    jobs: Path, out: Path, concurrency: int, limits: tuple[str, ...], limits_store: str | None, quiet: bool
) -> None:
    """Run the jobs of JOBS (one JSON object a line) into --out; rerun to resume.

    \b
    Lines look like:
      {"id": "a1", "op": "generate", "age": 30, "seed": 7}
      {"id": "b2", "op": "change_age", "image_url": "https://...", "ages": [60]}
      {"id": "c3", "op": "swap", "provider": "ailab", "source": "me.jpg", "target": "https://..."}
    Results go to OUT/results.jsonl, one line a job. Exit 0: all ok; 1: some failed; 2: bad usage.
    Example: aioface batch jobs.jsonl --out results -c 32
    """
    lim = parse_limit_options(limits, None)
    if str(jobs) == "-":
        jobs = Path("/dev/stdin")
    check_out(out)

    async def go() -> int:
        total = count_jobs(jobs)
        with Tracker(total, "batch", quiet) as tracker:
            async with Client(limits=lim, limits_store=limits_store, on_limit_wait=announce_wait) as client:

                def on_outcome(o: Any, s: Any) -> None:
                    tracker.update(o.ok, s.in_flight)
                    if not o.ok:
                        err_console.print(f"[red]failed[/red] line {o.item[0]}: {o.error}", highlight=False)

                with applied(tracker.stages.options()):  # the fan-out's tasks inherit it
                    summary = await run_batch(client, jobs, out, concurrency=concurrency, on_outcome=on_outcome)
        print_summary(summary.ok, summary.failed, summary.elapsed, out, summary.skipped)
        out_console.print(f"journal: {out / 'results.jsonl'}", highlight=False)
        if summary.stopped is not None:
            err_console.print(
                f"[red]stopped early:[/red] {summary.stopped}; free some space and rerun", highlight=False
            )
        return EXIT_SOME_FAILED if summary.failed or summary.stopped else EXIT_OK

    run_command(go())
