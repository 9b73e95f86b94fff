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


def write_png(report: BenchReport, path: Path) -> None:
    """A latency histogram and a timeline of calls, as a PNG (needs matplotlib: ``aioface[bench]``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (hist, line) = plt.subplots(1, 2, figsize=(11, 4))
    lat = [d for _, d, ok in report.calls if ok]
    hist.hist(lat, bins=30, color="#4477aa")
    for q in ("p50", "p90", "p99"):
        hist.axvline(report.call_latency[q], linestyle="--", color="#cc6677")
        hist.text(report.call_latency[q], hist.get_ylim()[1] * 0.9, q, rotation=90, va="top")
    hist.set_xlabel("call latency (s)")
    hist.set_ylabel("calls")
    hist.set_title(f"{report.provider}: {report.operation}")
    for want, color, label in ((True, "#4477aa", "ok"), (False, "#cc3311", "failed")):
        pts = [(s, d) for s, d, ok in report.calls if ok is want]
        if pts:
            line.scatter([s for s, _ in pts], [d for _, d in pts], s=8, color=color, label=label)
    line.set_xlabel("call start (s)")
    line.set_ylabel("latency (s)")
    line.set_title(f"{report.ok} ok, {report.failed} failed, {report.throughput:.1f}/s")
    line.legend(loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    tmp.replace(path)
