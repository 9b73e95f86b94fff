"""Commands made from the registry: one ``aioface <op>`` per batch operation that has no hand-written
command (``change-gender``, ``beautify``, ``cartoon``, ``analyze``, ``detect-live``, and any a
plug-in provider adds). Each takes its image URLs as arguments (several run concurrently within
the limits) and the operation's other parameters as options; images go to ``--out``, facts (a face
analysis, a liveness check) are printed as a table or, with ``--json``, one JSON object a line.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .. import _json
from .._client import Client
from .._types import ImageResult, Result
from ..providers import BatchOp, operations

if TYPE_CHECKING:
    from ..jobs._budget import BudgetView

T = TypeVar("T")

URL_PARAM = "image_url"


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
    from rich.table import Table

    from ._commands import out_console

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
    from ._commands import (
        EXIT_OK,
        EXIT_SOME_FAILED,
        Named,
        _check_out,
        _file_name,
        _limits_option,
        _operation,
        _precheck,
        _run,
        _run_all,
        _summary,
        common_conc,
        common_limit,
        common_out,
        common_quiet,
    )

    cli_name = op.replace("_", "-")
    params = sorted((bop.required | bop.optional) - {URL_PARAM})
    takes_urls = URL_PARAM in bop.required

    def callback(**kw: Any) -> None:
        provider = kw.pop("provider", None)
        prov, chosen = _operation(op, provider)
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
            _precheck(chosen, p_)
        lim = _limits_option(kw["limits"], prov)
        out: Path = kw["out"]
        if chosen.writes_image:
            _check_out(out)

        async def go() -> int:
            start = time.monotonic()
            async with Client(limits=lim) as client:
                oks, fails = await _run_all(
                    client, prov, chosen, items, out, kw["concurrency"], cli_name, kw["quiet"] or kw["as_json"]
                )
            print_results([(n, r) for (n, _), r in oks], kw["as_json"])
            if not kw["as_json"]:
                images = any(isinstance(r, ImageResult) for _, r in oks)
                _summary(len(oks), len(fails), time.monotonic() - start, out if images else None)
            return EXIT_SOME_FAILED if fails else EXIT_OK

        _run(go())

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
            callback=lambda c, p, v: None if v is None else _file_name(v),
            help=f"File name (default {cli_name}; -1, -2... for several URLs).",
        )
    )
    cmd_params.append(click.Option(["--json", "as_json"], is_flag=True, help="Print each result as a JSON line."))
    cmd = click.Command(cli_name, callback=callback, params=cmd_params, help=help_text)
    for deco in (common_out, common_conc, common_limit, common_quiet):
        cmd = deco(cmd)
    return cmd


def _duration(seconds: float) -> str:
    if seconds <= 0:
        return "now"
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"in {seconds / size:.1f} {unit}"
    return f"in {seconds:.0f} s"


@click.command(name="limits")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the client keeps its limits (default: AIOFACE_CACHE_DIR or the user cache folder).",
)
@click.option(
    "--limits-store",
    metavar="URL",
    default=None,
    help="Read the limits shared in Redis instead, e.g. redis://127.0.0.1:6379/0 [env AIOFACE_LIMITS_STORE].",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line instead of a table.")
@click.option(
    "--reset",
    "reset_spec",
    metavar="PROVIDER[:KEYHASH]",
    help="Forget a key's state, local or in Redis (default: the key the environment gives PROVIDER).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before --reset.")
def limits_command(
    state_dir: Path | None, limits_store: str | None, as_json: bool, reset_spec: str | None, yes: bool
) -> None:
    """Show the rate-limit budget of each provider and key, from the persisted state or from Redis.

    Per provider and key (hashed, * marks the key of the environment): the tier last learned,
    each window's use and when its next slot frees. Locally, windows under an hour live in memory
    only; with a Redis limits store (--limits-store or AIOFACE_LIMITS_STORE) every window, the
    requests in flight and a pause after a 429 are shared, and shown.

    \b
    Example: aioface limits
             aioface limits --limits-store redis://127.0.0.1:6379/0
    Reset:   aioface limits --reset facestudio          (asks first; --yes to skip)
    """
    import os
    import sys

    from ..jobs._budget import current_hashes, default_state_dir, reset, views
    from ._commands import EXIT_OK, EXIT_USAGE, err_console, out_console

    url = limits_store or os.environ.get("AIOFACE_LIMITS_STORE") or "local"
    store: Any = None
    if url != "local":
        from .._client import open_store
        from .._errors import ConfigurationError

        try:
            store = open_store(url)
        except ConfigurationError as exc:
            err_console.print(f"error: {exc}", highlight=False)
            sys.exit(EXIT_USAGE)
    if store is not None:
        where = f"the limits store {store.safe_url}"
        found = _redis(store, _redis_views)
    else:
        folder = state_dir or default_state_dir()
        where = str(folder / "limits")
        found = views(folder)
    if reset_spec is not None:
        provider, _, digest = reset_spec.partition(":")
        if provider not in current_hashes():
            raise click.BadParameter(f"unknown provider {provider!r}", param_hint="--reset")
        digest = digest or current_hashes()[provider]
        match = [v for v in found if v.provider == provider and v.key_hash.startswith(digest)]
        if len(match) != 1:
            err_console.print(f"no single state for {provider} key {digest} in {where}", highlight=False)
            sys.exit(EXIT_USAGE)
        v = match[0]
        used = ", ".join(f"{w.used}/{w.rate.limit} per {w.rate.period:g}s" for w in v.windows if w.used is not None)
        if not yes:
            shared = " for every process and host sharing it" if store is not None else ""
            click.confirm(
                f"Forget the budget of {provider} key {v.key_hash}{shared} ({used or 'no persisted window'})? "
                "The provider still counts what was sent",
                abort=True,
                err=True,
            )
        if store is not None:
            from ..jobs._budget import redis_reset

            gone = _redis(store, lambda s: redis_reset(s, v))
            out_console.print(f"reset {provider} key {v.key_hash}: removed {gone} Redis key(s)", highlight=False)
        else:
            removed = reset(v)
            out_console.print(f"reset {provider} key {v.key_hash}: removed {len(removed)} file(s)", highlight=False)
        sys.exit(EXIT_OK)
    if as_json:
        for v in found:
            out_console.print(_json.dumps(v.to_json()).decode(), highlight=False, soft_wrap=True)
        sys.exit(EXIT_OK)
    if not found:
        out_console.print(f"no limits kept in {where}", highlight=False)
        sys.exit(EXIT_OK)
    out_console.print(_table(found, f"limits kept in {where}"))
    sys.exit(EXIT_OK)


def _table(found: Sequence[BudgetView], title: str) -> Any:
    from rich.table import Table

    t = Table(title=title)
    for c in ("provider", "key", "tier", "window", "used", "next slot"):
        t.add_column(c)
    for v in found:
        for i, w in enumerate(v.windows):
            first = i == 0
            nxt = "" if w.next_free_in is None else _duration(w.next_free_in)
            if w.used is not None and w.next_free_in is None:
                nxt = "after an answer in flight"
            if first and v.paused_for > 0:
                nxt = f"paused after a 429, {_duration(v.paused_for)}"
            t.add_row(
                v.provider if first else "",
                (v.key_hash + (" *" if v.current else "")) if first else "",
                (v.tier or "unknown") + f" ({v.limits_from})" if first else "",
                f"{w.rate.limit} / {w.rate.period:g}s",
                "in memory only" if w.used is None else f"{w.used}/{w.rate.limit}",
                nxt,
            )
    return t


async def _redis_views(store: Any) -> list[BudgetView]:
    from ..jobs._budget import redis_views

    return await redis_views(store)


def _redis(store: Any, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(store)`` on a loop of its own and close the store (exit 2 if Redis cannot be reached)."""
    import asyncio
    import sys

    from .._errors import ConfigurationError
    from ._commands import EXIT_USAGE, err_console

    async def run() -> T:
        try:
            return await work(store)
        finally:
            await store.aclose()

    try:
        return asyncio.run(run())
    except ConfigurationError as exc:
        err_console.print(f"error: {exc}", highlight=False)
        sys.exit(EXIT_USAGE)


def install(group: click.Group) -> None:
    """Add a command for each registry operation the group has no command for, and ``limits``."""
    for op, offered in operations().items():
        name = op.replace("_", "-")
        if name in group.commands:
            continue
        group.add_command(make_command(op, [spec.name for spec, _ in offered], offered[0][1]))
    if "limits" not in group.commands:
        group.add_command(limits_command)


__all__ = ["install", "make_command"]


def app() -> click.Group:
    """The ``aioface`` command group: the hand-written commands plus those made from the registry."""
    from ._commands import main as group

    install(group)
    return group


def main() -> None:
    """Run the ``aioface`` command."""
    app()()
