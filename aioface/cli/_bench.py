"""``aioface bench``: providers benchmarked side by side; tables, and reports as JSON and PNG."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import click

from .._client import Client
from .._dispatch import RequestTiming
from .._errors import InvalidRequestError
from .._route import OP, swap_providers
from ..jobs._bench import (
    PHASES,
    BenchReport,
    bench_ops,
    benchable,
    check_report_path,
    run_comparison,
    write_comparison_png,
    write_json,
    write_png,
)
from ..jobs._sheet import draw_sheet, run_sheet
from ..providers import providers
from . import EXIT_OK, EXIT_SOME_FAILED
from ._params import concurrency_option, limit_option, parse_limit_options, quiet_option, store_option
from ._progress import Tracker, announce_wait, err_console, out_console
from ._runner import run_command


def bench_providers(value: str) -> list[str]:
    names = [p.strip() for p in value.split(",") if p.strip()]
    known = benchable()
    bad = [p for p in names if p not in known]
    if bad or not names:
        raise click.BadParameter(f"choose from {', '.join(known)}; got {value!r}", param_hint="--provider")
    return list(dict.fromkeys(names))


def check_report(path: Path, option: str) -> None:
    """Refuse a report path no report could be written to, before the run (exit 2, nothing sent)."""
    try:
        check_report_path(path, param=option)
    except InvalidRequestError as exc:
        raise click.BadParameter(exc.message.removeprefix(f"{option}: "), param_hint=option) from None


def parse_prices(values: Sequence[str], names: Sequence[str]) -> dict[str, tuple[float, str]]:
    """``--price ailab=0.02USD`` -> {"ailab": (0.02, "USD")}."""
    out: dict[str, tuple[float, str]] = {}
    for v in values:
        prov, _, spec = v.partition("=")
        num = spec.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_ ")
        try:
            amount = float(num)
        except ValueError:
            raise click.BadParameter(f"expected PROVIDER=AMOUNT[UNIT], got {v!r}", param_hint="--price") from None
        if prov not in names:
            raise click.BadParameter(f"{prov!r} is not benchmarked here", param_hint="--price")
        out[prov] = (amount, spec[len(num) :].strip() or "units")
    return out


@click.command()
@click.option(
    "--provider",
    "provider_list",
    default=benchable()[0],
    show_default=True,
    metavar="NAME[,NAME...]",
    help=f"Provider(s) to benchmark side by side: {', '.join(benchable())}.",
)
@click.option("--op", default=None, help=f"Operation to run on each provider (one of {', '.join(bench_ops())}).")
@click.option("--requests", "-n", "n", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option(
    "--emulator",
    "use_emulator",
    is_flag=True,
    help="Benchmark the built-in emulator (the default when none of the providers has a key).",
)
@click.option(
    "--price",
    "prices",
    multiple=True,
    metavar="PROVIDER=AMOUNT[UNIT]",
    help="What one accepted call costs, for cost per image (e.g. ailab=0.02USD).",
)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the report as JSON.")
@click.option("--png", "png_path", type=click.Path(dir_okay=False, path_type=Path), help="Write a latency chart (PNG).")
@click.option(
    "--sheet",
    "sheet_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also swap the same inputs through each provider: a contact sheet (PNG) of the results.",
)
@click.option(
    "--sheet-input",
    "sheet_inputs",
    nargs=2,
    multiple=True,
    metavar="SOURCE TARGET",
    help="An input pair for --sheet (URLs or paths); repeat for rows. Default with the emulator: three of its faces.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the images here (default: a temporary folder, removed).",
)
@concurrency_option
@limit_option
@store_option
@quiet_option
def bench(
    provider_list: str,
    op: str | None,
    n: int,
    use_emulator: bool,
    prices: tuple[str, ...],
    json_path: Path | None,
    png_path: Path | None,
    sheet_path: Path | None,
    sheet_inputs: tuple[tuple[str, str], ...],
    out: Path | None,
    concurrency: int,
    limits: tuple[str, ...],
    limits_store: str | None,
    quiet: bool,
) -> None:
    """Benchmark providers: N calls each at concurrency C within their limits, side by side.

    Prints call latency p50/p90/p99, time queued / processing / downloading, HTTP time to first
    byte vs total, limiter wait, throughput, errors by code and (with a price) cost per image;
    --json and --png save the report and a chart. Runs against the emulator unless a key is set.

    \b
    Example: aioface bench --emulator --provider ailab -n 40 -c 8 --png bench.png
    Compare: aioface bench --provider acedata,ailab --op swap -n 40 --png swap.png
    Sheet:   aioface bench --provider acedata,ailab --op swap -n 4 --sheet compare.png
    """
    names = bench_providers(provider_list)
    if op is not None:
        lacking = [p for p in names if p not in benchable(op)]
        if lacking:
            raise click.BadParameter(f"{', '.join(lacking)} cannot be benchmarked with {op!r}", param_hint="--op")
    price_map = parse_prices(prices, names)
    lim: dict[str, str] = {}
    for v in limits:
        lim.update(parse_limit_options([v], names[0] if len(names) == 1 else None))
    for option, path in (("--json", json_path), ("--png", png_path), ("--sheet", sheet_path)):
        if path is not None:
            check_report(path, option)
    keyed = any(os.environ.get(providers()[p].key_env) for p in names)
    emulated = use_emulator or not keyed
    check_sheet(sheet_path, sheet_inputs, names, op, emulated)
    sheet_prices = {p: price_map.get(p) or providers()[p].bench.price for p in names}  # type: ignore[union-attr]
    sheet: list[Any] = []

    async def also_sheet(client: Client, inputs: Sequence[tuple[str, str]]) -> None:
        if sheet_path is not None:
            sheet.extend(await run_sheet(client, names, inputs, prices={p: v for p, v in sheet_prices.items() if v}))

    async def go() -> int:
        timings: list[RequestTiming] = []
        folder = out or Path(tempfile.mkdtemp(prefix="aioface-bench-"))
        label = f"bench {', '.join(names)}"
        try:
            with Tracker(n * len(names), label, quiet) as tracker:

                def done(provider: str, ok: bool) -> None:
                    tracker.update(ok, 0)

                if emulated:
                    from ..emulator import DEMO_KEY, Emulator, EmulatorConfig

                    cfg = EmulatorConfig(
                        time_scale=60.0,
                        keys={DEMO_KEY: "professional"},
                        latency=0.02,
                        latency_jitter=0.03,
                        task_duration=0.3,
                        task_jitter=0.3,
                    )
                    async with Emulator(cfg) as emu, emu.client(limits=lim, on_request=timings.append) as client:
                        reports = await run_comparison(
                            client, timings, names, n, concurrency, folder, done, op=op, prices=price_map
                        )
                        faces = [emu.state.new_file(seed, 30, 256, "jpeg") for seed in range(1, 7)]
                        urls = [f"{emu.url}/files/{f}" for f in faces]
                        await also_sheet(client, sheet_inputs or list(zip(urls[::2], urls[1::2], strict=True)))
                else:
                    async with Client(
                        limits=lim, limits_store=limits_store, on_request=timings.append, on_limit_wait=announce_wait
                    ) as client:
                        reports = await run_comparison(
                            client, timings, names, n, concurrency, folder, done, op=op, prices=price_map
                        )
                        await also_sheet(client, sheet_inputs)
        finally:
            if out is None:
                shutil.rmtree(folder, ignore_errors=True)
        if emulated and not quiet:
            err_console.print("(against the built-in emulator: set a provider key to measure the real one)")
        for report in reports:
            print_bench(report)
        if len(reports) > 1:
            print_comparison(reports)
        if json_path is not None:
            write_json(reports, json_path)
        if png_path is not None:
            if len(reports) == 1:
                write_png(reports[0], png_path)
            else:
                write_comparison_png(reports, png_path)
        if sheet_path is not None:
            cells, shown = sheet
            draw_sheet(cells, shown, names, sheet_path)
            failed = sum(c.error is not None for c in cells)
            out_console.print(
                f"contact sheet: {sheet_path} ({len(shown)} inputs x {len(names)} providers, {failed} failed)"
            )
        return EXIT_SOME_FAILED if any(r.failed for r in reports) else EXIT_OK

    run_command(go())


def check_sheet(
    path: Path | None, inputs: Sequence[tuple[str, str]], names: Sequence[str], op: str | None, emulated: bool
) -> None:
    """``--sheet`` swaps: every provider must offer a swap; real providers need ``--sheet-input``."""
    if path is None:
        if inputs:
            raise click.BadParameter("--sheet-input goes with --sheet", param_hint="--sheet-input")
        return
    offered = swap_providers()
    lacking = [p for p in names if p not in offered]
    if lacking or (op is not None and op != OP):
        raise click.BadParameter(
            f"a sheet swaps faces (--op {OP}); {', '.join(lacking) or op} cannot", param_hint="--sheet"
        )
    if not inputs and not emulated:
        raise click.BadParameter("give the sheet's inputs: --sheet-input SOURCE TARGET (repeat)", param_hint="--sheet")


def print_comparison(reports: Sequence[BenchReport]) -> None:
    """The reports side by side, one column a provider."""
    from rich.table import Table

    t = Table(title="side by side")
    t.add_column("")
    for r in reports:
        t.add_column(f"{r.provider}\n{r.operation}", justify="right")

    def row(name: str, values: Iterable[str]) -> None:
        t.add_row(name, *values)

    row("ok / failed", (f"{r.ok} / {r.failed}" for r in reports))
    row("throughput (images/s)", (f"{r.throughput:.2f}" for r in reports))
    for q in ("p50", "p90", "p99"):
        row(f"call latency {q} (s)", (f"{r.call_latency.get(q, 0.0):.3f}" for r in reports))
    row("limiter wait mean (s)", (f"{r.limiter_wait.get('mean', 0.0):.3f}" for r in reports))
    for p in PHASES:
        row(f"{p} mean (s)", (f"{r.phases.get(p, {}).get('mean', 0.0):.3f}" for r in reports))
    row("errors", (", ".join(f"{c} {k}" for c, k in sorted(r.errors.items())) or "none" for r in reports))
    row(
        "cost per image",
        (
            f"{r.cost_per_image:.4g} {r.price[1]}" if r.cost_per_image is not None and r.price else "no price"
            for r in reports
        ),
    )
    out_console.print(t)


def print_bench(report: BenchReport) -> None:
    """One report: a table of latencies, and a line of counts."""
    from rich.table import Table

    t = Table(
        title=f"{report.provider}: {report.operation}, {report.requests} calls at concurrency {report.concurrency}"
    )
    t.add_column("seconds")
    for q in ("p50", "p90", "p99", "mean", "max"):
        t.add_column(q, justify="right")
    rows = [
        ("call latency", report.call_latency),
        ("HTTP total", report.http_total),
        ("HTTP time to first byte", report.http_ttfb),
        ("limiter wait", report.limiter_wait),
    ]
    rows += [(p, report.phases[p]) for p in PHASES if report.phases.get(p, {}).get("max", 0.0) > 0]
    for name, d in rows:
        t.add_row(name, *(f"{d[q]:.3f}" for q in ("p50", "p90", "p99", "mean", "max")))
    out_console.print(t)
    cost = report.cost_per_image
    out_console.print(
        f"{report.ok} ok, {report.failed} failed in {report.seconds:.2f}s ({report.throughput:.2f}/s); "
        f"HTTP answers {report.http_status}; errors {report.errors or 'none'}"
        + (f"; {cost:.4g} {report.price[1]} per image" if cost is not None and report.price else ""),
        highlight=False,
    )
