"""Batch runs: journal, per-line errors, resume, and a real SIGKILL in the middle."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aioface import ConfigurationError
from aioface.emulator import Emulator, EmulatorConfig
from aioface.jobs._batch import JobError, Journal, parse_job, run_batch
from tests.conftest import EmulatorProcess, files_in, image_bytes

KEYS = ["cli-secret-key-0001", "cli-secret-token-0002", "cli-secret-key-0003"]


def _write_jobs(path: Path, lines: list[object]) -> None:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))


def _journal(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_parse_job_errors_name_the_problem() -> None:
    assert parse_job(b'{"id": "a", "op": "generate", "age": 30}', 1).provider == "facestudio"
    assert (
        parse_job(b'{"id": 7, "op": "swap", "source": "https://a/b", "target": "https://a/c"}', 1).provider == "acedata"
    )
    assert parse_job(b'{"id": "c", "op": "change_age", "image_url": "https://a/b", "age": 40}', 1).params["ages"] == [
        40
    ]
    cases = {
        b"{not json": "not valid JSON",
        b"[1, 2]": "JSON object",
        b'{"op": "generate"}': "'id'",
        b'{"id": "x", "op": "teleport"}': "unknown op",
        b'{"id": "x", "op": "generate", "provider": "ailab"}': "offered by",
        b'{"id": "x", "op": "generate", "age": 300}': "age",
        b'{"id": "x", "op": "generate", "colour": "red"}': "unknown parameter",
        b'{"id": "x", "op": "change_age", "image_url": "file:///etc/passwd", "ages": [30]}': "http(s)",
        b'{"id": "x", "op": "swap", "source": "https://a/b"}': "needs target",
        b'{"id": true, "op": "generate"}': "'id'",
        b'{"id": "x", "op": "generate", "pad": "' + b"x" * 70_000 + b'"}': "longer than",
    }
    for raw, fragment in cases.items():
        with pytest.raises(JobError) as ei:
            parse_job(raw, 3)
        assert fragment in str(ei.value) and "line 3" in str(ei.value)


@pytest.mark.anyio
async def test_batch_mixed_jobs_bad_lines_and_resume(tmp_path: Path) -> None:
    face = tmp_path / "me.png"
    face.write_bytes(image_bytes("PNG"))
    jobs = tmp_path / "jobs.jsonl"
    _write_jobs(
        jobs,
        [
            {"id": "a1", "op": "generate", "age": 30, "resolution": 128},
            {"id": "b2", "op": "change_age", "image_url": "https://cdn.acedata.cloud/f5687u.png", "ages": [60]},
            {"id": "c3", "op": "swap", "provider": "ailab", "source": str(face), "target": str(face)},
            {"id": "d4", "op": "swap", "source": "https://a.b/s.png", "target": "https://a.b/t.png"},
            {"id": "../evil", "op": "generate", "resolution": 128},
            "{broken json",
            {"id": "e5", "op": "change_age", "image_url": "https://x.y/fetch-fail.png", "ages": [50]},
            {"id": "a1", "op": "generate"},
            "",
        ],
    )
    out = tmp_path / "out"
    async with Emulator(EmulatorConfig(time_scale=600.0, task_duration=0.05)) as emu:
        async with emu.client() as c:
            s1 = await run_batch(c, jobs, out, concurrency=4)
        assert (s1.ok, s1.failed, s1.skipped) == (5, 3, 0)
        recs = _journal(out)
        assert len(recs) == 8
        by_id = {r["id"]: r for r in recs if r["ok"]}
        assert set(by_id) == {"a1", "b2", "c3", "d4", "../evil"}
        assert by_id["c3"]["task_id"] and by_id["d4"]["task_id"]
        evil = by_id["../evil"]["path"]
        assert isinstance(evil, str) and "/" not in evil and (out / evil).is_file()
        fails = [r for r in recs if not r["ok"]]
        assert {f["error"]["code"] for f in fails} == {"invalid_job", "api_error"}  # type: ignore[index]
        sent = emu.stats["facestudio_requests"]
        # Rerun: the five done jobs are skipped; failures are tried again and recorded once.
        async with emu.client() as c:
            s2 = await run_batch(c, jobs, out, concurrency=4)
        assert (s2.ok, s2.failed, s2.skipped) == (0, 3, 5)
        assert emu.stats["facestudio_requests"] == sent
    recs = _journal(out)
    assert len(recs) == 8 and sum(r["ok"] is True for r in recs) == 5
    assert not [n for n in files_in(out) if n.endswith(".part")]


def test_journal_drops_cut_lines_and_missing_files(tmp_path: Path) -> None:
    out = tmp_path
    (out / "a.jpg").write_bytes(b"x" * 10)
    (out / "results.jsonl").write_text(
        json.dumps({"id": "a", "ok": True, "path": "a.jpg", "bytes": 10})
        + "\n"
        + json.dumps({"id": "b", "ok": True, "path": "b.jpg", "bytes": 10})
        + "\n"
        + json.dumps({"id": "c", "ok": True, "path": "../../x", "bytes": 10})
        + "\n"
        + '{"id": "d", "ok": tr'
    )
    (out / ".a.jpg.1234abcd.part").write_bytes(b"half")  # left by a killed run
    j = Journal(out)
    with pytest.raises(ConfigurationError, match="another aioface batch"):
        Journal(out)
    j.close()
    assert not (out / ".a.jpg.1234abcd.part").exists()
    assert set(j.done) == {"a"}
    assert (out / "results.jsonl").read_text().count("\n") == 1


def _free_jobs(n: int) -> Iterator[dict[str, object]]:
    for i in range(n):
        yield {"id": f"job-{i:04d}", "op": "generate", "age": i % 81, "seed": i + 1, "resolution": 128}


def _cli_batch(tmp_path: Path, n: int) -> tuple[EmulatorProcess, dict[str, str], Path, list[str]]:
    """n seeded Face Studio jobs, an Enterprise-tier emulator process, and the batch command line."""
    jobs = tmp_path / "jobs.jsonl"
    _write_jobs(jobs, list(_free_jobs(n)))
    emu = EmulatorProcess("--time-scale", "600", "--latency", "0.06", "--key", "cli-secret-key-0001=enterprise")
    env = emu.env(tmp_path, AIOFACE_FACESTUDIO_LIMITS="120/0.1s")
    out = tmp_path / "out"
    return emu, env, out, [sys.executable, "-m", "aioface", "batch", str(jobs), "--out", str(out), "-c", "8", "-q"]


@pytest.mark.slow
def test_batch_killed_five_times_then_resumed_matches_a_clean_run(tmp_path: Path) -> None:
    n = 400
    emu, env, out, cmd = _cli_batch(tmp_path, n)
    try:
        rng = random.Random(11)
        kills = 0
        for _ in range(5):
            p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.4, 0.8))
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                kills += 1
            p.wait(timeout=30)
        final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert final.returncode == 0, final.stderr
        stats = emu.stats()
        clean_out = tmp_path / "clean"
        clean_cmd = [*cmd[:6], str(clean_out), *cmd[7:]]
        clean = subprocess.run(clean_cmd, env=env, capture_output=True, text=True, timeout=300)
        assert clean.returncode == 0, clean.stderr
    finally:
        emu.stop()
    assert kills >= 3
    recs = _journal(out)
    ids = [r["id"] for r in recs]
    assert sorted(ids) == [f"job-{i:04d}" for i in range(n)]  # each job exactly once
    assert all(r["ok"] is True for r in recs)
    images = sorted(n for n in files_in(out) if n.endswith(".jpg"))
    assert images == [f"job-{i:04d}.jpg" for i in range(n)]
    assert not [x for x in files_in(out) if x.endswith(".part")]
    # Paid twice only for what was in flight at a kill (8 at most per kill).
    assert n <= stats["facestudio_images"] <= n + 8 * kills
    assert stats.get("throttled", 0) == 0
    # The interrupted-and-resumed run ends exactly where an uninterrupted one does.
    clean_recs = {r["id"]: (r["ok"], r["path"], r["bytes"], r["width"]) for r in _journal(clean_out)}
    assert {r["id"]: (r["ok"], r["path"], r["bytes"], r["width"]) for r in recs} == clean_recs
    for name in images:
        assert (out / name).read_bytes() == (clean_out / name).read_bytes()
    text = (out / "results.jsonl").read_text()
    assert not any(k in text for k in KEYS)


@pytest.mark.anyio
async def test_saved_but_unjournaled_results_are_adopted_not_repaid(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    _write_jobs(
        jobs, [{"id": "a", "op": "generate", "resolution": 128}, {"id": "b", "op": "generate", "resolution": 128}]
    )
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.jpg").write_bytes(image_bytes("JPEG", (96, 64)))  # saved by a run killed before journaling
    (out / "b.jpg").write_bytes(b"\xff\xd8\xff not really")  # not an image: redone
    async with Emulator(EmulatorConfig(time_scale=600.0)) as emu, emu.client() as c:
        s = await run_batch(c, jobs, out, concurrency=2)
        sent = emu.stats["facestudio_requests"]
    assert (s.ok, s.failed) == (2, 0) and sent == 1
    recs = {r["id"]: r for r in _journal(out)}
    assert recs["a"]["recovered"] is True and (recs["a"]["width"], recs["a"]["height"]) == (96, 64)
    assert "recovered" not in recs["b"] and recs["b"]["bytes"] == (out / "b.jpg").stat().st_size


@pytest.mark.slow
def test_ctrl_c_stops_gracefully_and_the_rerun_finishes(tmp_path: Path) -> None:
    n = 300
    emu, env, out, cmd = _cli_batch(tmp_path, n)
    try:
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        journal = out / "results.jsonl"
        deadline = time.monotonic() + 20  # mid-run, however slow the start (a loaded machine)
        while time.monotonic() < deadline and not (journal.exists() and journal.stat().st_size > 0):
            time.sleep(0.02)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
        assert p.returncode == 130, err
        assert "rerun to resume" in err
        partial = _journal(out)  # every line whole and valid JSON
        assert 0 < len(partial) < n
        assert not [x for x in files_in(out) if x.endswith(".part")]
        final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert final.returncode == 0, final.stderr
    finally:
        emu.stop()
    assert sorted(r["id"] for r in _journal(out)) == [f"job-{i:04d}" for i in range(n)]
