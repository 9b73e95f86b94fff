"""``aioface emulator``: the three providers served locally, with time compressed and faults injected."""

from __future__ import annotations

import click

from ._progress import out_console


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=int)
@click.option(
    "--time-scale", default=1.0, show_default=True, type=float, help="Run rate-limit windows this much faster."
)
@click.option("--latency", default=0.0, show_default=True, type=float, help="Seconds added to every answer.")
@click.option("--latency-jitter", default=0.0, show_default=True, type=float, help="Plus up to this many seconds.")
@click.option("--task-duration", default=0.3, show_default=True, type=float, help="Seconds an async task takes.")
@click.option("--task-jitter", default=0.0, show_default=True, type=float, help="Plus up to this many seconds.")
@click.option(
    "--task-distribution",
    default=None,
    metavar="SPEC",
    help="Task seconds drawn instead from uniform:LO:HI, lognormal:MEAN:SD, bimodal:A:B[:P], "
    "pareto:XM:ALPHA[:CAP] or fixed:S; /K divides them by K (lognormal:5:1/10).",
)
@click.option("--result-padding", default=0, show_default=True, type=int, help="Bytes added to result images.")
@click.option("--strict", is_flag=True, help="Accept only the keys given with --key.")
@click.option("--key", "keys", multiple=True, metavar="KEY=TIER", help="A key and its Face Studio tier.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="PROVIDER:KIND=RATE",
    help="Inject faults, e.g. facestudio:503=0.1 (kinds: 500 502 503 504 429 reset truncate bad_json stall).",
)
def emulator(
    host: str,
    port: int,
    time_scale: float,
    latency: float,
    latency_jitter: float,
    task_duration: float,
    task_jitter: float,
    task_distribution: str | None,
    result_padding: int,
    strict: bool,
    keys: tuple[str, ...],
    faults: tuple[str, ...],
) -> None:
    """Serve Face Studio, Ace Data and AILab on HOST:PORT for local runs.

    \b
    Example: aioface emulator --port 8765 --time-scale 60
             AIOFACE_FACESTUDIO_BASE_URL=http://127.0.0.1:8765 aioface generate -n 5
    """
    from aiohttp import web

    from ..emulator import EmulatorConfig, Faults, create_app

    key_map: dict[str, str] = {}
    for k in keys:
        key, _, tier = k.partition("=")
        if not key or not tier:
            raise click.BadParameter(f"expected KEY=TIER, got {k!r}", param_hint="--key")
        key_map[key] = tier.lower()
    rates: dict[str, dict[str, float]] = {}
    for f in faults:
        try:
            prov, rest = f.split(":", 1)
            kind, rate = rest.split("=", 1)
            rates.setdefault(prov, {})[kind] = float(rate)
        except ValueError:
            raise click.BadParameter(f"expected PROVIDER:KIND=RATE, got {f!r}", param_hint="--fault") from None
    try:
        cfg = EmulatorConfig(
            strict=strict,
            keys=key_map,
            time_scale=time_scale,
            latency=latency,
            latency_jitter=latency_jitter,
            task_duration=task_duration,
            task_jitter=task_jitter,
            task_distribution=task_distribution,
            result_padding=result_padding,
            faults=Faults(rates=rates),
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--key/--fault/--task-distribution") from None
    out_console.print(f"aioface emulator on http://{host}:{port} (Ctrl-C stops)", highlight=False)
    web.run_app(create_app(cfg), host=host, port=port, print=None, access_log=None)
