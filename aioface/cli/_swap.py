"""``aioface swap``: one face into another image, by the provider's polling or by callback."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from .. import CallbackReceiver
from .._client import Client
from .._route import ROUTES, Route, swap_providers
from . import EXIT_OK
from ._fanout import image_of
from ._params import (
    check_out,
    limit_option,
    name_option,
    operation,
    out_option,
    parse_limit_options,
    precheck,
    providers_of,
    store_option,
)
from ._progress import announce_wait, out_console, print_summary
from ._runner import run_command


@click.command()
@click.option("--source", required=True, help="Image giving the face (a URL or a local file).")
@click.option("--target", required=True, help="Image whose face is replaced (a URL or a local file).")
@click.option(
    "--provider",
    default=None,
    metavar="NAME|auto|NAME,NAME",
    callback=lambda c, p, v: swap_route_providers(v),
    help=f"One of {', '.join(providers_of('swap'))} (default: the first); 'auto' or a list: the next one "
    "when a provider cannot take the swap (down, out of quota), never once a task exists.",
)
@click.option(
    "--route",
    type=click.Choice(ROUTES),
    default="failover",
    show_default=True,
    help="With auto or a list: in the order given (failover), or the soonest free slot first (spread).",
)
@name_option("swapped")
@click.option("--callback-host", help="acedata: receive the result by callback, listening on this host.")
@click.option("--callback-port", type=int, default=0, help="Port for the callback receiver (0: any free one).")
@click.option("--callback-url", help="Public base URL that reaches the receiver (default http://HOST:PORT).")
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    help="acedata: seconds the provider may take (its default 120); past it the task id is printed.",
)
@click.option(
    "--sync",
    is_flag=True,
    help="acedata: hold the connection until the image is made (default: a task id at once, then polled).",
)
@out_option
@limit_option
@store_option
def swap(
    source: str,
    target: str,
    provider: str | list[str] | None,
    route: Route,
    name: str,
    callback_host: str | None,
    callback_port: int,
    callback_url: str | None,
    timeout: float | None,
    sync: bool,
    out: Path,
    limits: tuple[str, ...],
    limits_store: str | None,
) -> None:
    """Swap the face of SOURCE into TARGET.

    \b
    Example: aioface swap --source https://cdn.acedata.cloud/n1lmd8.png \\
                          --target https://cdn.acedata.cloud/3np95r.png --out swapped
    Any provider: aioface swap --provider auto --source ... --target ...
    """
    if isinstance(provider, list):
        return routed_swap(source, target, provider, route, name, callback_host, timeout, out, limits, limits_store)
    prov, bop = operation("swap", provider)
    params: dict[str, Any] = {"source": source, "target": target}
    if timeout is not None:
        if "timeout" not in bop.optional:
            raise click.BadParameter(f"{prov} takes no timeout", param_hint="--timeout")
        params["timeout"] = timeout
    if sync:
        if "sync" not in bop.optional:
            raise click.BadParameter(f"{prov} has no synchronous mode", param_hint="--sync")
        params["sync"] = True
    precheck(bop, params)
    check_out(out)
    if callback_host and "callback" not in bop.extras:
        raise click.BadParameter(f"{prov} does not answer by callback", param_hint="--callback-host")
    lim = parse_limit_options(limits, prov)

    async def go() -> int:
        start = time.monotonic()
        async with Client(limits=lim, limits_store=limits_store, on_limit_wait=announce_wait) as client:
            ns = client.provider(prov)
            if callback_host:
                async with CallbackReceiver(host=callback_host, port=callback_port, public_url=callback_url) as rx:
                    r = image_of(await bop.run(ns, {**params, "callback": rx}, out / name))
            else:
                r = image_of(await bop.run(ns, params, out / name))
        out_console.print(f"saved {r.path} ({r.bytes} bytes, task {r.task_id})", highlight=False)
        print_summary(1, 0, time.monotonic() - start, None)
        return EXIT_OK

    run_command(go())


def swap_route_providers(value: str | None) -> str | list[str] | None:
    """``--provider``: one name (that provider's own swap), or ``auto`` / ``a,b`` (a routed swap)."""
    if value is None:
        return None
    offered = swap_providers()
    names = offered if value == "auto" else [v.strip() for v in value.split(",") if v.strip()]
    bad = [n for n in names if n not in offered]
    if bad or not names or len(set(names)) != len(names):
        raise click.BadParameter(
            f"choose auto or from {', '.join(offered)} (comma-separated, each once); got {value!r}"
        )
    return names if value == "auto" or len(names) > 1 else names[0]


def routed_swap(
    source: str,
    target: str,
    names: list[str],
    route: Route,
    name: str,
    callback_host: str | None,
    timeout: float | None,
    out: Path,
    limits: tuple[str, ...],
    limits_store: str | None,
) -> None:
    """``--provider auto`` (or a list): :meth:`Client.swap` over ``names``, saying who served it."""
    if timeout is not None or callback_host:
        hint = "--timeout" if timeout is not None else "--callback-host"
        raise click.BadParameter("only with one --provider that takes it, not with auto or a list", param_hint=hint)
    check_out(out)
    lim = parse_limit_options(limits, None)

    async def go() -> int:
        start = time.monotonic()
        async with Client(limits=lim, limits_store=limits_store, on_limit_wait=announce_wait) as client:
            r = await client.swap(out / name, source=source, target=target, providers=names, route=route)
        tried = r.extra.get("failed_over")
        via = f" after {', '.join(tried)} could not take it" if tried else ""
        out_console.print(f"saved {r.path} ({r.bytes} bytes, {r.provider}{via}, task {r.task_id})", highlight=False)
        print_summary(1, 0, time.monotonic() - start, None)
        return EXIT_OK

    run_command(go())
