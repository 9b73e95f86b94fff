"""Start-up: ``import aioface`` and the CLI import only what they use (no aiohttp, Pillow or rich)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("aiohttp", "PIL", "rich")


def loaded_after(code: str) -> list[str]:
    """The heavy packages in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    modules = set(json.loads(r.stdout.splitlines()[-1]))
    return [m for m in HEAVY if m in modules]


def run_cli(*args: str) -> str:
    return (
        "import sys\nfrom aioface.cli import main\n"
        f"sys.argv = ['aioface', *{list(args)!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
    )


def test_import_aioface_pays_for_no_http_imaging_or_terminal_package() -> None:
    assert loaded_after("import aioface") == []


def test_the_lazy_names_still_work_and_say_aioface() -> None:
    code = (
        "import aioface, sys\n"
        "from aioface import AiohttpTransport\n"
        "from aioface.transports import AiohttpTransport as T\n"
        "assert AiohttpTransport is T is aioface.AiohttpTransport\n"
        "assert AiohttpTransport.__module__ == 'aioface'\n"
        "assert 'AiohttpTransport' in dir(aioface)\n"
    )
    assert loaded_after(code) == ["aiohttp"]  # imported on first use, and only then


def test_cli_help_imports_no_aiohttp() -> None:
    assert "aiohttp" not in loaded_after(run_cli("--help"))
    assert loaded_after(run_cli("generate", "--help")) == []


def test_a_command_imports_only_its_own_module() -> None:
    code = run_cli("generate", "--help") + "print(sorted(m for m in sys.modules if m.startswith('aioface.cli.')))\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    loaded = r.stdout.splitlines()[-1]
    assert "aioface.cli._generate" in loaded
    for other in ("_bench", "_batch", "_swap", "_edit", "_emulator", "_demo", "_limits", "_bar"):
        assert f"aioface.cli.{other}'" not in loaded, other


def test_the_redis_store_and_the_version_are_read_when_asked_for() -> None:
    code = (
        "import sys, aioface\n"
        "assert 'aioface.limits.redis' not in sys.modules and 'importlib.metadata' not in sys.modules\n"
        "assert aioface.RedisStore.__module__ == 'aioface' and aioface.limits.RedisStore is aioface.RedisStore\n"
        "assert aioface.__version__ != '0+unknown'\n"
    )
    assert loaded_after(code) == []


def test_a_run_without_a_terminal_draws_nothing_and_imports_no_rich() -> None:
    code = (
        "from aioface.cli._progress import Tracker, announce_wait, print_summary\n"
        "with Tracker(3, 'generate') as t:\n"
        "    t.update(True, 0)\n"
        "print_summary(1, 0, 1.0, None)\n"
    )
    assert loaded_after(code) == []
