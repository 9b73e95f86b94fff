"""The aioface command, run as users run it (child processes against a child emulator)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import GifImagePlugin, Image

from tests.support.cli import EmulatorProcess, aioface
from tests.support.files import files_in

KEYS = ["cli-secret-key-0001", "cli-secret-token-0002", "cli-secret-key-0003"]
COMMANDS = ["generate", "change-age", "swap", "batch", "emulator", "demo"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    emu = EmulatorProcess("--time-scale", "600", "--key", "cli-secret-key-0001=professional", "--task-duration", "0.05")
    yield emu
    emu.stop()




@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_an_example_and_no_secret(command: str, emulator: EmulatorProcess, tmp_path: Path) -> None:
    r = aioface(command, "--help", env=emulator.env(tmp_path))
    assert r.returncode == 0
    assert "Example" in r.stdout or "aioface" in r.stdout
    assert not any(k in r.stdout + r.stderr for k in KEYS)


def test_demo_runs_all_three_providers(tmp_path: Path) -> None:
    r = aioface("demo", "--out", str(tmp_path / "demo"), "-n", "12")
    assert r.returncode == 0, r.stderr
    assert "12 faces" not in r.stderr
    assert "15 ok, 0 failed" in r.stdout and "429s from the emulator: 0" in r.stdout
    names = files_in(tmp_path / "demo")
    assert len([n for n in names if n.startswith("face-")]) == 12
    assert {"aged.png", "swapped-acedata.png", "swapped-ailab.jpg"} <= set(names)


def test_lifetime_gif_frames_in_age_order(emulator: EmulatorProcess, tmp_path: Path) -> None:
    env = emulator.env(tmp_path, AIOFACE_FACESTUDIO_LIMITS="30/0.1s")
    gif = tmp_path / "life.gif"
    r = aioface(
        "generate",
        "--ages",
        "1-12",
        "--seed",
        "545972026",
        "--resolution",
        "128",
        "--gif",
        str(gif),
        "--out",
        str(tmp_path / "frames"),
        "-c",
        "6",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert "12 ok, 0 failed" in r.stdout
    with Image.open(gif) as im:
        assert isinstance(im, GifImagePlugin.GifImageFile)
        assert im.n_frames == 12 and im.size == (128, 128)
    assert files_in(tmp_path / "frames") == [f"age-{a:02d}.jpg" for a in range(1, 13)]


def test_exit_codes(emulator: EmulatorProcess, tmp_path: Path) -> None:
    env = emulator.env(tmp_path, AIOFACE_FACESTUDIO_LIMITS="30/0.1s")
    before = emulator.stats().get("facestudio_requests", 0)
    bad = aioface("generate", "--age", "200", "--out", str(tmp_path / "x"), env=env)
    assert bad.returncode == 2 and "age" in bad.stderr
    bad_limit = aioface("generate", "--limit", "5/fortnight", "--out", str(tmp_path / "x"), env=env)
    assert bad_limit.returncode == 2 and "bad limit" in bad_limit.stderr
    assert emulator.stats().get("facestudio_requests", 0) == before  # nothing was sent
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"id": "ok", "op": "generate", "resolution": 128}\n')
    ok = aioface("batch", str(jobs), "--out", str(tmp_path / "b1"), env=env)
    assert ok.returncode == 0, ok.stderr
    jobs.write_text('{"id": "ok", "op": "generate", "resolution": 128}\n{"id": "no", "op": "fly"}\n')
    some = aioface("batch", str(jobs), "--out", str(tmp_path / "b2"), env=env)
    assert some.returncode == 1 and "unknown op" in some.stderr
    missing = aioface("batch", str(tmp_path / "nope.jsonl"), env=env)
    assert missing.returncode == 2


def test_change_age_and_swaps(emulator: EmulatorProcess, tmp_path: Path) -> None:
    env = emulator.env(tmp_path)
    out = tmp_path / "o"
    r = aioface(
        "change-age", "https://cdn.acedata.cloud/f5687u.png", "--age", "60", "--age", "20", "--out", str(out), env=env
    )
    assert r.returncode == 0, r.stderr
    r = aioface(
        "swap",
        "--source",
        "https://a.b/s.png",
        "--target",
        "https://a.b/t.png",
        "--name",
        "sync",
        "--out",
        str(out),
        env=env,
    )
    assert r.returncode == 0, r.stderr
    r = aioface(
        "swap",
        "--source",
        "https://a.b/s.png",
        "--target",
        "https://a.b/t.png",
        "--name",
        "cb",
        "--callback-host",
        "127.0.0.1",
        "--out",
        str(out),
        env=env,
    )
    assert r.returncode == 0, r.stderr
    face = out / "sync.png"
    r = aioface(
        "swap",
        "--provider",
        "ailab",
        "--source",
        str(face),
        "--target",
        str(face),
        "--name",
        "lab",
        "--out",
        str(out),
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert files_in(out) == ["aged.png", "cb.png", "lab.jpg", "sync.png"]
    bad = aioface(
        "swap",
        "--provider",
        "ailab",
        "--source",
        str(tmp_path / "x.gif"),
        "--target",
        str(face),
        "--out",
        str(out),
        env=env,
    )
    assert bad.returncode == 2 and "cannot read" in bad.stderr


def test_secrets_never_leak_into_any_output(emulator: EmulatorProcess, tmp_path: Path) -> None:
    """Run commands that succeed and fail, with debug logging, and grep everything for the keys."""
    env = emulator.env(tmp_path, AIOFACE_FACESTUDIO_LIMITS="30/0.1s", AIOFACE_LOG_LEVEL="DEBUG")
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(
        '{"id": "g", "op": "generate", "resolution": 128}\n'
        '{"id": "f", "op": "change_age", "image_url": "https://x/fetch-fail.png", "ages": [40]}\n'
        '{"id": "s", "op": "generate", "seed": 3, "resolution": 128}\n'
    )
    outputs = []
    for args in (
        ["batch", str(jobs), "--out", str(tmp_path / "out")],
        ["generate", "--age", "5", "--out", str(tmp_path / "g")],
        ["change-age", "https://x/fetch-fail.png", "--age", "40", "--out", str(tmp_path / "c")],
    ):
        r = aioface(*args, env=env)
        outputs.append(r.stdout + r.stderr)
    strict = EmulatorProcess("--strict")
    try:
        r = aioface("generate", "--out", str(tmp_path / "s"), env=strict.env(tmp_path))
        outputs.append(r.stdout + r.stderr)
        assert r.returncode == 1 and "Invalid token." in r.stderr
    finally:
        strict.stop()
    written = [
        p.read_bytes().decode("utf-8", "replace")
        for p in tmp_path.rglob("*")
        if p.is_file() and p.suffix in (".jsonl", ".log", "")
    ]
    blob = "\n".join(outputs + written)
    assert "fetch failed" in blob and "debug" in blob.lower()
    for k in KEYS:
        assert k not in blob
    recs = [json.loads(x) for x in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in recs) == ["f", "g", "s"]


def test_bench_reports_latency_errors_json_and_png(tmp_path: Path) -> None:
    emu = EmulatorProcess("--time-scale", "600", "--latency", "0.01", "--fault", "acedata:500=0.3")
    try:
        env = emu.env(tmp_path, AIOFACE_ACEDATA_LIMITS="100/s")
        r = aioface(
            "bench",
            "--provider",
            "acedata",
            "-n",
            "30",
            "-c",
            "6",
            "--json",
            str(tmp_path / "r.json"),
            "--png",
            str(tmp_path / "r.png"),
            env=env,
        )
        ok = aioface(
            "bench",
            "--provider",
            "facestudio",
            "-n",
            "10",
            "-c",
            "4",
            "--limit",
            "5/0.1s",
            "--json",
            str(tmp_path / "fs.json"),
            env=env,
        )
    finally:
        emu.stop()
    assert r.returncode == 1  # some calls failed, each counted
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["ok"] + rep["failed"] == 30 and rep["failed"] >= 1
    assert rep["errors"] == {"api_error": rep["failed"]}
    assert rep["http_status"]["500"] == rep["failed"]  # POSTs that may have run are not repeated
    assert 0 < rep["call_latency"]["p50"] <= rep["call_latency"]["p90"] <= rep["call_latency"]["p99"]
    assert "p99" in r.stdout and "time to first byte" in r.stdout
    with Image.open(tmp_path / "r.png") as im:
        assert im.format == "PNG" and im.size[0] > 500
    assert ok.returncode == 0, ok.stderr
    fs = json.loads((tmp_path / "fs.json").read_text())
    assert fs["ok"] == 10 and fs["http_status"] == {"200": 10}
    assert fs["http_ttfb"]["p50"] <= fs["http_total"]["p50"]
    assert not any(k in r.stdout + r.stderr + (tmp_path / "r.json").read_text() for k in KEYS)


@pytest.mark.parametrize(("loop", "expected"), [("", "uvloop"), ("asyncio", "asyncio")])
def test_the_cli_runs_on_uvloop_when_installed(
    emulator: EmulatorProcess, tmp_path: Path, loop: str, expected: str
) -> None:
    """aioface[speed] (uvloop) is in the dev extra, so this runs the CLI as speed users get it."""
    env = emulator.env(tmp_path, AIOFACE_LOG_LEVEL="DEBUG", AIOFACE_LOOP=loop)
    r = aioface("generate", "-n", "2", "--resolution", "128", "-q", "--out", str(tmp_path / "o"), env=env)
    assert r.returncode == 0, r.stderr
    assert f"event loop: {expected}" in r.stderr
    assert len(files_in(tmp_path / "o")) == 2
