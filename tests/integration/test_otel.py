"""OpenTelemetry: spans, events and metrics through the global providers (the SDK's in-memory
exporters), and aioface without ``opentelemetry`` at all (a subprocess that hides the package)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

# opentelemetry-sdk comes with .[dev] (aioface itself needs only the API, and only optionally)
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

import aioface
from aioface import PollPolicy, RetryPolicy
from aioface.emulator import Emulator, EmulatorConfig
from tests.support.servers import picture, provider_app, serve

pytestmark = pytest.mark.anyio

FACE = picture("JPEG", (160, 160))
FAST = PollPolicy(initial=0.02, deadline=10, learn=False, jitter=0.0)
_SPANS = InMemorySpanExporter()
_READER = InMemoryMetricReader()
_installed = False


class _Switch(Sampler):
    """Records spans only during these tests: the global provider outlives them (it can be set once
    per process), and the tests that run later must not pile spans up in memory."""

    on = False

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return SamplingResult(Decision.RECORD_AND_SAMPLE if self.on else Decision.DROP)

    def get_description(self) -> str:
        return "aioface-tests-switch"


_SWITCH = _Switch()


@pytest.fixture
def otel() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    """The global tracer and meter providers (set once per process: OpenTelemetry allows one)."""
    global _installed
    if not _installed:
        tp = TracerProvider(sampler=_SWITCH)
        tp.add_span_processor(SimpleSpanProcessor(_SPANS))
        trace.set_tracer_provider(tp)
        metrics.set_meter_provider(MeterProvider(metric_readers=[_READER]))
        _installed = True
    _SPANS.clear()
    _READER.get_metrics_data()  # cumulative: the tests compare before and after
    _SWITCH.on = True
    try:
        yield _SPANS, _READER
    finally:
        _SWITCH.on = False
        _SPANS.clear()


def points(reader: InMemoryMetricReader, name: str) -> dict[tuple[tuple[str, Any], ...], float]:
    """Each data point of metric ``name`` (sum, or a histogram's count), keyed by its sorted attributes."""
    out: dict[tuple[tuple[str, Any], ...], float] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == name:
                    for p in m.data.data_points:
                        value = p.value if hasattr(p, "value") else p.count
                        out[tuple(sorted((p.attributes or {}).items()))] = value
    return out


def attrs(span: ReadableSpan) -> dict[str, Any]:
    """A finished span's attributes (values as the test reads them)."""
    assert span.attributes is not None
    return dict(span.attributes)


def named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def client(urls: dict[str, str], **kw: Any) -> aioface.Client:
    return aioface.Client(
        keys={"facestudio": "k", "acedata": "k", "ailab": "k"},
        base_urls={"facestudio": "http://127.0.0.1:9", **urls},
        poll=FAST,
        persist_limits=False,
        env={},
        **kw,
    )


async def test_a_span_per_call_with_provider_task_attempts_polls_and_bytes(otel: Any) -> None:
    spans, reader = otel
    before = points(reader, "aioface.requests")
    async with Emulator(EmulatorConfig(task_duration=0.05)) as emu, client({"ailab": emu.url}) as c:
        r = await c.ailab.swap(None, source=FACE, target=FACE)
    (span,) = named(spans.get_finished_spans(), "aioface ailab.swap")
    a = attrs(span)
    assert a["aioface.provider"] == "ailab" and a["aioface.operation"] == "swap"
    assert a["aioface.task_id"] == r.task_id and a["aioface.status"] == "ok"
    assert a["aioface.bytes"] == r.bytes
    assert a["aioface.polls"] >= 1 and a["aioface.attempts"] == 1 + a["aioface.polls"]
    assert a["aioface.limiter.wait_seconds"] >= 0
    after = points(reader, "aioface.requests")
    key = (("aioface.provider", "ailab"), ("aioface.status", "200"))
    assert after[key] - before.get(key, 0) == a["aioface.attempts"]
    waits = points(reader, "aioface.limiter.wait")
    assert waits[(("aioface.provider", "ailab"),)] >= a["aioface.attempts"]
    in_flight = points(reader, "aioface.tasks.in_flight")
    assert in_flight[(("aioface.operation", "swap"), ("aioface.provider", "ailab"))] == 0  # up, then down


async def test_429s_retries_and_waits_are_events_and_counted(otel: Any) -> None:
    spans, reader = otel
    hits: Counter[str] = Counter()
    app = web.Application()

    async def ace(request: web.Request) -> web.Response:
        hits[request.path] += 1
        await request.read()
        if hits[request.path] == 1:
            body = {"error": {"code": "too_many_requests", "message": "slow"}}
            return web.json_response(body, status=429, headers={"Retry-After": "0.05"})
        return web.json_response({"success": True, "image_url": f"http://{request.host}/img.jpg", "task_id": "t-9"})

    async def img(request: web.Request) -> web.Response:
        return web.Response(body=FACE, content_type="image/jpeg")

    app.router.add_post("/face/{op}", ace)
    app.router.add_get("/img.jpg", img)
    before = points(reader, "aioface.rate_limited")
    async with serve(app) as url, client({"acedata": url}, retry=RetryPolicy(max_retries=2, base=0.01)) as c:
        r = await c.acedata.swap(None, source=f"{url}/a.jpg", target=f"{url}/b.jpg")
    assert r.task_id == "t-9"
    (span,) = named(spans.get_finished_spans(), "aioface acedata.swap")
    events = [e.name for e in span.events]
    assert "aioface.rate_limited" in events and "aioface.retry" in events
    assert "aioface.slot_wait" in events  # the retry waited out the 429's pause in the limiter
    assert attrs(span)["aioface.attempts"] == 2
    assert attrs(span)["aioface.limiter.wait_seconds"] > 0.02
    key = (("aioface.provider", "acedata"),)
    assert points(reader, "aioface.rate_limited")[key] - before.get(key, 0) == 1


async def test_a_routed_swap_is_one_span_naming_the_provider_that_served_it(otel: Any) -> None:
    spans, _ = otel
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    hits: Counter[str] = Counter()
    async with serve(provider_app(hits, FACE)) as url:
        async with client({"acedata": closed, "ailab": url}, retry=RetryPolicy(max_retries=0)) as c:
            r = await c.swap(None, source=FACE, target=FACE, providers=("acedata", "ailab"))
    assert r.provider == "ailab"
    finished = spans.get_finished_spans()
    (route,) = named(finished, "aioface swap")
    assert attrs(route)["aioface.provider"] == "ailab"
    assert list(attrs(route)["aioface.failed_over"]) == ["acedata"]
    assert [e.name for e in route.events] == ["aioface.failover"]
    children = [s for s in finished if s.parent is not None and s.parent.span_id == route.context.span_id]
    assert {s.attributes["aioface.provider"] for s in children if s.attributes} == {"acedata", "ailab"}
    (failed,) = named(finished, "aioface acedata.swap")
    assert failed.attributes is not None and failed.attributes["aioface.status"] != "ok"


def test_aioface_imports_and_runs_without_opentelemetry(tmp_path: Path) -> None:
    """A subprocess in which ``import opentelemetry`` fails: aioface imports, wraps nothing, and a
    swap runs against the emulator."""
    script = textwrap.dedent(
        """
        import sys

        class Hide:
            def find_spec(self, name, path=None, target=None):
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    raise ImportError("hidden by the test")
                return None

        sys.meta_path.insert(0, Hide())
        import anyio, aioface
        from aioface import _otel
        from aioface.emulator import Emulator, EmulatorConfig
        from aioface.providers.ailab import AILab

        assert _otel.ENABLED is False
        assert not hasattr(AILab.swap, "__wrapped__")

        async def main():
            async with Emulator(EmulatorConfig(task_duration=0.02)) as emu, emu.client() as c:
                r = await c.ailab.swap(None, source=sys.argv[1], target=sys.argv[1])
                assert r.data
        anyio.run(main)
        assert not any(m.startswith("opentelemetry") for m in sys.modules), "imported anyway"
        print("ran without opentelemetry")
        """
    )
    face = tmp_path / "face.jpg"
    face.write_bytes(FACE)
    env = {**os.environ, "PYTHONPATH": str(Path(aioface.__file__).parent.parent)}
    out = subprocess.run(
        [sys.executable, "-c", script, str(face)], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr
    assert "ran without opentelemetry" in out.stdout
