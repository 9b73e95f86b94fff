"""OpenTelemetry installed but no provider set: aioface skips its spans and metrics, and a provider
set later is used from the next call on (the skip is decided per call, never cached as a no)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import aioface

_SCRIPT = textwrap.dedent(
    """
    import anyio
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from aioface import _otel
    from aioface.emulator import Emulator

    IMAGE = "https://cdn.acedata.cloud/f5687u.png"

    def requests_counted(reader):
        data = reader.get_metrics_data()
        return sum(
            p.value
            for rm in (data.resource_metrics if data else ())
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == "aioface.requests"
            for p in m.data.data_points
        )

    async def main():
        async with Emulator() as emu, emu.client() as c:
            assert _otel.ENABLED and not _otel.listening()
            r = await c.acedata.change_age(IMAGE, [60], download=False)
            assert r.source_url
            assert not _otel.listening()

            spans = InMemorySpanExporter()
            tp = TracerProvider()
            tp.add_span_processor(SimpleSpanProcessor(spans))
            trace.set_tracer_provider(tp)
            reader = InMemoryMetricReader()
            metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
            assert _otel.listening()

            await c.acedata.change_age(IMAGE, [60], download=False)  # the same client, the same namespace
            (span,) = spans.get_finished_spans()
            assert span.name == "aioface acedata.change_age", span.name
            assert span.attributes["aioface.attempts"] == 1, dict(span.attributes)
            assert span.attributes["aioface.status"] == "ok"
            assert requests_counted(reader) == 1  # the call after the provider was set, and only it
        print("traced once set")

    anyio.run(main)
    """
)


def _run_fresh(script: str) -> str:
    """``script`` in a fresh interpreter (no OTEL_* variables, this tree's aioface): its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = str(Path(aioface.__file__).parent.parent)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_provider_set_after_calls_without_one_traces_the_next_call() -> None:
    assert "traced once set" in _run_fresh(_SCRIPT)


_UNIMPORTED = textwrap.dedent(
    """
    import sys

    import anyio

    from aioface import _otel
    from aioface.emulator import Emulator

    async def main():
        async with Emulator() as emu, emu.client() as c:
            r = await c.facestudio.generate(resolution=256)
            assert r.data
            assert _otel.ENABLED and not _otel.listening()
        loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry."))
        assert not loaded, loaded
        print("api left unimported")

    anyio.run(main)
    """
)


def test_the_api_is_not_imported_while_nobody_set_a_provider() -> None:
    """OpenTelemetry installed, no provider: aioface runs a call without importing the API (its
    import is ~20 ms of every start-up, the CLI's included); the test above sets one later."""
    assert "api left unimported" in _run_fresh(_UNIMPORTED)
