"""``aioface bench``: N calls at concurrency C, within the limits; latency, throughput, errors."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .. import _json
from .._client import Client
from .._dispatch import RequestTiming
from .._errors import ConfigurationError, InvalidRequestError, StorageError, TaskError
from .._options import Options, applied
from .._types import Result, TaskEvent
from ..providers import get, providers
from ..results._dest import check_destination
from ..tasks._fanout import FanOut

#: The phases of a call, from its task events (plus ``limiter wait`` from the HTTP timings).
PHASES = ("queued", "processing", "downloading")


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99, mean and max of ``values`` (empty: all zero)."""
    if not values:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "mean": 0.0, "max": 0.0}
    s = sorted(values)

    def pick(q: float) -> float:
        return s[min(len(s) - 1, round(q * (len(s) - 1)))]

    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "mean": statistics.fmean(s), "max": s[-1]}


@dataclass
class BenchReport:
    """What one benchmark run measured (seconds throughout)."""

    provider: str
    operation: str
    requests: int
    concurrency: int
    ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    call_latency: dict[str, float] = field(default_factory=dict)
    http_total: dict[str, float] = field(default_factory=dict)
    http_ttfb: dict[str, float] = field(default_factory=dict)
    limiter_wait: dict[str, float] = field(default_factory=dict)
    http_status: dict[str, int] = field(default_factory=dict)
    #: (start offset, call seconds, ok) per call, for the timeline chart.
    calls: list[tuple[float, float, bool]] = field(default_factory=list)
    #: Seconds spent per phase (queued, processing, downloading): p50/p90/p99/mean/max over calls.
    phases: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Calls the provider accepted (and so bills): the successes and the tasks that failed after.
    billed: int = 0
    #: What one accepted call costs, (amount, unit), when the provider publishes it or one was given.
    price: tuple[float, str] | None = None

    @property
    def cost_per_image(self) -> float | None:
        """Price times accepted calls, over the images received; None without a price or an image."""
        if self.price is None or not self.ok:
            return None
        return self.price[0] * self.billed / self.ok

    @property
    def throughput(self) -> float:
        """Successful calls per second."""
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """Everything, JSON-ready."""
        return {
            "provider": self.provider,
            "operation": self.operation,
            "requests": self.requests,
            "concurrency": self.concurrency,
            "ok": self.ok,
            "failed": self.failed,
            "seconds": self.seconds,
            "throughput_per_s": self.throughput,
            "errors": self.errors,
            "call_latency": self.call_latency,
            "http_total": self.http_total,
            "http_ttfb": self.http_ttfb,
            "limiter_wait": self.limiter_wait,
            "http_status": self.http_status,
            "calls": [{"start": s, "seconds": d, "ok": ok} for s, d, ok in self.calls],
            "phases": self.phases,
            "billed": self.billed,
            "price": None if self.price is None else {"amount": self.price[0], "unit": self.price[1]},
            "cost_per_image": self.cost_per_image,
        }


def operation(provider: str) -> str:
    """What ``provider`` is benchmarked with (ConfigurationError if it offers nothing)."""
    spec = get(provider)
    if spec.bench is None:
        raise ConfigurationError(f"provider {provider!r} has no benchmark operation")
    return spec.bench.description


def benchable(op: str | None = None) -> list[str]:
    """Providers that offer a benchmark operation (``op``, when given)."""
    return [
        name
        for name, spec in providers().items()
        if spec.bench is not None and (op is None or spec.bench.select(op) is not None)
    ]


def bench_ops() -> list[str]:
    """Every operation some provider can be benchmarked with."""
    seen: dict[str, None] = {}
    for spec in providers().values():
        if spec.bench is not None:
            seen.update(dict.fromkeys(spec.bench.names))
    return list(seen)


def phase_seconds(events: Sequence[TaskEvent], end: float) -> dict[str, float]:
    """Seconds in each phase of one call from its task events (``callback`` counts as processing)."""
    out = dict.fromkeys(PHASES, 0.0)
    following: list[TaskEvent | None] = [*events[1:], None]
    for ev, nxt in zip(events, following, strict=False):
        stage = "processing" if ev.status == "callback" else ev.status
        if stage in out:
            out[stage] += (nxt.at if nxt is not None else end) - ev.at
    return out


