"""Disks that fill, turn read-only or refuse a name; caches that break; local images that are not files.

Full and read-only disks are small tmpfs mounts made by the test (skipped, with the reason, where
the test cannot mount one): as root, file modes would not stop a write.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import resource
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

import aioface
from aioface import ConfigurationError, DownloadError, ImageRejectedError, InvalidRequestError
from tests.support.cli import cli_env, journal_lines, run_cli
from tests.support.disks import fill, remount_readonly, tmpfs
from tests.support.files import files_in, image_bytes, part_files
from tests.support.mocks import mock_client, mock_providers, paid_requests, run_op
from tests.support.servers import PROVIDERS, noise_jpeg, paid, png_claiming, provider_app, serve

pytestmark = pytest.mark.anyio

JPEG = image_bytes("JPEG", (64, 64))


# ------------------------------------------------------------------------------ 2. the budget store
@pytest.mark.parametrize("stamp_bound", [None, 0.05], ids=["slots until answers", "stamp bound"])
@pytest.mark.parametrize("breakage", ["full", "read-only"])
async def test_a_cache_disk_that_fills_or_turns_read_only_never_hangs_the_limiter(
    breakage: str, stamp_bound: float | None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Persisting a stamp fails after requests were paid for: limiting goes on in memory, with one warning."""
    with tmpfs(tmp_path / "cache", "1m") as cache:
        transport = mock_providers(delay=0.02)  # answers take a while: callers queue behind requests in flight
        limits = {"facestudio": "5/0.1s,100000/day"}  # the day window is persisted; 5/0.1s makes callers queue
        async with mock_client(
            transport, state_dir=cache, limits=limits, persist_limits=True, limit_stamp_bound=stamp_bound
        ) as c:
            await c.facestudio.generate(tmp_path / "out" / "first")
            if breakage == "full":
                for f in cache.rglob("*"):
                    if f.is_file():
                        f.write_bytes(b"")  # give back its block, so that the next stamp needs a new one
                fill(cache)
            else:
                remount_readonly(cache)
            caplog.set_level(logging.WARNING, logger="aioface")
            await anyio.sleep(0.3)  # the short window forgets the first call: only answers free slots now

            async def one(i: int) -> aioface.ImageResult:
                return await c.facestudio.generate(tmp_path / "out" / f"f{i}")

            with anyio.fail_after(8):
                outcomes = await c.map(one, range(20), concurrency=20)
    results = [o.value for o in outcomes if o.ok]
    assert [o.error for o in outcomes if not o.ok] == []
    assert len(results) == 20 and paid_requests(transport) == 21
    warnings = [r for r in caplog.records if r.name.startswith("aioface") and r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert str(cache) in warnings[0].getMessage()


@contextlib.contextmanager
def _broken_cache(kind: str, tmp: Path) -> Iterator[Path]:
    if kind == "state dir is a file":
        (tmp / "cachefile").write_text("not a folder")
        yield tmp / "cachefile"
    elif kind == "its limits folder is a file":
        (tmp / "cache").mkdir()
        (tmp / "cache" / "limits").write_text("not a folder")
        yield tmp / "cache"
    else:
        with tmpfs(tmp / "cache", "1m") as cache:
            remount_readonly(cache)
            yield cache


@pytest.mark.parametrize("kind", ["state dir is a file", "its limits folder is a file", "read-only"])
async def test_a_broken_cache_dir_at_start_is_a_configuration_error(kind: str, tmp_path: Path) -> None:
    with _broken_cache(kind, tmp_path) as cache:
        transport = mock_providers()
        limits = {"facestudio": "5/s,100/day"}
        # At Client() or at the first call that needs the budget: either way before anything is sent.
        with pytest.raises(ConfigurationError, match="persist_limits") as exc:
            async with mock_client(transport, state_dir=cache, limits=limits, persist_limits=True) as c:
                await c.facestudio.generate(tmp_path / "out" / "f")
        assert str(cache) in str(exc.value)
        assert paid_requests(transport) == 0


async def test_cli_with_a_broken_cache_dir_says_so_once_and_exits_2(tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    (tmp_path / "cachefile").write_text("not a folder")
    async with serve(provider_app(hits, JPEG)) as url:
        env = cli_env(
            tmp_path, url, AIOFACE_CACHE_DIR=str(tmp_path / "cachefile"), AIOFACE_FACESTUDIO_LIMITS="5/s,100/day"
        )
        r = await run_cli("generate", "-n", "3", "--out", str(tmp_path / "o"), env=env)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("cachefile") == 1, r.stderr
    assert paid(hits) == 0


# ------------------------------------------------------------------------------ 3. the destination
def _dest_problem(kind: str, tmp: Path, stack: contextlib.ExitStack) -> Path:
    """A destination that cannot be written, and the folder to check afterwards."""
    if kind == "is a directory":
        (tmp / "x.jpg").mkdir()
        return tmp / "x.jpg"
    if kind == "name too long":
        return tmp / ("n" * 300 + ".jpg")
    if kind == "parent is a file":
        (tmp / "afile").write_text("")
        return tmp / "afile" / "x.jpg"
    if kind == "read-only folder":
        ro = stack.enter_context(tmpfs(tmp / "ro", "1m"))
        remount_readonly(ro)
        return ro / "x.jpg"
    assert kind == "full disk"
    full = stack.enter_context(tmpfs(tmp / "full", "1m"))
    fill(full)
    return full / "x.jpg"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "kind", ["is a directory", "name too long", "parent is a file", "read-only folder", "full disk"]
)
async def test_destination_problems_are_found_before_anything_is_paid(provider: str, kind: str, tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        dest = _dest_problem(kind, tmp_path, stack)
        transport = mock_providers()
        async with mock_client(transport) as c:
            with anyio.fail_after(10), pytest.raises(InvalidRequestError) as exc:
                await run_op(c, provider, dest)
        assert exc.value.param == "dest"
        assert paid_requests(transport) == 0
        assert part_files(tmp_path) == []


@pytest.mark.parametrize("how", ["download", "generate"])
async def test_a_long_name_the_file_system_takes_is_saved(how: str, tmp_path: Path) -> None:
    """A 240-character name fits (255 is the limit): the part file beside it must fit too."""
    name = "n" * 240 + ".jpg"
    async with mock_client(mock_providers()) as c:
        if how == "download":
            r = await c.download("https://cdn.example/img.jpg", tmp_path / name)
        else:
            r = await c.facestudio.generate(tmp_path / name)
    assert r.path == tmp_path / name and files_in(tmp_path) == [name]


async def test_a_disk_filling_mid_result_is_a_typed_error_and_leaves_nothing(tmp_path: Path) -> None:
    big = noise_jpeg(1100)  # about 1.5 MB
    assert len(big) > 1_200_000
    with tmpfs(tmp_path / "out", "1m") as out:
        fill(out, leave=600_000)  # room for the checks before sending, not for the result
        before = files_in(out)
        async with mock_client(mock_providers(big), max_download_bytes=8 << 20) as c:
            with anyio.fail_after(10), pytest.raises(aioface.StorageError) as exc:
                await c.facestudio.generate(out / "face")
        assert isinstance(exc.value, DownloadError) and exc.value.errno == errno.ENOSPC
        assert files_in(out) == before


async def test_a_batch_on_a_full_disk_stops_paying_promptly(tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    image = noise_jpeg(600)  # about 450 KB: four fit on the 2 MB disk
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(f'{{"id": "j{i}", "op": "generate"}}\n' for i in range(40)))
    with tmpfs(tmp_path / "out", "2m") as out:
        async with serve(provider_app(hits, image)) as url:
            r = await run_cli("batch", str(jobs), "--out", str(out), "-c", "2", env=cli_env(tmp_path, url), timeout=60)
        assert r.returncode == 1, r.stderr
        assert "Traceback" not in r.stderr
        assert "space" in (r.stdout + r.stderr).lower()
        assert paid(hits) <= 8, f"paid for {paid(hits)} results on a full disk"
        lines = journal_lines(out / "results.jsonl")  # valid, whatever fit
        assert sum(1 for rec in lines if rec["ok"]) >= 1
        assert part_files(out) == []


@pytest.mark.parametrize("command", ["generate", "batch"])
async def test_cli_into_a_read_only_out_exits_2_before_sending(command: str, tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"id": "a", "op": "generate"}\n')
    with tmpfs(tmp_path / "ro", "1m") as ro:
        remount_readonly(ro)
        async with serve(provider_app(hits, JPEG)) as url:
            args = ["generate", "-n", "2"] if command == "generate" else ["batch", str(jobs)]
            r = await run_cli(*args, "--out", str(ro), env=cli_env(tmp_path, url))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "read-only" in r.stderr.lower(), r.stderr
    assert paid(hits) == 0


# ------------------------------------------------------------------------------ 5. images that are not files
def _limited(max_bytes: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))

    return apply


@pytest.mark.parametrize("kind", ["fifo", "symlink to /dev/zero", "/dev/zero"])
async def test_a_local_ailab_image_that_is_not_a_regular_file_is_refused(kind: str, tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    src = tmp_path / "me.jpg"
    if kind == "fifo":
        os.mkfifo(src)
    elif kind == "symlink to /dev/zero":
        src.symlink_to("/dev/zero")
    else:
        src = Path("/dev/zero")
    (tmp_path / "t.jpg").write_bytes(JPEG)
    args = ["swap", "--provider", "ailab", "--source", str(src), "--target", str(tmp_path / "t.jpg")]
    async with serve(provider_app(hits, JPEG)) as url:
        env = cli_env(tmp_path, url)

        def run() -> subprocess.CompletedProcess[str]:
            # Memory capped: on a build that reads /dev/zero to its end this fails fast instead of eating the machine.
            cmd = [sys.executable, "-m", "aioface", *args, "--out", str(tmp_path / "o")]
            try:
                return subprocess.run(
                    cmd, env=env, capture_output=True, text=True, timeout=10, preexec_fn=_limited(1 << 30)
                )
            except subprocess.TimeoutExpired:
                return subprocess.CompletedProcess(cmd, -1, "", "timed out: the read never ended")

        r = await anyio.to_thread.run_sync(run)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "regular file" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert paid(hits) == 0


# ------------------------------------------------------------------------------ 6. local bombs
async def test_a_local_image_claiming_30000x30000_is_rejected_before_sending(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(30000, 30000))
    transport = mock_providers()
    async with mock_client(transport) as c:
        with pytest.raises(ImageRejectedError) as exc:
            await c.ailab.swap(tmp_path / "o", source=bomb, target=JPEG)
    assert exc.value.param == "source" and exc.value.rule == "dimensions"
    assert paid_requests(transport) == 0 and files_in(tmp_path) == ["bomb.png"]


async def test_cli_swap_with_a_bomb_image_exits_2(tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    (tmp_path / "bomb.png").write_bytes(png_claiming(30000, 30000))
    (tmp_path / "t.jpg").write_bytes(JPEG)
    async with serve(provider_app(hits, JPEG)) as url:
        r = await run_cli(
            "swap", "--provider", "ailab", "--source", str(tmp_path / "bomb.png"), "--target", str(tmp_path / "t.jpg"),
            "--out", str(tmp_path / "o"), env=cli_env(tmp_path, url),
        )  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert paid(hits) == 0


async def test_a_cache_disk_full_from_the_start_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The stamps and the learned tier live in one file: one store, one warning (not one each)."""
    hits: Counter[str] = Counter()
    caplog.set_level(logging.WARNING, logger="aioface")
    with tmpfs(tmp_path / "cache", "1m") as cache:
        (cache / "limits").mkdir()
        fill(cache)
        async with serve(provider_app(hits, noise_jpeg(64))) as url:
            limits = {"facestudio": "100/s,100000/day"}
            async with aioface.Client(facestudio_key="k", facestudio_base_url=url, state_dir=cache, limits=limits,
                                      persist_limits=True, env={}) as c:  # fmt: skip
                for i in range(3):
                    await c.facestudio.generate(tmp_path / "out" / f"f{i}")
    warned = [r.getMessage() for r in caplog.records if r.name.startswith("aioface") and r.levelno >= logging.WARNING]
    assert len(warned) == 1, warned


def test_the_journal_on_a_full_disk_is_a_storage_error_and_closes_cleanly(tmp_path: Path) -> None:
    from aioface import StorageError
    from aioface.jobs._batch import Journal

    with tmpfs(tmp_path / "out", "1m") as out:
        journal = Journal(out)
        fill(out)
        with pytest.raises(StorageError):
            for i in range(2000):
                journal.append({"id": f"x{i}", "ok": False, "pad": "y" * 200})
        journal.close()  # must not raise
