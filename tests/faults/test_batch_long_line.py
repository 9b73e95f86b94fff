"""A jobs file with a huge line: refused while reading, never held in memory whole."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from aioface.jobs._batch import MAX_LINE, count_jobs, read_job_lines

HUGE = 96 * 1024 * 1024  # 96 MiB on one line
GOOD_A = b'{"id": "a", "op": "generate", "age": 30}\n'
GOOD_B = b'{"id": "b", "op": "generate", "age": 40}\n'

# Run in a child process so that its peak memory is the batch's own: emulator, client, run_batch.
CHILD = r"""
import asyncio, json, resource, sys
from pathlib import Path
from aioface.emulator import Emulator, EmulatorConfig
from aioface.jobs._batch import count_jobs, run_batch

async def main() -> None:
    jobs, out = Path(sys.argv[1]), Path(sys.argv[2])
    total = count_jobs(jobs)
    async with Emulator(EmulatorConfig(time_scale=600.0, task_duration=0.05, seed=1)) as emu:
        async with emu.client() as client:
            s = await run_batch(client, jobs, out, concurrency=2)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
    print(json.dumps({"total": total, "ok": s.ok, "failed": s.failed, "peak": peak}))

asyncio.run(main())
"""


def _write_huge_line(f: object, size: int) -> None:
    chunk = b"x" * (1 << 20)
    f.write(b'{"id": "huge", "op": "generate", "pad": "')  # type: ignore[attr-defined]
    for _ in range(size // len(chunk)):
        f.write(chunk)  # type: ignore[attr-defined]
    f.write(b'"}\n')  # type: ignore[attr-defined]


def test_a_huge_line_is_refused_while_reading_and_memory_stays_low(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    with open(jobs, "wb") as f:
        f.write(GOOD_A)
        _write_huge_line(f, HUGE)
        f.write(GOOD_B)
    out = tmp_path / "out"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(jobs), str(out)], capture_output=True, text=True, timeout=120
        )
    finally:
        jobs.unlink()  # 96 MiB: not left for pytest to keep
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["total"] == 3 and got["ok"] == 2 and got["failed"] == 1  # the other lines still ran
    assert got["peak"] < 150 * 1024 * 1024, f"peak RSS {got['peak'] / 2**20:.0f} MiB"
    journal = [json.loads(line) for line in (out / "results.jsonl").read_bytes().splitlines()]
    bad = [r for r in journal if not r["ok"]]
    assert len(bad) == 1 and bad[0]["line"] == 2 and bad[0]["id"] == "line:2"
    assert f"line 2: longer than {MAX_LINE} bytes" in bad[0]["error"]["message"]
    assert sorted(r["id"] for r in journal if r["ok"]) == ["a", "b"]


def test_the_line_reader_keeps_numbers_skips_blanks_and_caps_lines(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    exact = b"y" * (MAX_LINE - 1) + b"\n"  # MAX_LINE bytes with its newline: still fine
    over = b"z" * MAX_LINE + b"\n"  # one byte more: refused (as before)
    spaces = b" " * (3 * MAX_LINE) + b"{}\n"  # long and not blank
    jobs.write_bytes(GOOD_A + b"\n   \n" + exact + over + spaces + b"w" * (2 * MAX_LINE))  # the last without \n
    got = list(read_job_lines(jobs))
    assert [n for n, _ in got] == [1, 4, 5, 6, 7]
    assert got[0][1] == GOOD_A and got[1][1] == exact and got[2][1] == over
    assert all(len(raw) <= MAX_LINE + 1 for _, raw in got)
    assert len(got[3][1]) == MAX_LINE + 1 and len(got[4][1]) == MAX_LINE + 1
    assert count_jobs(jobs) == 5