async def run_bench(
    client: Client,
    timings: list[RequestTiming],
    provider: str,
    n: int,
    concurrency: int,
    out: Path,
    on_done: Callable[[bool], None] | None = None,
    *,
    op: str | None = None,
    price: tuple[float, str] | None = None,
) -> BenchReport:
    """Run ``n`` calls of ``op`` (default: the provider's benchmark operation); ``timings`` must be
    the list the client's ``on_request`` appends to. ``price`` overrides the provider's own."""
    bench = get(provider).bench
    chosen = bench.select(op) if bench is not None else None
    if bench is None or chosen is None:
        raise ConfigurationError(f"provider {provider!r} has no benchmark operation {op or ''}".rstrip())
    description, make = chosen
    call = make(client.provider(provider))
    report = BenchReport(provider, description, n, concurrency, price=price or bench.price)
    start = time.perf_counter()
    phases: dict[str, list[float]] = {p: [] for p in PHASES}

    async def timed(i: int) -> Result:
        t = time.perf_counter()
        ok = False
        events: list[TaskEvent] = []
        try:
            with applied(Options(on_status=events.append)):
                result = await call(out / f"{provider}-{i}")
            ok = True
            return result
        finally:
            report.calls.append((t - start, time.perf_counter() - t, ok))
            if ok:
                for p, secs in phase_seconds(events, time.monotonic()).items():
                    phases[p].append(secs)

    errors: Counter[str] = Counter()
    async with FanOut(timed, range(n), concurrency=concurrency) as results:
        async for o in results:
            if o.ok:
                report.ok += 1
                report.billed += 1
            else:
                report.failed += 1
                report.billed += isinstance(o.error, TaskError)  # accepted, then failed or timed out
                errors[str(getattr(o.error, "code", type(o.error).__name__))] += 1
            if on_done is not None:
                on_done(o.ok)
    report.seconds = time.perf_counter() - start
    report.errors = dict(errors)
    mine = [t for t in timings if t.provider == provider]
    report.call_latency = percentiles([d for _, d, ok in report.calls if ok])
    report.http_total = percentiles([t.total for t in mine])
    report.http_ttfb = percentiles([t.ttfb for t in mine if t.ttfb is not None])
    report.limiter_wait = percentiles([t.sent - t.queued for t in mine])
    report.http_status = dict(Counter(str(t.status or t.error) for t in mine))
    report.phases = {p: percentiles(v) for p, v in phases.items()}
    return report


async def run_comparison(
    client: Client,
    timings: list[RequestTiming],
    providers_: Sequence[str],
    n: int,
    concurrency: int,
    out: Path,
    on_done: Callable[[str, bool], None] | None = None,
    *,
    op: str | None = None,
    prices: dict[str, tuple[float, str]] | None = None,
) -> list[BenchReport]:
    """The same benchmark on several providers at once (each within its own limits)."""
    import anyio

    reports: dict[str, BenchReport] = {}

    async def one(p: str) -> None:
        done = None if on_done is None else (lambda ok: on_done(p, ok))
        reports[p] = await run_bench(client, timings, p, n, concurrency, out, done, op=op, price=(prices or {}).get(p))

    async with anyio.create_task_group() as tg:
        for p in providers_:
            tg.start_soon(one, p)
    return [reports[p] for p in providers_]


_BLUE, _RED, _PINK, _INK, _GRID = (68, 119, 170), (204, 51, 17), (204, 102, 119), (34, 34, 34), (225, 225, 225)


def _axes(
    draw: Any,
    box: tuple[int, int, int, int],
    x_max: float,
    y_max: float,
    xlabel: str,
    ylabel: str,
    x_ticks: bool = True,
) -> Any:
    """Frame, grid and tick labels for a panel; returns ``to_px(x, y)``."""
    left, top, right, bottom = box
    for i in range(5):
        y = bottom - (bottom - top) * i / 4
        draw.line([(left, y), (right, y)], fill=_GRID)
        draw.text((left - 6, y), f"{y_max * i / 4:.3g}", fill=_INK, anchor="rm")
        x = left + (right - left) * i / 4
        if x_ticks:
            draw.text((x, bottom + 6), f"{x_max * i / 4:.3g}", fill=_INK, anchor="mt")
    draw.rectangle(box, outline=_INK)
    draw.text(((left + right) / 2, bottom + 22), xlabel, fill=_INK, anchor="mt")
    draw.text((left, top - 6), ylabel, fill=_INK, anchor="ls")

    def to_px(x: float, y: float) -> tuple[float, float]:
        return left + (right - left) * x / (x_max or 1.0), bottom - (bottom - top) * y / (y_max or 1.0)

    return to_px


