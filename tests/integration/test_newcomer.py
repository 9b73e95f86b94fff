"""Field traps, a newcomer's first run (issue 10): the README's install line is all the tests and the
package need, CI proves exactly what a newcomer does, the README points at nothing missing, and the
web-service example leaves no temporary files.

Choices made here: ``aioface bench --png`` draws with Pillow (a runtime dependency) instead of
matplotlib, so ``.[dev]`` suffices for every test; ``.ci/run`` copies the tree to a fresh folder and
runs the README's two commands there verbatim, then ruff and strict mypy from that venv.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.metadata as md
import importlib.util
import io
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import aiohttp
import anyio
import pytest
from aiohttp import web
from packaging.requirements import Requirement
from PIL import Image

from aioface.emulator import Emulator, EmulatorConfig

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CI = ROOT / ".ci" / "run"


# ------------------------------------------------------------------------- `.[dev]` suffices
def _closure(extra: str) -> set[str]:
    """Normalised names of aioface's distributions for ``pip install -e '.[extra]'``, transitively."""

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    todo = [(r, extra) for r in md.requires("aioface") or []]
    seen = {"aioface"}
    while todo:
        raw, want = todo.pop()
        req = Requirement(raw)
        if req.marker is not None and not req.marker.evaluate({"extra": want}):
            continue
        name = norm(req.name)
        if name in seen:
            continue
        seen.add(name)
        with contextlib.suppress(md.PackageNotFoundError):  # an extra that is not installed here
            todo.extend((r, "") for r in md.requires(req.name) or [])
    return seen


def _imports(path: Path) -> set[str]:
    """Top-level modules ``path`` imports, but for those guarded by ``except ImportError``."""
    tree = ast.parse(path.read_text(), str(path))
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError") for h in node.handlers
        ):
            guarded.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_package_and_the_tests_import_nothing_the_readme_install_lacks() -> None:
    """README: `pip install -e '.[dev]'` then `pytest -q`. No test, and no code a test runs, may need more."""
    allowed = _closure("dev")
    dists = md.packages_distributions()
    local = {"aioface", "tests", "toy_aioface", "_servers", "conftest"}
    missing: list[str] = []
    for path in sorted([*ROOT.joinpath("aioface").rglob("*.py"), *ROOT.joinpath("tests").rglob("*.py")]):
        for mod in sorted(_imports(path) - local - set(sys.stdlib_module_names)):
            owners = {re.sub(r"[-_.]+", "-", d).lower() for d in dists.get(mod, [mod])}
            if not owners & allowed:
                missing.append(f"{path.relative_to(ROOT)}: {mod} ({', '.join(sorted(owners))})")
    assert missing == [], "needs more than .[dev]:\n" + "\n".join(missing)


def test_bench_png_works_without_matplotlib(tmp_path: Path) -> None:
    """`aioface bench --png` (tests/test_cli.py runs it) must work after `pip install -e '.[dev]'`."""
    blocker = tmp_path / "block" / "matplotlib"
    blocker.mkdir(parents=True)
    blocker.joinpath("__init__.py").write_text("raise ImportError('matplotlib is not in .[dev]')\n")
    env = {"PYTHONPATH": str(tmp_path / "block"), "PATH": "/usr/bin:/bin", "AIOFACE_CACHE_DIR": str(tmp_path / "c")}
    png, report = tmp_path / "r.png", tmp_path / "r.json"
    bench = ["bench", "--emulator", "--provider", "facestudio", "-n", "6", "-c", "3"]
    r = subprocess.run(
        [sys.executable, "-m", "aioface", *bench, "--png", str(png), "--json", str(report), "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] >= 400 and im.size[1] >= 200
        assert len(im.convert("RGB").getcolors(1 << 16) or []) > 2  # something was drawn
    assert json.loads(report.read_text())["ok"] == 6


# ---------------------------------------------------------------------- CI = the README
def _readme_commands() -> list[str]:
    text = README.read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [line.strip() for b in blocks for line in b.strip().splitlines()]


def test_ci_runs_exactly_the_readmes_two_commands_in_a_fresh_venv() -> None:
    commands = _readme_commands()
    assert len(commands) == 2 and "pip install -e '.[dev]'" in commands[0] and "pytest -q" in commands[1]
    script = CI.read_text()
    lines = [line.strip() for line in script.splitlines()]
    for command in commands:
        assert command in lines, f".ci/run does not run the README's {command!r} as written"
    assert "bench]" not in script and "dev,bench" not in script  # nothing a newcomer does not install
    # A fresh venv: the README's `python3 -m venv .venv` would reuse an existing one (with extras in it).
    assert "mktemp" in script or "rm -rf .venv" in script
    first = lines.index(commands[0])
    for tool in (".venv/bin/ruff check", ".venv/bin/mypy"):
        assert any(line.startswith(tool) for line in lines[first:]), f"{tool} must run from the README's venv"


# ---------------------------------------------------------------------- README references
def test_readme_references_nothing_missing_from_the_repository() -> None:
    text = README.read_text()
    if "provider-docs" in text:
        assert (ROOT / "provider-docs").is_dir(), "README points at a provider-docs folder the repository lacks"
    for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", text):
        assert (ROOT / target).exists(), f"README links to {target}, which is not in the repository"


# ----------------------------------------------------------------------- web-service example
def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("web_service_example", ROOT / "examples" / "web_service.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.anyio
@pytest.mark.parametrize("own_dir", [False, True], ids=["default-temp-dir", "given-out-dir"])
async def test_web_service_example_leaves_no_temporary_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_dir: bool
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the example's temporary files go
    out = tmp_path / "out" if own_dir else None
    if out is not None:
        out.mkdir()
    mod = _example()
    cfg = EmulatorConfig(time_scale=600.0, keys={"svc": "professional"})
    async with Emulator(cfg) as emu:
        app = mod.create_app(lambda: emu.client(facestudio_key="svc", facestudio_tier="professional"), out)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        sizes: list[tuple[int, int]] = []
        async with aiohttp.ClientSession() as s:

            async def hit(age: int) -> None:
                async with s.get(f"http://{host}:{port}/face", params={"age": str(age)}) as r:
                    assert r.status == 200
                    with Image.open(io.BytesIO(await r.read())) as im:
                        sizes.append(im.size)

            async with anyio.create_task_group() as tg:
                for age in (20, 30, 40, 50):
                    tg.start_soon(hit, age)
        await runner.cleanup()
    assert sizes == [(256, 256)] * 4
    assert [p.name for p in scratch.rglob("*")] == []  # nothing left in the temp dir
    if out is not None:
        assert [p.name for p in out.rglob("*")] == []  # nor in a folder you gave it
