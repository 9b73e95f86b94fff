"""The CLI hands its options to the library as arguments: ``--limits-store`` reaches ``Client``
without being written into the process environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from aioface.cli import EXIT_USAGE, app


@pytest.mark.parametrize("command", [["generate", "-n", "1"], ["batch", "JOBS"]])
def test_limits_store_goes_to_the_client_not_to_os_environ(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIOFACE_LIMITS_STORE", raising=False)
    monkeypatch.setenv("AIOFACE_CACHE_DIR", str(tmp_path / "cache"))
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"id": "a", "op": "generate"}\n')
    args = [str(jobs) if a == "JOBS" else a for a in command]
    r = CliRunner().invoke(app(), [*args, "--out", str(tmp_path / "out"), "--limits-store", "nosuch://store", "-q"])
    # The client refused the store it was given: a usage error, nothing sent...
    assert r.exit_code == EXIT_USAGE, r.output
    assert "error: unknown limits store 'nosuch" in r.output
    # ...and the process environment (which every later Client would read) is as it was.
    assert "AIOFACE_LIMITS_STORE" not in os.environ
