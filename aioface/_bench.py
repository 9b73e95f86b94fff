"""``aioface bench``: N calls at concurrency C, within the limits; latency, throughput, errors."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._client import Client
from ._core import RequestTiming
from ._errors import ConfigurationError
from ._fanout import FanOut
from ._types import ImageResult
from .providers import get, providers


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
        }


def operation(provider: str) -> str:
    """What ``provider`` is benchmarked with (ConfigurationError if it offers nothing)."""
    spec = get(provider)
    if spec.bench is None:
        raise ConfigurationError(f"provider {provider!r} has no benchmark operation")
    return spec.bench.description


def benchable() -> list[str]:
    """Providers that offer a benchmark operation."""
    return [name for name, spec in providers().items() if spec.bench is not None]


async def run_bench(
    client: Client,
    timings: list[RequestTiming],
    provider: str,
    n: int,
    concurrency: int,
    out: Path,
    on_done: Callable[[bool], None] | None = None,
) -> BenchReport:
    """Run ``n`` calls; ``timings`` must be the list the client's ``on_request`` appends to."""
    bench = get(provider).bench
    if bench is None:
        raise ConfigurationError(f"provider {provider!r} has no benchmark operation")
    call = bench.make(client.provider(provider))
    report = BenchReport(provider, bench.description, n, concurrency)
    start = time.perf_counter()

    async def timed(i: int) -> ImageResult:
        t = time.perf_counter()
        ok = False
        try:
            result = await call(out / f"bench-{i}")
            ok = True
            return result
        finally:
            report.calls.append((t - start, time.perf_counter() - t, ok))

    errors: Counter[str] = Counter()
    async with FanOut(timed, range(n), concurrency=concurrency) as results:
        async for o in results:
            if o.ok:
                report.ok += 1
            else:
                report.failed += 1
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
    return report


_BLUE, _RED, _PINK, _INK, _GRID = (68, 119, 170), (204, 51, 17), (204, 102, 119), (34, 34, 34), (225, 225, 225)


def _axes(draw: Any, box: tuple[int, int, int, int], x_max: float, y_max: float, xlabel: str, ylabel: str) -> Any:
    """Frame, grid and tick labels for a panel; returns ``to_px(x, y)``."""
    left, top, right, bottom = box
    for i in range(5):
        y = bottom - (bottom - top) * i / 4
        draw.line([(left, y), (right, y)], fill=_GRID)
        draw.text((left - 6, y), f"{y_max * i / 4:.3g}", fill=_INK, anchor="rm")
        x = left + (right - left) * i / 4
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

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    im.save(tmp, format="PNG")
    tmp.replace(path)
