"""Shared options and parsers: --out, --concurrency, --limit, --limits-store, --account, --quiet, --param, names.

Bad values are usage errors (exit 2) raised before anything is sent, the registry's checks included.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from .._config import ACCOUNT, LIMITS_STORE_ENV, provider_env
from .._errors import ConfigurationError, InvalidRequestError
from ..limits import parse_limits
from ..providers import BatchOp, operations, providers
from ..results._dest import check_destination

F = TypeVar("F", bound=Callable[..., Any])

#: An item of a command's fan-out: (file stem, the operation's parameters).
Named = tuple[str, dict[str, Any]]


def parse_limit_options(values: Sequence[str], default_provider: str | None) -> dict[str, str]:
    """``--limit 5/minute`` (the command's provider) or ``--limit facestudio=5/minute,120/day``."""
    out: dict[str, str] = {}
    for v in values:
        if "=" in v:
            prov, spec = v.split("=", 1)
        elif default_provider is not None:
            prov, spec = default_provider, v
        else:
            raise click.BadParameter(f"name the provider: PROVIDER=SPEC, got {v!r}", param_hint="--limit")
        if prov not in providers():
            raise click.BadParameter(f"unknown provider {prov!r}", param_hint="--limit")
        try:
            parse_limits(spec)
        except ConfigurationError as exc:
            raise click.BadParameter(str(exc), param_hint="--limit") from None
        out[prov] = spec
    return out


def providers_of(op: str) -> list[str]:
    """The providers offering ``op``, preferred first."""
    return [spec.name for spec, _ in operations().get(op, [])]


def operation(op: str, provider: str | None) -> tuple[str, BatchOp]:
    """(provider, operation) for ``op``; the preferred provider when none is named."""
    offered = operations().get(op, [])
    for spec, bop in offered:
        if provider is None or spec.name == provider:
            return spec.name, bop
    names = ", ".join(s.name for s, _ in offered) or "no provider"
    raise click.BadParameter(f"{op} is offered by {names}, not {provider!r}", param_hint="--provider")


def precheck(bop: BatchOp, params: dict[str, Any]) -> None:
    """The operation's local checks, as a usage error (exit 2) before anything is sent."""
    if bop.precheck is None:
        return
    try:
        bop.precheck(params)
    except InvalidRequestError as exc:
        raise click.BadParameter(exc.message, param_hint=exc.param) from None


def file_name(name: str) -> str:
    """A --name that is one file name in --out (not empty, no folder part)."""
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise click.BadParameter(f"must be a file name (no '/'), got {name!r}", param_hint="--name")
    return name


def check_out(out: Path) -> None:
    """Refuse an --out no image could be saved in, before anything is sent (exit 2)."""
    try:
        check_destination(out / "probe.jpg", param="--out")
    except InvalidRequestError as exc:
        raise click.BadParameter(exc.message.removeprefix("--out: "), param_hint="--out") from None


def parse_range(spec: str) -> list[int]:
    """``--ages 1-75`` or ``--ages 20,40,60``."""
    try:
        if "-" in spec:
            lo, hi = (int(x) for x in spec.split("-", 1))
            if lo > hi:
                raise ValueError
            return list(range(lo, hi + 1))
        return [int(x) for x in spec.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected A-B or A,B,C; got {spec!r}", param_hint="--ages") from None


def parse_face_rect(spec: str) -> dict[str, int]:
    """``X,Y,W,H`` as a face rectangle."""
    try:
        x, y, w, h = (int(v) for v in spec.split(","))
    except ValueError:
        raise click.BadParameter(f"expected X,Y,W,H (integers), got {spec!r}", param_hint="--face-rect") from None
    return {"x": x, "y": y, "width": w, "height": h}


def parse_params(values: Iterable[str]) -> dict[str, Any]:
    """``--param KEY=VALUE`` (integers as integers)."""
    out: dict[str, Any] = {}
    for v in values:
        if "=" not in v:
            raise click.BadParameter(f"expected KEY=VALUE, got {v!r}", param_hint="--param")
        k, val = v.split("=", 1)
        out[k] = int(val) if val.lstrip("-").isdigit() else val
    return out


def name_option(default: str) -> Callable[[F], F]:
    """``--name`` (a file name checked by :func:`file_name`; the suffix comes from the content)."""
    return click.option(
        "--name",
        default=default,
        show_default=True,
        callback=lambda c, p, v: file_name(v),
        help="File name (suffix from the content).",
    )


out_option = click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Folder for the images.",
)
concurrency_option = click.option(
    "--concurrency",
    "-c",
    default=16,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Requests in flight at once (rate limits still apply).",
)
limit_option = click.option(
    "--limit",
    "limits",
    multiple=True,
    metavar="SPEC",
    help="Rate limits, e.g. '5/minute,120/day' or 'facestudio=30/2s'; beats tier presets.",
)
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
#: ``limits_store``: for ``Client(limits_store=...)``; None (not given, or empty) lets the client
#: read AIOFACE_LIMITS_STORE.
_limits_store_option = click.option(
    "--limits-store",
    "limits_store",
    metavar="URL",
    default=None,
    callback=lambda c, p, v: v or None,
    help=f"Share limits with other processes and hosts, e.g. redis://127.0.0.1:6379/0 [env {LIMITS_STORE_ENV}].",
)


def _set_accounts(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> None:
    """``--account [PROVIDER=]LABEL``: as ``AIOFACE_<PROVIDER>_ACCOUNT`` for this command (every
    provider without ``PROVIDER=``), put back as it was when the command ends."""
    names = list(providers())
    given: dict[str, str] = {}
    for value in values:
        provider, sep, label = value.rpartition("=") if "=" in value else ("", "", value)
        if sep and provider not in names:
            raise click.BadParameter(f"unknown provider {provider!r} (known: {', '.join(names)})", param=param)
        if not label.strip():
            raise click.BadParameter("an account label must not be empty", param=param)
        for name in [provider] if sep else names:
            given[name] = label.strip()
    before = {name: os.environ.get(provider_env(name, ACCOUNT)) for name in given}
    for name, label in given.items():
        os.environ[provider_env(name, ACCOUNT)] = label

    def restore() -> None:
        for name, old in before.items():
            if old is None:
                os.environ.pop(provider_env(name, ACCOUNT), None)
            else:
                os.environ[provider_env(name, ACCOUNT)] = old

    ctx.call_on_close(restore)


account_option = click.option(
    "--account",
    multiple=True,
    metavar="[PROVIDER=]LABEL",
    expose_value=False,
    callback=_set_accounts,
    help="The account the key belongs to: keys given the same label share every limit "
    f"(Face Studio counts per user, not per key) [env {provider_env('<PROVIDER>', ACCOUNT)}].",
)


def store_option(f: F) -> F:
    """``--limits-store URL`` and ``--account [PROVIDER=]LABEL``: where limits are kept, whose they are."""
    return _limits_store_option(account_option(f))
