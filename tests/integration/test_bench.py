"""aioface bench across providers: the same operation side by side, phases, cost per image, a chart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from aioface import TaskEvent
from aioface._dispatch import RequestTiming
from aioface.emulator import Emulator, Faults
from aioface.jobs._bench import bench_ops, benchable, phase_seconds, run_comparison
from tests.support.cli import EmulatorProcess, aioface


def test_phase_seconds_from_events() -> None:
    ev = [TaskEvent("p", "queued", "t", 0, 1.0), TaskEvent("p", "processing", "t", 1, 3.0),
          TaskEvent("p", "downloading", "t", 2, 6.0), TaskEvent("p", "done", "t", None, 6.5)]  # fmt: skip
    assert phase_seconds(ev, 9.0) == {"queued": 2.0, "processing": 3.0, "downloading": 0.5}
    assert phase_seconds([], 1.0) == {"queued": 0.0, "processing": 0.0, "downloading": 0.0}


def test_registry_offers_swap_on_two_providers() -> None:
    assert {"acedata", "ailab"} <= set(benchable("swap"))
    assert "facestudio" not in benchable("swap") and "swap" in bench_ops()


@pytest.mark.anyio
@pytest.mark.aioface_emulator(task_duration=0.2, faults=Faults(task_fail=0.5), seed=1)
async def test_same_operation_side_by_side(emu: Emulator, tmp_path: Path) -> None:
    timings: list[RequestTiming] = []
    async with emu.client(on_request=timings.append) as client:
        reports = await run_comparison(
            client, timings, ["acedata", "ailab"], 10, 4, tmp_path, op="swap", prices={"ailab": (0.5, "USD")}
        )
    ace, ailab = reports
    assert (ace.provider, ailab.provider) == ("acedata", "ailab")
    assert "swap" in ace.operation and "swap" in ailab.operation
    assert ace.ok == 10 and ace.cost_per_image is None  # no price published or given
    assert ailab.ok + ailab.failed == 10 and ailab.failed >= 1  # tasks that failed after being accepted
    assert ailab.billed == 10 and ailab.cost_per_image == pytest.approx(0.5 * 10 / ailab.ok)
    assert ailab.phases["queued"]["mean"] > 0 and ace.phases["queued"]["mean"] == 0
    assert ace.phases["processing"]["mean"] > 0 and ace.phases["downloading"]["max"] > 0
    assert ailab.errors and all(code for code in ailab.errors)


def test_cli_compares_providers_with_json_and_png(tmp_path: Path) -> None:
    emu = EmulatorProcess("--time-scale", "600", "--task-duration", "0.05")
    try:
        env = emu.env(tmp_path)
        r = aioface("bench", "--provider", "acedata,ailab", "--op", "swap", "-n", "6", "-c", "3",
                    "--price", "ailab=0.02USD", "--json", str(tmp_path / "c.json"), "--png", str(tmp_path / "c.png"),
                    env=env)  # fmt: skip
        bad = aioface("bench", "--provider", "acedata,facestudio", "--op", "swap", env=env)
    finally:
        emu.stop()
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "c.json").read_text())
    assert [p["provider"] for p in doc["providers"]] == ["acedata", "ailab"]
    assert doc["providers"][1]["price"] == {"amount": 0.02, "unit": "USD"}
    assert doc["providers"][1]["cost_per_image"] == pytest.approx(0.02)
    assert "side by side" in r.stdout and "cost per image" in r.stdout
    with Image.open(tmp_path / "c.png") as im:
        assert im.format == "PNG" and im.width == 1100
    assert bad.returncode == 2 and "facestudio" in bad.stderr
