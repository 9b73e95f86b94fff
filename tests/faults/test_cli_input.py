"""Inputs that attack the CLI and the batch: ids as file names, jobs from a pipe, a batch fed its own
journal, ``--param``, SIGTERM, keys with CR/LF and an empty destination.

The CLI runs as users run it (``python -m aioface`` in a child process) against a tiny fake of the
providers inside the test, which counts what was sent.
"""

from __future__ import annotations

import json
import signal
import sys
from collections import Counter
from pathlib import Path

import anyio
import pytest

import aioface
from aioface import ConfigurationError, InvalidRequestError
from tests.support.cli import cli_env, journal_lines, run_cli
from tests.support.files import files_in, part_files
from tests.support.mocks import mock_client, mock_providers, paid_requests, run_op
from tests.support.servers import JPEG, PROVIDERS, noise_jpeg, paid, provider_app, serve

pytestmark = pytest.mark.anyio


def images_in(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.is_file() and p.name not in ("results.jsonl", ".aioface.lock"))


def jobs_file(tmp: Path, *ids: str) -> Path:
    jobs = tmp / "jobs.jsonl"
    jobs.write_text("".join(json.dumps({"id": i, "op": "generate"}) + "\n" for i in ids))
    return jobs


# ------------------------------------------------------------------------------ 7. ids as names
async def test_ids_never_share_a_file_or_replace_the_journal(tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    ids = ["a", "a.jpg", "results.jsonl", "b.png"]
    jobs = jobs_file(tmp_path, *ids)
    out = tmp_path / "out"
    async with serve(provider_app(hits, JPEG)) as url:
        env = cli_env(tmp_path, url)
        r = await run_cli("batch", str(jobs), "--out", str(out), env=env)
        assert r.returncode == 0, r.stderr
        lines = journal_lines(out / "results.jsonl")
        assert sorted(rec["id"] for rec in lines) == sorted(ids)
        paths = [rec["path"] for rec in lines]
        assert len(set(paths)) == len(ids), f"two ids share a file: {paths}"
        assert sorted(paths) == images_in(out)
        assert all(p.endswith(".jpg") for p in paths), f"suffix not from the content: {paths}"
        assert all((out / p).read_bytes() == JPEG for p in paths)
        sent = paid(hits)
        again = await run_cli("batch", str(jobs), "--out", str(out), env=env)
    assert again.returncode == 0 and f"{len(ids)} already done" in again.stdout, again.stdout + again.stderr
    assert paid(hits) == sent == len(ids)


# ------------------------------------------------------------------------------ 8. jobs from a pipe
@pytest.mark.parametrize("jobs_arg", ["/dev/stdin", "-"])
async def test_jobs_from_a_pipe_are_all_run(jobs_arg: str, tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    lines = "".join(json.dumps({"id": f"p{i}", "op": "generate"}) + "\n" for i in range(3))
    out = tmp_path / "out"
    async with serve(provider_app(hits, JPEG)) as url:
        r = await run_cli("batch", jobs_arg, "--out", str(out), env=cli_env(tmp_path, url), input=lines.encode())
    assert r.returncode == 0, r.stderr
    assert "3 ok" in r.stdout, r.stdout
    assert len(images_in(out)) == 3 and paid(hits) == 3


# ------------------------------------------------------------------------------ 9. own journal
@pytest.mark.parametrize("via", ["the journal itself", "a symlink to it"])
async def test_a_batch_fed_its_own_journal_is_refused(via: str, tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    out = tmp_path / "out"
    async with serve(provider_app(hits, JPEG)) as url:
        env = cli_env(tmp_path, url)
        first = await run_cli("batch", str(jobs_file(tmp_path, "a", "b", "c")), "--out", str(out), env=env)
        assert first.returncode == 0, first.stderr
        journal = out / "results.jsonl"
        before = journal.read_bytes()
        jobs = journal
        if via != "the journal itself":
            jobs = tmp_path / "link.jsonl"
            jobs.symlink_to(journal)
        r = await run_cli("batch", str(jobs), "--out", str(out), env=env, timeout=10)
    assert r.returncode == 2, r.stderr
    assert "journal" in r.stderr.lower()
    assert journal.read_bytes() == before
    assert paid(hits) == 3


# ------------------------------------------------------------------------------ 10. --param
async def test_param_is_sent_and_validated_like_the_named_option(tmp_path: Path) -> None:
    """Guard: ``--param age=70`` reaches the provider (or is refused for having an option: either
    way nothing is silently dropped); ``--param age=200`` is refused before sending."""
    hits: Counter[str] = Counter()
    queries: list[dict[str, str]] = []
    async with serve(provider_app(hits, JPEG, queries=queries)) as url:
        env = cli_env(tmp_path, url)
        ok = await run_cli("generate", "--param", "age=70", "--out", str(tmp_path / "o"), env=env)
        bad = await run_cli("generate", "--param", "age=200", "--out", str(tmp_path / "o2"), env=env)
    if ok.returncode == 0:
        assert queries == [{"age": "70"}]
    else:
        assert ok.returncode == 2 and "--age" in ok.stderr and queries == [], ok.stderr
    assert bad.returncode == 2 and "age" in bad.stderr
    assert len(queries) <= 1


@pytest.mark.parametrize(
    "args",
    [
        ["--param", "age=70", "--age", "10"],
        ["--param", "age=70", "--ages", "1-3"],
        ["--param", "gender=female", "--gender", "male"],
    ],
    ids=["age twice", "age and ages", "gender twice"],
)
async def test_a_param_that_contradicts_its_named_option_is_refused(args: list[str], tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    async with serve(provider_app(hits, JPEG)) as url:
        r = await run_cli("generate", *args, "--out", str(tmp_path / "o"), env=cli_env(tmp_path, url))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--param" in r.stderr
    assert paid(hits) == 0


# ------------------------------------------------------------------------------ 11. SIGTERM
async def _terminate_when(cmd: list[str], env: dict[str, str], ready: object, tmp: Path) -> tuple[int, str]:
    """Start ``aioface CMD``, send SIGTERM once ``ready()`` holds, return (exit status, stderr)."""
    assert callable(ready)
    err = tmp / "stderr.txt"
    with err.open("wb") as ferr:
        proc = await anyio.open_process([sys.executable, "-m", "aioface", *cmd], env=env, stdout=None, stderr=ferr)
        try:
            with anyio.fail_after(20):
                while not ready():
                    assert proc.returncode is None, "the command ended before it could be interrupted"
                    await anyio.sleep(0.05)
                proc.send_signal(signal.SIGTERM)
                code = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    return code, err.read_text()


async def test_sigterm_during_generate_exits_143_and_leaves_no_part_files(tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    out = tmp_path / "out"
    async with serve(provider_app(hits, noise_jpeg(300), stall_after=0)) as url:
        cmd = ["generate", "-n", "3", "-c", "3", "--out", str(out)]
        code, err = await _terminate_when(cmd, cli_env(tmp_path, url), lambda: len(part_files(tmp_path)) == 3, tmp_path)
    assert code == 143, err
    assert part_files(tmp_path) == []
    assert "Traceback" not in err


async def test_sigterm_during_a_batch_exits_143_with_a_valid_journal(tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    out = tmp_path / "out"
    jobs = jobs_file(tmp_path, *(f"j{i}" for i in range(6)))

    def ready() -> bool:
        journal = out / "results.jsonl"
        return journal.exists() and journal.read_bytes().count(b"\n") == 2 and bool(part_files(out))

    async with serve(provider_app(hits, noise_jpeg(300), stall_after=2)) as url:
        cmd = ["batch", str(jobs), "--out", str(out), "-c", "2"]
        code, err = await _terminate_when(cmd, cli_env(tmp_path, url), ready, tmp_path)
    assert code == 143, err
    assert part_files(tmp_path) == []
    lines = journal_lines(out / "results.jsonl")
    assert sorted(rec["id"] for rec in lines if rec["ok"]) == ["j0", "j1"]


# ------------------------------------------------------------------------------ 13. keys and dest
BAD_KEYS = {"CR/LF": "abc\r\nX-Injected: 1", "LF": "abc\ndef", "NUL": "abc\x00def"}
KEY_ARGS = {"facestudio": "facestudio_key", "acedata": "acedata_token", "ailab": "ailab_key"}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("bad", list(BAD_KEYS))
def test_a_key_with_control_characters_is_refused_at_client(provider: str, bad: str) -> None:
    key = BAD_KEYS[bad]
    with pytest.raises(ConfigurationError, match=provider) as exc:
        aioface.Client(**{KEY_ARGS[provider]: key}, persist_limits=False, env={})  # type: ignore[arg-type]
    assert key not in str(exc.value)
    env_var = {"facestudio": "AIOFACE_FACESTUDIO_KEY", "acedata": "AIOFACE_ACEDATA_TOKEN", "ailab": "AIOFACE_AILAB_KEY"}
    with pytest.raises(ConfigurationError, match=env_var[provider]):
        aioface.Client(persist_limits=False, env={env_var[provider]: key})


async def test_cli_with_a_key_holding_a_newline_exits_2_and_sends_nothing(tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    async with serve(provider_app(hits, JPEG)) as url:
        env = cli_env(tmp_path, url, AIOFACE_FACESTUDIO_KEY="secret-part-one\nsecret-part-two")
        r = await run_cli("generate", "-n", "2", "--out", str(tmp_path / "o"), env=env)
    assert r.returncode == 2, r.stderr
    assert "AIOFACE_FACESTUDIO_KEY" in r.stderr and "secret-part" not in r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert paid(hits) == 0


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_empty_dest_is_refused_before_sending(
    provider: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a build that takes "" for a name writes ".jpg" here, not in the tree
    transport = mock_providers()
    async with mock_client(transport) as c:
        with pytest.raises(InvalidRequestError) as exc:
            await run_op(c, provider, "")
    assert exc.value.param == "dest"
    assert paid_requests(transport) == 0
    assert files_in(tmp_path) == []


async def test_cli_with_an_empty_name_exits_2_and_sends_nothing(tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    async with serve(provider_app(hits, JPEG)) as url:
        r = await run_cli(
            "change-age", f"{url}/in.png", "--age", "60", "--name", "", "--out", str(tmp_path / "o"),
            env=cli_env(tmp_path, url),
        )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert paid(hits) == 0
