"""``aioface limits``: the rate-limit budget of each provider and key, local or in Redis, and resetting it."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .. import _json
from .._config import CACHE_DIR_ENV, LIMITS_STORE_ENV
from . import EXIT_OK, EXIT_USAGE
from ._params import account_option
from ._progress import err_console, out_console

if TYPE_CHECKING:
    from ..jobs._budget import BudgetView

T = TypeVar("T")


def duration(seconds: float) -> str:
    """``now``, ``in 12 s``, ``in 1.5 h``..."""
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
    help=f"Where the client keeps its limits (default: {CACHE_DIR_ENV} or the user cache folder).",
)
@click.option(
    "--limits-store",
    metavar="URL",
    default=None,
    help=f"Read the limits shared in Redis instead, e.g. redis://127.0.0.1:6379/0 [env {LIMITS_STORE_ENV}].",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line instead of a table.")
@click.option(
    "--reset",
    "reset_spec",
    metavar="PROVIDER[:KEYHASH]",
    help="Forget a key's state, local or in Redis (default: the key the environment gives PROVIDER).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before --reset.")
@click.option(
    "--credits",
    "ask_credits",
    is_flag=True,
    help="Also ask each provider that tells its credits (AILab) how many are left: one free GET each.",
)
@account_option
def limits_command(
    state_dir: Path | None,
    limits_store: str | None,
    as_json: bool,
    reset_spec: str | None,
    yes: bool,
    ask_credits: bool,
) -> None:
    """Show the rate-limit budget of each provider and key, from the persisted state or from Redis.

    Per provider and key or account (hashed, * marks the environment's: its key, or its account
    from AIOFACE_<PROVIDER>_ACCOUNT / --account; keys of one account share one state): the tier last learned,
    each window's use and when its next slot frees. Locally, windows under an hour live in memory
    only; with a Redis limits store (--limits-store or AIOFACE_LIMITS_STORE) every window, the
    requests in flight and a pause after a 429 are shared, and shown.

    \b
    Example: aioface limits
             aioface limits --limits-store redis://127.0.0.1:6379/0
    Reset:   aioface limits --reset facestudio          (asks first; --yes to skip)
    Credits: aioface limits --credits                   (AILab's remaining credits too)
    """
    from ..jobs._budget import current_hashes, default_state_dir, reset, views

    url = limits_store or os.environ.get(LIMITS_STORE_ENV) or "local"
    store: Any = None
    if url != "local":
        from .._client import open_store

        store = open_store(url)  # ConfigurationError: exit 2
    if store is not None:
        where = f"the limits store {store.safe_url}"
        found = run_on_store(store, redis_views)
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
            gone = run_on_store(store, lambda s: redis_reset(s, v))
            out_console.print(f"reset {provider} key {v.key_hash}: removed {gone} Redis key(s)", highlight=False)
        else:
            removed = reset(v)
            out_console.print(f"reset {provider} key {v.key_hash}: removed {len(removed)} file(s)", highlight=False)
        sys.exit(EXIT_OK)
    credits = asyncio.run(ask_for_credits()) if ask_credits else []
    if as_json:
        for v in found:
            out_console.print(_json.dumps(v.to_json()).decode(), highlight=False, soft_wrap=True)
        for c in credits:
            out_console.print(_json.dumps(c).decode(), highlight=False, soft_wrap=True)
        sys.exit(EXIT_OK)
    if not found:
        out_console.print(f"no limits kept in {where}", highlight=False)
    else:
        out_console.print(budget_table(found, f"limits kept in {where}"))
    for c in credits:
        out_console.print(f"{c['provider']} credits: {c['balance']} left of {c['total']}", highlight=False)
    sys.exit(EXIT_OK)


async def ask_for_credits() -> list[dict[str, Any]]:
    """Each keyed provider's own account of its credits (providers whose namespace has ``credits()``)."""
    from .._client import Client
    from .._errors import ConfigurationError

    out: list[dict[str, Any]] = []
    async with Client(persist_limits=False) as client:
        for name in client.base_urls:
            ns = client.provider(name)
            ask = getattr(ns, "credits", None)
            if ask is None:
                continue
            try:
                out.append((await ask()).to_json())
            except ConfigurationError:  # no key for this provider: nothing to ask
                continue
    return out


def budget_table(found: Sequence[BudgetView], title: str) -> Any:
    """The views as a table: a row per window of each key."""
    from rich.table import Table

    t = Table(title=title)
    for c in ("provider", "key", "tier", "window", "used", "next slot"):
        t.add_column(c)
    for v in found:
        for i, w in enumerate(v.windows):
            first = i == 0
            nxt = "" if w.next_free_in is None else duration(w.next_free_in)
            if w.used is not None and w.next_free_in is None:
                nxt = "after an answer in flight"
            if first and v.paused_for > 0:
                nxt = f"paused after a 429, {duration(v.paused_for)}"
            t.add_row(
                v.provider if first else "",
                (("account " if v.account else "") + v.key_hash + (" *" if v.current else "")) if first else "",
                (v.tier or "unknown") + f" ({v.limits_from})" if first else "",
                f"{w.rate.limit} / {w.rate.period:g}s",
                "in memory only" if w.used is None else f"{w.used}/{w.rate.limit}",
                nxt,
            )
    return t


async def redis_views(store: Any) -> list[BudgetView]:
    """What the Redis limits store holds, as budget views."""
    from ..jobs._budget import redis_views as views_in_redis

    return await views_in_redis(store)


async def redis_reset(store: Any, view: BudgetView) -> int:
    """Forget ``view``'s key in Redis: the number of Redis keys removed."""
    from ..jobs._budget import redis_reset as reset_in_redis

    return await reset_in_redis(store, view)


def run_on_store(store: Any, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(store)`` on a loop of its own and close the store (Redis out of reach: a
    ConfigurationError, exit 2)."""

    async def run() -> T:
        try:
            return await work(store)
        finally:
            await store.aclose()

    return asyncio.run(run())
