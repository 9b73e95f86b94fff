"""``aioface change-age`` and the commands made from the provider registry's batch operations.

One ``aioface <op>`` per batch operation that has no hand-written command (``change-gender``,
``beautify``, ``cartoon``, ``analyze``, ``detect-live``, ``result``, and any a plug-in provider adds).
Each takes its image URLs as arguments (several run concurrently within the limits) and the
operation's other parameters as options; images go to ``--out``, facts (a face analysis, a liveness
check) are printed as a table or, with ``--json``, one JSON object a line.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from .. import _json
from .._client import Client
from .._types import ImageResult, Result
from ..providers import BatchOp, operations
from . import EXIT_OK, EXIT_SOME_FAILED
from ._fanout import image_of, run_all
from ._params import (
    Named,
    check_out,
    concurrency_option,
    file_name,
    limit_option,
    name_option,
    operation,
    out_option,
    parse_face_rect,
    parse_limit_options,
    precheck,
    quiet_option,
    store_option,
)
from ._progress import announce_wait, out_console, print_summary
from ._runner import run_command

URL_PARAM = "image_url"


@click.command(name="change-age")
@click.argument("image_url")
@click.option("--age", "ages", multiple=True, type=int, required=True, help="Target age (10-80), one per face.")
@click.option(
    "--face-rect",
    "face_rects",
    multiple=True,
    metavar="X,Y,W,H",
    help="The face each --age is for (one per --age, in order); default: the provider finds them.",
)
@name_option("aged")
@out_option
@limit_option
@store_option
def change_age(
    image_url: str,
    ages: tuple[int, ...],
    face_rects: tuple[str, ...],
    name: str,
    out: Path,
    limits: tuple[str, ...],
    limits_store: str | None,
) -> None:
    """Change the age of the faces in IMAGE_URL (Ace Data Cloud).

    \b
    Example: aioface change-age https://cdn.acedata.cloud/f5687u.png --age 60 --out aged
    Two faces: --age 60 --face-rect 10,20,100,120 --age 20 --face-rect 200,30,90,110
    """
    provider, bop = operation("change_age", None)
    params: dict[str, Any] = {"image_url": image_url, "ages": list(ages)}
    if face_rects:
        params["face_rects"] = [parse_face_rect(r) for r in face_rects]
    precheck(bop, params)
    check_out(out)
    lim = parse_limit_options(limits, provider)

    async def go() -> int:
        start = time.monotonic()
        async with Client(limits=lim, limits_store=limits_store, on_limit_wait=announce_wait) as client:
            r = image_of(await bop.run(client.provider(provider), params, out / name))
        out_console.print(f"saved {r.path} ({r.bytes} bytes, {r.width}x{r.height})", highlight=False)
        print_summary(1, 0, time.monotonic() - start, None)
        return EXIT_OK

    run_command(go())


def option_name(param: str, bop: BatchOp) -> str:
    """``genders`` -> ``--gender`` (a list repeats its option), ``face_rects`` -> ``--face-rect``."""
    name = param[:-1] if param in bop.lists and param.endswith("s") else param
    return "--" + name.replace("_", "-")


def parse_value(raw: str, param: str, bop: BatchOp) -> Any:
    """An option's text as the JSON value the operation takes (numbers and objects parsed)."""
    try:
        return _json.loads(raw)
    except ValueError:
        if param in bop.objects:
            raise click.BadParameter(
                f"expected a JSON object, got {raw!r}", param_hint=option_name(param, bop)
            ) from None
        return raw


def print_results(results: list[tuple[str, Result]], as_json: bool) -> None:
    """Each result: the file saved, a JSON line (``--json``) or a table of facts."""
    from rich.table import Table

    for name, r in results:
        if as_json:
            out_console.print(_json.dumps({"name": name, **r.to_json()}).decode(), highlight=False, soft_wrap=True)
        elif isinstance(r, ImageResult):
            out_console.print(f"saved {r.path} ({r.bytes} bytes, {r.width}x{r.height})", highlight=False)
        else:
            columns, rows = r.table()
            t = Table(title=name)
            for c in columns:
                t.add_column(c)
            for row in rows:
                t.add_row(*("" if v is None else str(v) for v in row))
            out_console.print(t)


