"""The ``aioface`` command."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import stat
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import click
from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text

from .. import CallbackReceiver, _json
from .._client import Client
from .._dispatch import LimitWait, RequestTiming
from .._errors import AiofaceError, ConfigurationError, InvalidRequestError, TaskTimeoutError
from .._options import Options, applied
from .._types import ImageResult, Result, TaskEvent
from ..jobs._batch import run_batch
from ..jobs._bench import bench_ops, benchable
from ..limits import parse_limits
from ..providers import BatchOp, operations, providers
from ..results._download import check_destination
from ..tasks._fanout import FanOut

T = TypeVar("T")
R = TypeVar("R")
EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2

out_console = Console()
err_console = Console(stderr=True)


def _limits_option(values: Sequence[str], default_provider: str | None) -> dict[str, str]:
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


class _Live(ProgressColumn):
    """A column drawn afresh on every refresh from ``text()`` (counts that change between outcomes)."""

    def __init__(self, text: Callable[[], str]) -> None:
        super().__init__(table_column=Column(no_wrap=True))
        self._text = text

    def render(self, task: Task) -> Text:
        return Text(self._text(), no_wrap=True)


class _Bar(Progress):
    """The progress table, and under it a line about a long wait for a rate-limit slot (if any)."""

    def __init__(self, *columns: str | ProgressColumn, note: Callable[[], str], **kwargs: Any) -> None:
        self._note = note
        super().__init__(*columns, **kwargs)

    def get_renderables(self) -> Iterable[RenderableType]:
        yield from super().get_renderables()
        note = self._note()
        if note:
            yield Text(note, style="yellow", no_wrap=True, overflow="ellipsis")


class _Tracker:
    """Progress on a terminal (rich); nothing but the summary otherwise.

    Requests waiting for a rate-limit slot are counted apart from those in flight, and a long wait
    (``Client(on_limit_wait=_announce_wait)``) shows on the bar with a countdown to the next slot.
    """

    #: The tracker on screen: where :func:`_announce_wait` sends notices.
    current: ClassVar[_Tracker | None] = None

    def __init__(self, total: int | None, label: str, quiet: bool = False) -> None:
        self.enabled = err_console.is_terminal and not quiet
        self.ok = 0
        self.failed = 0
        self.start = time.monotonic()
        self._running: Callable[[], int] | None = None
        self._waiting: Callable[[], int] | None = None
        self._last_running = 0
        self._notice: tuple[LimitWait, float] | None = None  # the event, and when its slot comes
        self.progress = _Bar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _Live(self._counts),
            _Live(self._stage_text),
            _Live(self._rate),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            note=self._wait_text,
            console=err_console,
            disable=not self.enabled,
        )
        self.task = self.progress.add_task(label, total=total)
        #: Calls queued / processing / downloading, from task events (``on_status``).
        self.stages = _Stages(self._show_stages)

    def __enter__(self) -> _Tracker:
        self.progress.__enter__()
        _Tracker.current = self
        return self

    def __exit__(self, *exc: object) -> None:
        _Tracker.current = None
        self.progress.__exit__(None, None, None)

    def _show_stages(self, text: str) -> None:
        """Called on each stage change (the bar reads :meth:`_stage_text` live)."""

    def _stage_text(self) -> str:
        return self.stages.text() if self.stages.of else ""

    def watch(self, running: Callable[[], int] | None = None, waiting: Callable[[], int] | None = None) -> None:
        """Read the jobs running and the requests queued for a slot live (cheap reads: the bar is drawn
        from another thread)."""
        self._running = running
        self._waiting = waiting

    def _counts(self) -> str:
        running = self._running() if self._running is not None else self._last_running
        text = f"ok {self.ok} failed {self.failed} in flight "
        if self._waiting is None:
            return f"{text}{running}"
        waiting = self._waiting()
        return f"{text}{max(0, running - waiting)} waiting {waiting}"

    def _rate(self) -> str:
        return f"{(self.ok + self.failed) / max(1e-9, time.monotonic() - self.start):.1f}/s"

    def _wait_text(self) -> str:
        notice = self._notice
        if notice is None:
            return ""
        left = notice[1] - time.monotonic()
        return str(replace(notice[0], seconds=left)) if left > 0 else ""

    def limit_wait(self, event: LimitWait) -> None:
        """Show a long wait on the bar, counting down to its slot."""
        self._notice = (event, time.monotonic() + event.seconds)

    def update(self, ok: bool, in_flight: int) -> None:
        if ok:
            self.ok += 1
        else:
            self.failed += 1
        self._last_running = in_flight
        self.progress.update(self.task, completed=self.ok + self.failed)


def _announce_wait(event: LimitWait) -> None:
    """``Client(on_limit_wait=...)`` for the CLI: on the progress bar, else a plain line on stderr."""
    tracker = _Tracker.current
    if tracker is not None and tracker.enabled:
        tracker.limit_wait(event)
    else:
        err_console.print(str(event), markup=False, highlight=False, soft_wrap=True)


class _Stages:
    """Where each running call is (queued / processing / downloading), from ``on_status`` events.

    A call is known by its task: a fan-out worker runs one call at a time, and :meth:`clear`
    forgets it when the call ends however it ends."""

    def __init__(self, show: Callable[[str], None]) -> None:
        self._show = show
        self.of: dict[object, str] = {}

    def on_status(self, event: TaskEvent) -> None:
        me = asyncio.current_task()
        if event.status in ("done", "failed"):
            self.of.pop(me, None)
        else:
            self.of[me] = "processing" if event.status == "callback" else event.status
        # Calls that ended by an error (no event says so) end with their task: forget those.
        for t in [t for t in self.of if isinstance(t, asyncio.Task) and t.done()]:
            del self.of[t]
        self._show(self.text())

    def clear(self) -> None:
        if self.of.pop(asyncio.current_task(), None) is not None:
            self._show(self.text())

    def counts(self) -> dict[str, int]:
        c = {"queued": 0, "processing": 0, "downloading": 0}
        for stage in self.of.values():
            c[stage] = c.get(stage, 0) + 1
        return c

    def text(self) -> str:
        return " ".join(f"{k} {v}" for k, v in self.counts().items())

    def options(self) -> Options:
        """Options whose ``on_status`` feeds these counts (apply around the fan-out)."""
        return Options(on_status=self.on_status)


def _summary(ok: int, failed: int, elapsed: float, where: Path | None, skipped: int = 0) -> None:
    rate = (ok + failed) / elapsed if elapsed > 0 else 0.0
    parts = [f"{ok} ok", f"{failed} failed"]
    if skipped:
        parts.append(f"{skipped} already done")
    msg = f"{', '.join(parts)} in {elapsed:.1f}s ({rate:.1f}/s)"
    if where is not None:
        msg += f"; files in {where}"
    out_console.print(msg, highlight=False)


async def _fan(
    client: Client,
    fn: Callable[[T], Awaitable[R]],
    items: Sequence[T],
    concurrency: int,
    label: str,
    quiet: bool = False,
    waiting: Callable[[], int] | None = None,
) -> tuple[list[tuple[T, R]], list[tuple[T, BaseException]]]:
    oks: list[tuple[T, R]] = []
    fails: list[tuple[T, BaseException]] = []
    with _Tracker(len(items), label, quiet) as tracker:
        stages = tracker.stages

        async def tracked(item: T) -> R:
            try:
                return await fn(item)
            finally:
                stages.clear()

        with applied(stages.options()):  # the fan-out's tasks inherit it
            async with FanOut(tracked, items, concurrency=concurrency) as results:
                tracker.watch(lambda: results.in_flight, waiting)
                async for o in results:
                    if o.ok:
                        assert o.value is not None
                        oks.append((o.item, o.value))
                    else:
                        assert o.error is not None
                        fails.append((o.item, o.error))
                        err_console.print(f"[red]failed[/red] {o.item}: {o.error}", highlight=False)
                    tracker.update(o.ok, results.in_flight)
    return oks, fails


Named = tuple[str, dict[str, Any]]


def _providers_of(op: str) -> list[str]:
    """The providers offering ``op``, preferred first."""
    return [spec.name for spec, _ in operations().get(op, [])]


def _operation(op: str, provider: str | None) -> tuple[str, BatchOp]:
    """(provider, operation) for ``op``; the preferred provider when none is named."""
    offered = operations().get(op, [])
    for spec, bop in offered:
        if provider is None or spec.name == provider:
            return spec.name, bop
    names = ", ".join(s.name for s, _ in offered) or "no provider"
    raise click.BadParameter(f"{op} is offered by {names}, not {provider!r}", param_hint="--provider")


def _precheck(bop: BatchOp, params: dict[str, Any]) -> None:
    """The operation's local checks, as a usage error (exit 2) before anything is sent."""
    if bop.precheck is None:
        return
    try:
        bop.precheck(params)
    except InvalidRequestError as exc:
        raise click.BadParameter(exc.message, param_hint=exc.param) from None