def write_png(report: BenchReport, path: Path) -> None:
    """A latency histogram and a timeline of calls, as a PNG (drawn with Pillow: no extra needed)."""
    from PIL import Image, ImageDraw

    width, height = 1100, 420
    im = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(im)
    lat = [d for _, d, ok in report.calls if ok]

    # Left: histogram of call latency, with p50/p90/p99 marked.
    box = (70, 50, 520, 350)
    draw.text((295, 12), f"{report.provider}: {report.operation}", fill=_INK, anchor="mt")
    bins = 30
    hi = max(lat, default=0.0) or 1.0
    counts = [0] * bins
    for v in lat:
        counts[min(bins - 1, int(v / hi * bins))] += 1
    to_px = _axes(draw, box, hi, max(counts, default=0) or 1, "call latency (s)", "calls")
    for i, n in enumerate(counts):
        if n:
            x0, y0 = to_px(hi * i / bins, n)
            x1, y1 = to_px(hi * (i + 1) / bins, 0)
            draw.rectangle([x0 + 1, y0, x1 - 1, y1], fill=_BLUE)
    for q in ("p50", "p90", "p99"):
        x, _ = to_px(report.call_latency.get(q, 0.0), 0)
        for y in range(box[1], box[3], 8):  # dashed
            draw.line([(x, y), (x, min(y + 4, box[3]))], fill=_PINK, width=2)
        draw.text((x + 3, box[1] + 4), q, fill=_PINK)

    # Right: each call's start against its latency, ok and failed.
    box = (610, 50, 1060, 350)
    draw.text((835, 12), f"{report.ok} ok, {report.failed} failed, {report.throughput:.1f}/s", fill=_INK, anchor="mt")
    t_max = max((s + d for s, d, _ in report.calls), default=0.0) or 1.0
    d_max = max((d for _, d, _ in report.calls), default=0.0) or 1.0
    to_px = _axes(draw, box, t_max, d_max, "call start (s)", "latency (s)")
    for start, d, ok in report.calls:
        x, y = to_px(start, d)
        draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=_BLUE if ok else _RED)
    for i, (label, color) in enumerate((("ok", _BLUE), ("failed", _RED))):
        draw.ellipse([box[0] + 10, box[1] + 10 + 16 * i, box[0] + 16, box[1] + 16 + 16 * i], fill=color)
        draw.text((box[0] + 22, box[1] + 13 + 16 * i), label, fill=_INK, anchor="lm")

    replace_regular_file(path, lambda f: im.save(f, format="PNG"))


_PALETTE = ((68, 119, 170), (238, 119, 51), (34, 136, 51), (170, 51, 119), (102, 204, 238), (187, 187, 187))
_PHASE_COLORS = {"limiter wait": (187, 187, 187), "queued": (238, 204, 102), "processing": (68, 119, 170),
                 "downloading": (34, 136, 51)}  # fmt: skip