def make_command(op: str, offered: list[str], bop: BatchOp) -> click.Command:
    """The command of registry operation ``op`` (offered by ``offered``, preferred first)."""

    cli_name = op.replace("_", "-")
    params = sorted((bop.required | bop.optional) - {URL_PARAM})
    takes_urls = URL_PARAM in bop.required

    def callback(**kw: Any) -> None:
        provider = kw.pop("provider", None)
        prov, chosen = operation(op, provider)
        given: dict[str, Any] = {}
        for p in params:
            raw = kw.get(p)
            if raw is None or raw == ():
                continue
            if p in chosen.lists:
                given[p] = [parse_value(v, p, chosen) for v in raw]
            else:
                given[p] = parse_value(raw, p, chosen)
        urls: tuple[str, ...] = kw.get("image_urls") or ()
        name: str = kw["name"] or cli_name
        if takes_urls:
            width = len(str(len(urls)))
            items: list[Named] = [
                (name if len(urls) == 1 else f"{name}-{i + 1:0{width}d}", {**given, URL_PARAM: u})
                for i, u in enumerate(urls)
            ]
        else:
            items = [(name, given)]
        for _, p_ in items:
            if chosen.normalize is not None:
                chosen.normalize(p_)
            precheck(chosen, p_)
        lim = parse_limit_options(kw["limits"], prov)
        out: Path = kw["out"]
        if chosen.writes_image:
            check_out(out)

        async def go() -> int:
            start = time.monotonic()
            async with Client(limits=lim) as client:
                oks, fails = await run_all(
                    client, prov, chosen, items, out, kw["concurrency"], cli_name, kw["quiet"] or kw["as_json"]
                )
            print_results([(n, r) for (n, _), r in oks], kw["as_json"])
            if not kw["as_json"]:
                images = any(isinstance(r, ImageResult) for _, r in oks)
                print_summary(len(oks), len(fails), time.monotonic() - start, out if images else None)
            return EXIT_SOME_FAILED if fails else EXIT_OK

        run_command(go())

    example_url = "https://example.com/face.png"
    example = " ".join(
        [f"aioface {cli_name}", example_url if takes_urls else ""]
        + [f"{option_name(p, bop)} 1" for p in sorted(bop.required - {URL_PARAM})]
    )
    help_text = (
        f"{(bop.help or op).rstrip('.')} ({', '.join(offered)}).\n\n"
        + ("Several IMAGE_URLS run concurrently within the rate limits. " if takes_urls else "")
        + f"\n\n\b\nExample: {example.strip()}"
    )
    cmd_params: list[click.Parameter] = []
    if takes_urls:
        cmd_params.append(click.Argument(["image_urls"], nargs=-1, required=True))
    for p in params:
        opt = option_name(p, bop)
        hint = "repeat: one per face" if p in bop.lists else ""
        if p in bop.objects:
            hint = (hint + ", " if hint else "") + "JSON object"
        cmd_params.append(
            click.Option(
                [opt, p], multiple=p in bop.lists, required=p in bop.required, help=hint or None, metavar="VALUE"
            )
        )
    if len(offered) > 1:
        cmd_params.append(click.Option(["--provider"], type=click.Choice(offered), help=f"Default: {offered[0]}."))
    cmd_params.append(
        click.Option(
            ["--name"],
            default=None,
            callback=lambda c, p, v: None if v is None else file_name(v),
            help=f"File name (default {cli_name}; -1, -2... for several URLs).",
        )
    )
    cmd_params.append(click.Option(["--json", "as_json"], is_flag=True, help="Print each result as a JSON line."))
    cmd = click.Command(cli_name, callback=callback, params=cmd_params, help=help_text)
    for deco in (out_option, concurrency_option, limit_option, quiet_option):
        cmd = deco(cmd)
    return cmd


def install_registry_commands(group: click.Group) -> None:
    """Add a command for each registry operation the group has no command for."""
    for op, offered in operations().items():
        name = op.replace("_", "-")
        if name in group.commands:
            continue
        group.add_command(make_command(op, [spec.name for spec, _ in offered], offered[0][1]))
