"""The provider seam: a third-party provider plugs in through the registry and works through the
Client, `aioface batch` and `aioface bench` without touching the package."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tokenize
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

import aioface
from aioface import providers
from aioface._net import bound_port
from aioface.jobs._batch import run_batch
from aioface.jobs._bench import run_bench

TOY = Path(__file__).resolve().parents[1] / "support" / "toy"
pytestmark = pytest.mark.anyio


@pytest.fixture
def toy() -> Iterator[providers.ProviderSpec]:
    providers.providers()  # discover before the toy's dist-info is on the path: this test registers by hand
    sys.path.insert(0, str(TOY))
    try:
        import toy_aioface

        providers.register(toy_aioface.SPEC)
        yield toy_aioface.SPEC
    finally:
        providers.unregister("toy")
        sys.path.remove(str(TOY))


@pytest.fixture
async def toy_server() -> AsyncIterator[tuple[str, list[str]]]:
    """The toy provider's API on loopback; records the key header of each request."""
    providers.providers()
    sys.path.insert(0, str(TOY))
    import toy_aioface

    sys.path.remove(str(TOY))
    seen: list[str] = []

    async def face(request: web.Request) -> web.Response:
        seen.append(request.headers.get("X-Toy-Key", ""))
        if request.query.get("n") == "13":
            return web.Response(status=500, text="unlucky")
        return web.Response(body=toy_aioface.png(int(request.query["n"])), content_type="image/png")

    app = web.Application()
    app.router.add_get("/toy/face", face)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{bound_port(site)}", seen
    finally:
        await runner.cleanup()


async def test_toy_provider_through_client_batch_and_bench(
    toy: providers.ProviderSpec, toy_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, seen = toy_server
    client = aioface.Client(
        keys={"toy": "toy-secret"},
        base_urls={"toy": url},
        persist_limits=False,
        env={},
        retry=aioface.RetryPolicy(max_retries=1, base=0.01),
    )
    assert "toy=key set" in repr(client) and "toy-secret" not in repr(client)
    import toy_aioface  # the fixture put it on the path

    async with client:
        toy_ns = client.provider("toy")
        assert isinstance(toy_ns, toy_aioface.Toy)
        r = await toy_ns.face(tmp_path / "one", n=4)
        assert (r.provider, r.format, r.width, r.height) == ("toy", "png", 14, 20)
        assert r.path == tmp_path / "one.png" and r.path.stat().st_size == r.bytes
        with pytest.raises(aioface.ServerError) as err:  # its own error parser, retried then raised
            await toy_ns.face(tmp_path / "bad", n=13)
        assert err.value.provider == "toy" and err.value.code == "oops"

        jobs = tmp_path / "jobs.jsonl"
        jobs.write_text(
            "\n".join(
                json.dumps(j) for j in ({"id": "a", "op": "toyface", "n": 2}, {"id": "b", "op": "toyface", "n": 99})
            )
        )
        summary = await run_batch(client, jobs, tmp_path / "out")
        assert (summary.ok, summary.failed) == (1, 1)  # n=99 refused locally by the toy's precheck
        recs = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
        assert {r["id"]: r["ok"] for r in recs} == {"a": True, "b": False}

        report = await run_bench(client, [], "toy", 5, 2, tmp_path / "bench")
        assert (report.ok, report.failed, report.operation) == (5, 0, "toy face")
    assert set(seen) == {"toy-secret"}


async def test_toy_provider_from_an_entry_point_in_the_cli(toy_server: tuple[str, list[str]], tmp_path: Path) -> None:
    """Installed as a plug-in (an entry point in a dist-info on the path): the CLI's batch and
    bench (against aioface's own emulator, which mounts the toy's routes) pick it up."""
    url, seen = toy_server
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps({"id": f"t{i}", "op": "toyface", "n": i + 1}) for i in range(6)))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TOY), os.environ.get("PYTHONPATH", "")]),
        "AIOFACE_TOY_KEY": "toy-secret",
        "AIOFACE_TOY_BASE_URL": url,
        "AIOFACE_CACHE_DIR": str(tmp_path / "cache"),
    }

    async def run(*args: str) -> tuple[int, str, str]:
        p = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aioface",
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(p.communicate(), 120)
        assert p.returncode is not None
        return p.returncode, out.decode(), err.decode()

    code, out, err = await run("batch", str(jobs), "--out", str(tmp_path / "out"), "-q")
    assert code == 0, err
    assert "6 ok, 0 failed" in out
    assert len(seen) == 6 and sorted(p.name for p in (tmp_path / "out").glob("t*.png")) == [
        f"t{i}.png" for i in range(6)
    ]

    code, out, err = await run("bench", "--emulator", "--provider", "toy", "-n", "4", "-c", "2", "-q")
    assert code == 0, err
    assert "toy: toy face" in out and "4 ok, 0 failed" in out
    assert len(seen) == 6  # the bench went to the emulator, not to the toy's real host

    code, out, err = await run("bench", "--provider", "nosuch", "-n", "1")
    assert code == 2 and "toy" in err  # the choices list the plug-in


def test_nothing_above_the_providers_names_one() -> None:
    """Generic modules switch on no provider: no identifier and no string literal that *is* a
    provider's name (prose in docstrings and help texts may mention them). ``_client.py`` keeps
    the typed attributes and keyword shorthands; ``__init__`` re-exports."""
    names = {"facestudio", "acedata", "ailab"}
    pkg = Path(aioface.__file__).parent
    offenders = []
    for path in sorted(pkg.glob("_*.py")):
        if path.name in ("_client.py", "__init__.py", "__main__.py"):
            continue
        with open(path, "rb") as f:
            for tok in tokenize.tokenize(f.readline):
                if (tok.type == tokenize.NAME and any(n in tok.string.lower() for n in names)) or (
                    tok.type == tokenize.STRING and tok.string.strip("\"'") in names
                ):
                    offenders.append(f"{path.name}:{tok.start[0]}: {tok.string}")
    assert offenders == []


def test_registry_lists_the_builtins_first_and_refuses_clashes() -> None:
    assert list(providers.providers())[:3] == ["facestudio", "acedata", "ailab"]
    assert [s.name for s, _ in providers.operations()["swap"]] == ["acedata", "ailab"]
    with pytest.raises(aioface.ConfigurationError, match="already registered"):
        providers.register(providers.get("ailab"))
    with pytest.raises(aioface.ConfigurationError, match="unknown provider 'nope'"):
        providers.get("nope")


def test_no_import_cycles_in_the_package() -> None:
    """Every import between aioface's own modules (lazy ones inside functions included) points one
    way: the layers stay layers."""
    import ast

    pkg = Path(aioface.__file__).parent
    names = {
        ".".join(("aioface", *p.relative_to(pkg).with_suffix("").parts)).removesuffix(".__init__"): p
        for p in pkg.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for mod, path in names.items():
        here = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = here.rsplit(".", node.level - 1)[0] if node.level else ""
                target = ".".join(x for x in (base, node.module or "") if x) if node.level else (node.module or "")
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    deps.add(full if full in names else target)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        # a package's __init__ re-exporting its own modules is not a cycle with them
        graph[mod] = {d for d in deps if d in names and d != mod and not d.startswith(mod + ".")}
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        seen[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if seen.get(d) == 1:
                raise AssertionError(" -> ".join([*stack[stack.index(d) :], d]))
            if d not in seen:
                visit(d)
        stack.pop()
        seen[m] = 2

    for m in sorted(graph):
        if m not in seen:
            visit(m)