def write_comparison_png(reports: Sequence[BenchReport], path: Path) -> None:
    """Providers side by side (drawn with Pillow): latency distributions (box: p50-p90, whiskers to
    p99 and max), mean time per phase, and throughput / errors / cost per image under each."""
    from PIL import Image, ImageDraw

    k = max(1, len(reports))
    width, height = 1100, 410 + 18 * k
    im = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(im)

    # Left: one latency box per provider.
    box = (70, 50, 520, 350)
    draw.text((295, 12), "call latency by provider", fill=_INK, anchor="mt")
    y_max = max((r.call_latency.get("max", 0.0) for r in reports), default=0.0) or 1.0
    to_px = _axes(draw, box, float(k), y_max, "", "seconds", x_ticks=False)
    for i, r in enumerate(reports):
        color = _PALETTE[i % len(_PALETTE)]
        lat = r.call_latency or percentiles([])
        x0, _ = to_px(i + 0.25, 0)
        x1, _ = to_px(i + 0.75, 0)
        xm = (x0 + x1) / 2
        _, y50 = to_px(0, lat["p50"])
        _, y90 = to_px(0, lat["p90"])
        _, y99 = to_px(0, lat["p99"])
        _, ymax = to_px(0, lat["max"])
        draw.line([(xm, y90), (xm, ymax)], fill=color, width=2)
        draw.line([(x0 + 10, ymax), (x1 - 10, ymax)], fill=color, width=2)
        draw.line([(x0 + 5, y99), (x1 - 5, y99)], fill=color, width=2)
        draw.rectangle([x0, y90, x1, y50], outline=color, width=3)
        draw.line([(x0, y50), (x1, y50)], fill=color, width=4)
        draw.text((xm, box[3] + 24), r.provider, fill=color, anchor="mt")

    # Right: mean seconds per phase, stacked, one bar per provider.
    box = (610, 50, 1060, 350)
    draw.text((835, 12), "mean seconds per phase", fill=_INK, anchor="mt")

    def means(r: BenchReport) -> list[tuple[str, float]]:
        parts = [("limiter wait", r.limiter_wait.get("mean", 0.0))]
        parts += [(p, r.phases.get(p, {}).get("mean", 0.0)) for p in PHASES]
        return parts

    total_max = max((sum(v for _, v in means(r)) for r in reports), default=0.0) or 1.0
    to_px = _axes(draw, box, float(k), total_max, "", "seconds", x_ticks=False)
    for i, r in enumerate(reports):
        acc = 0.0
        x0, _ = to_px(i + 0.2, 0)
        x1, _ = to_px(i + 0.8, 0)
        for name, v in means(r):
            if v > 0:
                _, ya = to_px(0, acc)
                _, yb = to_px(0, acc + v)
                draw.rectangle([x0, yb, x1, ya], fill=_PHASE_COLORS[name])
            acc += v
        draw.text(((x0 + x1) / 2, box[3] + 24), r.provider, fill=_PALETTE[i % len(_PALETTE)], anchor="mt")
    for j, (name, color) in enumerate(_PHASE_COLORS.items()):
        y = box[1] + 10 + 16 * j
        draw.rectangle([box[0] + 10, y, box[0] + 20, y + 10], fill=color)
        draw.text((box[0] + 26, y + 5), name, fill=_INK, anchor="lm")

    # Under both: one line per provider.
    for i, r in enumerate(reports):
        cost = r.cost_per_image
        price = f", {cost:.3g} {r.price[1]}/image" if cost is not None and r.price else ""
        errs = ", ".join(f"{c} {n}" for c, n in sorted(r.errors.items())) or "no errors"
        line = f"{r.provider} ({r.operation}): {r.ok} ok, {r.failed} failed, {r.throughput:.2f}/s; {errs}{price}"
        draw.text((70, 400 + 18 * i), line, fill=_PALETTE[i % len(_PALETTE)])

    replace_regular_file(path, lambda f: im.save(f, format="PNG"))


def check_report_path(path: Path, *, param: str) -> None:
    """Refuse, before the run is paid for, a report path no report could be written to: a folder in
    the way, a parent that is a file, a read-only folder, a full disk, or something there that is
    not a regular file (a device, a FIFO, a symlink: never replaced). :class:`InvalidRequestError`."""
    check_destination(path, param=param)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InvalidRequestError(f"{param}: {path}: {exc.strerror or exc}", param=param) from None
    if not stat.S_ISREG(mode):
        raise InvalidRequestError(f"{param}: {path} is not a regular file", param=param)


def write_json(reports: Sequence[BenchReport], path: Path) -> None:
    """The report (one provider) or the reports (``{"providers": [...]}``) as JSON, atomically."""
    doc = reports[0].to_json() if len(reports) == 1 else {"providers": [r.to_json() for r in reports]}
    data = _json.dumps(doc)
    replace_regular_file(path, lambda f: f.write(data))


def replace_regular_file(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write ``path`` through a temporary file in its folder, renamed over it only when ``path`` is
    absent or a regular file (a device node, a FIFO or a symlink there stays as it was).
    :class:`StorageError` when it cannot be written; no temporary file is left."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as to any file
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}", errno=exc.errno) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        try:
            mode: int | None = os.lstat(path).st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None and not stat.S_ISREG(mode):
            raise StorageError(f"cannot write {path}: it is not a regular file (left as it is)")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}", errno=exc.errno) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