async def _run_all(
    client: Client,
    provider: str,
    bop: BatchOp,
    items: Sequence[Named],
    out: Path,
    concurrency: int,
    label: str,
    quiet: bool,
) -> tuple[list[tuple[Named, Result]], list[tuple[Named, BaseException]]]:
    """Run ``bop`` for each (file stem, parameters), saved under ``out``."""
    ns = client.provider(provider)
    if bop.check is not None:
        for _, params in items:
            bop.check(ns, params)  # InvalidRequestError: exit 2, nothing sent
    limiter = client.limiter(provider)
    return await _fan(
        client, lambda it: bop.run(ns, it[1], out / it[0]), items, concurrency, label, quiet, lambda: limiter.waiting
    )


def _image(result: Result) -> ImageResult:
    """The image an image operation returned."""
    if not isinstance(result, ImageResult):
        raise TypeError(f"expected an image result, got {type(result).__name__}")
    return result


def _path(result: Result) -> Path:
    """The file an image operation saved (the CLI always gives a file)."""
    path = _image(result).path
    assert path is not None
    return path


class _Terminated(Exception):
    """SIGTERM arrived: the run was cancelled as Ctrl-C cancels it."""


async def _cancel_on_sigterm(coro: Awaitable[int]) -> int:
    """Run ``coro``; SIGTERM cancels it (part files removed, journal closed) and raises _Terminated."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    terminated = False

    def on_term() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, on_term)
    try:
        code = await coro
    except (asyncio.CancelledError, Exception):
        if terminated:  # whatever the cancelled run ended with, it ended because of SIGTERM
            raise _Terminated from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
    if terminated:  # a run that swallowed the cancellation still exits 143
        raise _Terminated
    return code


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when ``aioface[speed]`` is installed (``AIOFACE_LOOP=asyncio`` turns it off)."""
    if os.environ.get("AIOFACE_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _run(coro: Awaitable[int]) -> None:
    factory = _loop_factory()
    logging.getLogger("aioface").debug("event loop: %s", "uvloop" if factory else "asyncio")
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            code: int = runner.run(_cancel_on_sigterm(coro))
    except AiofaceError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        if isinstance(exc, TaskTimeoutError) and exc.task_id and exc.provider:
            err_console.print(
                f"the task may still finish: aioface result --task-id {exc.task_id} --provider {exc.provider}",
                highlight=False,
            )
        code = EXIT_USAGE if isinstance(exc, (InvalidRequestError, ConfigurationError)) else EXIT_SOME_FAILED
    except KeyboardInterrupt:
        err_console.print("interrupted: finished files are kept, partial ones removed; rerun to resume")
        code = 130
    except _Terminated:
        err_console.print("terminated: finished files are kept, partial ones removed; rerun to resume")
        code = 143
    sys.exit(code)


def _file_name(name: str) -> str:
    """A --name that is one file name in --out (not empty, no folder part)."""
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise click.BadParameter(f"must be a file name (no '/'), got {name!r}", param_hint="--name")
    return name


def _check_out(out: Path) -> None:
    """Refuse an --out no image could be saved in, before anything is sent (exit 2)."""
    try:
        check_destination(out / "probe.jpg", param="--out")
    except InvalidRequestError as exc:
        raise click.BadParameter(exc.message.removeprefix("--out: "), param_hint="--out") from None


def _parse_range(spec: str) -> list[int]:
    try:
        if "-" in spec:
            lo, hi = (int(x) for x in spec.split("-", 1))
            if lo > hi:
                raise ValueError
            return list(range(lo, hi + 1))
        return [int(x) for x in spec.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected A-B or A,B,C; got {spec!r}", param_hint="--ages") from None


def _face_rect(spec: str) -> dict[str, int]:
    """``X,Y,W,H`` as a face rectangle."""
    try:
        x, y, w, h = (int(v) for v in spec.split(","))
    except ValueError:
        raise click.BadParameter(f"expected X,Y,W,H (integers), got {spec!r}", param_hint="--face-rect") from None
    return {"x": x, "y": y, "width": w, "height": h}


def _parse_params(values: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for v in values:
        if "=" not in v:
            raise click.BadParameter(f"expected KEY=VALUE, got {v!r}", param_hint="--param")
        k, val = v.split("=", 1)
        out[k] = int(val) if val.lstrip("-").isdigit() else val
    return out


common_out = click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Folder for the images.",
)
common_conc = click.option(
    "--concurrency",
    "-c",
    default=16,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Requests in flight at once (rate limits still apply).",
)
common_limit = click.option(
    "--limit",
    "limits",
    multiple=True,
    metavar="SPEC",
    help="Rate limits, e.g. '5/minute,120/day' or 'facestudio=30/2s'; beats tier presets.",
)
common_quiet = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")


def _set_store(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        os.environ["AIOFACE_LIMITS_STORE"] = value  # read by Client(); children inherit it


common_store = click.option(
    "--limits-store",
    metavar="URL",
    expose_value=False,
    callback=_set_store,
    help="Share limits with other processes and hosts, e.g. redis://127.0.0.1:6379/0 [env AIOFACE_LIMITS_STORE].",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aioface")
def main() -> None:
    """aioface: drive face-image AI APIs concurrently, at their rate limits and not a request faster.

    Keys come from AIOFACE_FACESTUDIO_KEY, AIOFACE_ACEDATA_TOKEN and AIOFACE_AILAB_KEY; base URLs
    from AIOFACE_<PROVIDER>_BASE_URL. Try `aioface demo` first: it runs against the emulator.
    Set AIOFACE_LOG_LEVEL=DEBUG to see every request (keys are never logged).
    """
    level = os.environ.get("AIOFACE_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(level=getattr(logging, level, logging.WARNING), format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


@main.command()
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
@common_out
@common_conc
@common_limit
@common_store
@common_quiet
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
    extra = _parse_params(params)
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
        items = [(f"age-{a:02d}", {**base, "age": a}) for a in _parse_range(ages)]
    else:
        items = [(f"face-{i:04d}", {**base, **({"age": age} if age is not None else {})}) for i in range(count)]
    provider, bop = _operation("generate", None)
    for _, p in items:
        _precheck(bop, p)
    _check_out(out)
    lim = _limits_option(limits, provider)

    async def go() -> int:
        start = time.monotonic()
        async with Client(limits=lim, on_limit_wait=_announce_wait) as client:
            oks, fails = await _run_all(client, provider, bop, items, out, concurrency, "generate", quiet)
        if gif is not None and oks:
            frames = sorted(oks, key=lambda x: x[0][0])
            _write_gif([_path(r) for _, r in frames], gif, fps)
            out_console.print(f"GIF: {gif} ({len(frames)} frames)", highlight=False)
        _summary(len(oks), len(fails), time.monotonic() - start, out)
        return EXIT_SOME_FAILED if fails else EXIT_OK

    _run(go())


def _write_gif(paths: Sequence[Path], dest: Path, fps: int) -> None:
    from PIL import Image

    frames = [Image.open(p).convert("RGB") for p in paths]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
    os.replace(tmp, dest)


@main.command(name="change-age")
@click.argument("image_url")
@click.option("--age", "ages", multiple=True, type=int, required=True, help="Target age (10-80), one per face.")
@click.option(
    "--face-rect",
    "face_rects",
    multiple=True,
    metavar="X,Y,W,H",
    help="The face each --age is for (one per --age, in order); default: the provider finds them.",
)
@click.option(
    "--name",
    default="aged",
    show_default=True,
    callback=lambda c, p, v: _file_name(v),
    help="File name (suffix from the content).",
)
@common_out
@common_limit
@common_store
def change_age(
    image_url: str, ages: tuple[int, ...], face_rects: tuple[str, ...], name: str, out: Path, limits: tuple[str, ...]
) -> None:
    """Change the age of the faces in IMAGE_URL (Ace Data Cloud).

    \b
    Example: aioface change-age https://cdn.acedata.cloud/f5687u.png --age 60 --out aged
    Two faces: --age 60 --face-rect 10,20,100,120 --age 20 --face-rect 200,30,90,110
    """
    provider, bop = _operation("change_age", None)
    params: dict[str, Any] = {"image_url": image_url, "ages": list(ages)}
    if face_rects:
        params["face_rects"] = [_face_rect(r) for r in face_rects]
    _precheck(bop, params)
    _check_out(out)
    lim = _limits_option(limits, provider)

    async def go() -> int:
        start = time.monotonic()
        async with Client(limits=lim, on_limit_wait=_announce_wait) as client:
            r = _image(await bop.run(client.provider(provider), params, out / name))
        out_console.print(f"saved {r.path} ({r.bytes} bytes, {r.width}x{r.height})", highlight=False)
        _summary(1, 0, time.monotonic() - start, None)
        return EXIT_OK

    _run(go())


@main.command()
@click.option("--source", required=True, help="Image giving the face (URL; a path or URL for ailab).")
@click.option("--target", required=True, help="Image whose face is replaced (URL; a path or URL for ailab).")
@click.option(
    "--provider", type=click.Choice(_providers_of("swap")), default=None, help="Default: the first offering swap."
)
@click.option(
    "--name",
    default="swapped",
    show_default=True,
    callback=lambda c, p, v: _file_name(v),
    help="File name (suffix from the content).",
)
@click.option("--callback-host", help="acedata: receive the result by callback, listening on this host.")
@click.option("--callback-port", type=int, default=0, help="Port for the callback receiver (0: any free one).")
@click.option("--callback-url", help="Public base URL that reaches the receiver (default http://HOST:PORT).")
@click.option(
    "--timeout",
    type=click.IntRange(1),
    help="acedata: seconds the provider may take (its default 120); past it the task id is printed.",
)
@common_out
@common_limit
@common_store
def swap(
    source: str,
    target: str,
    provider: str | None,
    name: str,
    callback_host: str | None,
    callback_port: int,
    callback_url: str | None,
    timeout: int | None,
    out: Path,
    limits: tuple[str, ...],
) -> None:
    """Swap the face of SOURCE into TARGET.

    \b
    Example: aioface swap --source https://cdn.acedata.cloud/n1lmd8.png \\
                          --target https://cdn.acedata.cloud/3np95r.png --out swapped
    """
    prov, bop = _operation("swap", provider)
    params: dict[str, Any] = {"source": source, "target": target}
    if timeout is not None:
        if "timeout" not in bop.optional:
            raise click.BadParameter(f"{prov} takes no timeout", param_hint="--timeout")
        params["timeout"] = timeout
    _precheck(bop, params)
    _check_out(out)
    if callback_host and "callback" not in bop.extras:
        raise click.BadParameter(f"{prov} does not answer by callback", param_hint="--callback-host")
    lim = _limits_option(limits, prov)

    async def go() -> int:
        start = time.monotonic()
        async with Client(limits=lim, on_limit_wait=_announce_wait) as client:
            ns = client.provider(prov)
            if callback_host:
                async with CallbackReceiver(host=callback_host, port=callback_port, public_url=callback_url) as rx:
                    r = _image(await bop.run(ns, {**params, "callback": rx}, out / name))
            else:
                r = _image(await bop.run(ns, params, out / name))
        out_console.print(f"saved {r.path} ({r.bytes} bytes, task {r.task_id})", highlight=False)
        _summary(1, 0, time.monotonic() - start, None)
        return EXIT_OK

    _run(go())


@main.command()
@click.argument("jobs", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@common_out
@common_conc
@common_limit
@common_store
@common_quiet
def batch(jobs: Path, out: Path, concurrency: int, limits: tuple[str, ...], quiet: bool) -> None:
    """Run the jobs of JOBS (one JSON object a line) into --out; rerun to resume.

    \b
    Lines look like:
      {"id": "a1", "op": "generate", "age": 30, "seed": 7}
      {"id": "b2", "op": "change_age", "image_url": "https://...", "ages": [60]}
      {"id": "c3", "op": "swap", "provider": "ailab", "source": "me.jpg", "target": "https://..."}
    Results go to OUT/results.jsonl, one line a job. Exit 0: all ok; 1: some failed; 2: bad usage.
    Example: aioface batch jobs.jsonl --out results -c 32
    """
    lim = _limits_option(limits, None)
    if str(jobs) == "-":
        jobs = Path("/dev/stdin")
    _check_out(out)

    async def go() -> int:
        total = _count_lines(jobs)
        with _Tracker(total, "batch", quiet) as tracker:
            async with Client(limits=lim, on_limit_wait=_announce_wait) as client:

                def on_outcome(o: Any, s: Any) -> None:
                    tracker.update(o.ok, s.in_flight)
                    if not o.ok:
                        err_console.print(f"[red]failed[/red] line {o.item[0]}: {o.error}", highlight=False)

                with applied(tracker.stages.options()):  # the fan-out's tasks inherit it
                    summary = await run_batch(client, jobs, out, concurrency=concurrency, on_outcome=on_outcome)
        _summary(summary.ok, summary.failed, summary.elapsed, out, summary.skipped)
        out_console.print(f"journal: {out / 'results.jsonl'}", highlight=False)
        if summary.stopped is not None:
            err_console.print(
                f"[red]stopped early:[/red] {summary.stopped}; free some space and rerun", highlight=False
            )
        return EXIT_SOME_FAILED if summary.failed or summary.stopped else EXIT_OK

    _run(go())


def _count_lines(path: Path) -> int | None:
    """Jobs in a regular file (for the progress bar); None for a pipe, which can be read only once."""
    if not stat.S_ISREG(path.stat().st_mode):
        return None
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


@main.command()
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


def _bench_providers(value: str) -> list[str]:
    names = [p.strip() for p in value.split(",") if p.strip()]
    known = benchable()
    bad = [p for p in names if p not in known]
    if bad or not names:
        raise click.BadParameter(f"choose from {', '.join(known)}; got {value!r}", param_hint="--provider")
    return list(dict.fromkeys(names))


def _prices(values: Sequence[str], names: Sequence[str]) -> dict[str, tuple[float, str]]:
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


@main.command()
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
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the images here (default: a temporary folder, removed).",
)
@common_conc
@common_limit
@common_store
@common_quiet
def bench(
    provider_list: str,
    op: str | None,
    n: int,
    use_emulator: bool,
    prices: tuple[str, ...],
    json_path: Path | None,
    png_path: Path | None,
    out: Path | None,
    concurrency: int,
    limits: tuple[str, ...],
    quiet: bool,
) -> None:
    """Benchmark providers: N calls each at concurrency C within their limits, side by side.

    Prints call latency p50/p90/p99, time queued / processing / downloading, HTTP time to first
    byte vs total, limiter wait, throughput, errors by code and (with a price) cost per image;
    --json and --png save the report and a chart. Runs against the emulator unless a key is set.

    \b
    Example: aioface bench --emulator --provider ailab -n 40 -c 8 --png bench.png
    Compare: aioface bench --provider acedata,ailab --op swap -n 40 --png swap.png
    """
    from ..jobs._bench import run_comparison, write_comparison_png, write_png

    names = _bench_providers(provider_list)
    if op is not None:
        lacking = [p for p in names if p not in benchable(op)]
        if lacking:
            raise click.BadParameter(f"{', '.join(lacking)} cannot be benchmarked with {op!r}", param_hint="--op")
    price_map = _prices(prices, names)
    lim: dict[str, str] = {}
    for v in limits:
        lim.update(_limits_option([v], names[0] if len(names) == 1 else None))
    keyed = any(os.environ.get(providers()[p].key_env) for p in names)
    emulated = use_emulator or not keyed

    async def go() -> int:
        timings: list[RequestTiming] = []
        folder = out or Path(tempfile.mkdtemp(prefix="aioface-bench-"))
        label = f"bench {', '.join(names)}"
        try:
            with _Tracker(n * len(names), label, quiet) as tracker:

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
                else:
                    async with Client(limits=lim, on_request=timings.append, on_limit_wait=_announce_wait) as client:
                        reports = await run_comparison(
                            client, timings, names, n, concurrency, folder, done, op=op, prices=price_map
                        )
        finally:
            if out is None:
                shutil.rmtree(folder, ignore_errors=True)
        if emulated and not quiet:
            err_console.print("(against the built-in emulator: set a provider key to measure the real one)")
        for report in reports:
            _print_bench(report)
        if len(reports) > 1:
            _print_comparison(reports)
        if json_path is not None:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            doc = reports[0].to_json() if len(reports) == 1 else {"providers": [r.to_json() for r in reports]}
            json_path.write_bytes(_json.dumps(doc))  # noqa: ASYNC240 - one small file, after the run
        if png_path is not None:
            if len(reports) == 1:
                write_png(reports[0], png_path)
            else:
                write_comparison_png(reports, png_path)
        return EXIT_SOME_FAILED if any(r.failed for r in reports) else EXIT_OK

    _run(go())


def _print_comparison(reports: Sequence[Any]) -> None:
    from rich.table import Table

    from ..jobs._bench import PHASES

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


def _print_bench(report: Any) -> None:
    from rich.table import Table

    from ..jobs._bench import PHASES

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
        + (f"; {cost:.4g} {report.price[1]} per image" if cost is not None else ""),
        highlight=False,
    )


@main.command()
@click.option("--count", "-n", default=24, show_default=True, type=click.IntRange(1, 10_000))
@common_out
@common_conc
@common_quiet
def demo(count: int, out: Path, concurrency: int, quiet: bool) -> None:
    """Start the emulator in-process and run all three providers against it.

    Generates COUNT faces concurrently at the Professional tier's limits (time compressed 60x),
    ages one face with Ace Data, swaps faces with Ace Data and with AILab, and prints a summary.
    """
    from ..emulator._demo import run_demo

    async def fan(
        client: Client, provider: str, bop: BatchOp, items: Sequence[Named], label: str
    ) -> tuple[list[Path], int]:
        oks, fails = await _run_all(client, provider, bop, items, out, concurrency, label, quiet)
        return [_path(r) for _, r in oks], len(fails)

    def say(line: str) -> None:
        out_console.print(line, highlight=False)

    def fail(error: BaseException) -> None:
        err_console.print(f"[red]failed[/red]: {error}", highlight=False)

    async def go() -> int:
        start = time.monotonic()
        oks, fails = await run_demo(out, count, fan=fan, say=say, fail=fail)
        _summary(oks, fails, time.monotonic() - start, out)
        return EXIT_SOME_FAILED if fails else EXIT_OK

    _run(go())


# The commands made from the registry (``change-gender``, ``beautify``, ``cartoon``, ``analyze``,
# ``detect-live``, a plug-in's...) are added by ``_cli_ops``, which the entry points import.
