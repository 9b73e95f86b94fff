"""``aioface generate``: faces from Face Studio, one per count or per age, and a GIF of them."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .._client import Client
from . import EXIT_OK, EXIT_SOME_FAILED
from ._fanout import path_of, run_all
from ._params import (
    check_out,
    concurrency_option,
    limit_option,
    operation,
    out_option,
    parse_limit_options,
    parse_params,
    parse_range,
    precheck,
    quiet_option,
    store_option,
)
from ._progress import announce_wait, out_console, print_summary
from ._runner import run_command


@click.command()
@click.option("--count", "-n", default=1, show_default=True, type=click.IntRange(1, 1_000_000), help="How many faces.")
@click.option("--age", type=int, help="Age 0-80 for every face.")
@click.option("--ages", help="One face per age, e.g. 1-75 (overrides --count).")
@click.option("--seed", type=int, help="Seed (Professional tier and up).")
@click.option("--gender", type=click.Choice(["male", "female"]))
@click.option("--ethnicity")
@click.option("--resolution", type=int)
@click.option("--format", "image_format", type=click.Choice(["jpeg", "webp"]))
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Any other documented parameter.")
@click.option(
    "--gif", type=click.Path(dir_okay=False, path_type=Path), help="Also write the frames as an animated GIF."
)
@click.option("--fps", default=10, show_default=True, type=click.IntRange(1, 60))
@out_option
@concurrency_option
@limit_option
@store_option
@quiet_option
def generate(
    count: int,
    age: int | None,
    ages: str | None,
    seed: int | None,
    gender: str | None,
    ethnicity: str | None,
    resolution: int | None,
    image_format: str | None,
    params: tuple[str, ...],
    gif: Path | None,
    fps: int,
    out: Path,
    concurrency: int,
    limits: tuple[str, ...],
    limits_store: str | None,
    quiet: bool,
) -> None:
    """Generate faces (Face Studio).

    \b
    Example: a lifetime in seconds, ages 1 to 75 with one seed, as a GIF:
      aioface generate --ages 1-75 --seed 545972026 --gif lifetime.gif --out frames
    """
    named: dict[str, Any] = {
        "seed": seed,
        "gender": gender,
        "ethnicity": ethnicity,
        "resolution": resolution,
        "image_format": image_format,
        "age": age if age is not None else ages,
    }
    extra = parse_params(params)
    for k in extra:
        if named.get(k) is not None:
            option = {"image_format": "--format", "age": "--age/--ages"}.get(k, f"--{k}")
            raise click.BadParameter(
                f"{k} is given twice (--param {k}=... and {option}); give it once", param_hint="--param"
            )
    if "age" in extra and ages:
        raise click.BadParameter("age is given twice (--param age=... and --ages)", param_hint="--param")
    base: dict[str, Any] = {**{k: v for k, v in named.items() if k != "age"}, **extra}
    base = {k: v for k, v in base.items() if v is not None}
    if ages:
        items = [(f"age-{a:02d}", {**base, "age": a}) for a in parse_range(ages)]
    else:
        items = [(f"face-{i:04d}", {**base, **({"age": age} if age is not None else {})}) for i in range(count)]
    provider, bop = operation("generate", None)
    for _, p in items:
        precheck(bop, p)
    check_out(out)
    lim = parse_limit_options(limits, provider)

    async def go() -> int:
        start = time.monotonic()
        async with Client(limits=lim, limits_store=limits_store, on_limit_wait=announce_wait) as client:
            oks, fails = await run_all(client, provider, bop, items, out, concurrency, "generate", quiet)
        if gif is not None and oks:
            frames = sorted(oks, key=lambda x: x[0][0])
            write_gif([path_of(r) for _, r in frames], gif, fps)
            out_console.print(f"GIF: {gif} ({len(frames)} frames)", highlight=False)
        print_summary(len(oks), len(fails), time.monotonic() - start, out)
        return EXIT_SOME_FAILED if fails else EXIT_OK

    run_command(go())


def write_gif(paths: Sequence[Path], dest: Path, fps: int) -> None:
    """The images as an animated GIF, ``fps`` frames a second, looping."""
    from PIL import Image

    frames = [Image.open(p).convert("RGB") for p in paths]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
    os.replace(tmp, dest)
