"""aioface limits: the persisted budget per provider and hashed key; --reset after confirmation."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from aioface.jobs._budget import views, window_use
from aioface.limits import Rate
from aioface.limits._persist import BudgetStore, budget_path
from tests.support.cli import aioface

KEY = "cli-secret-key-0001"


def _state(tmp: Path, provider: str, key: str | None, stamps: list[float], tier: str | None = None) -> Path:
    store = BudgetStore(budget_path(tmp, provider, key), keep=86400)
    for t in stamps:
        store.append(t)
    if tier:
        store.save_tier(tier)
    return store.path


def test_window_use_and_next_free_slot() -> None:
    day = Rate(3, 86400.0)
    now = 1_000_000.0
    assert window_use(day, [now - 90000, now - 100], now).used == 1  # the first is outside the day
    full = window_use(day, [now - 5000, now - 3000, now - 10], now)
    assert (full.used, full.next_free_in) == (3, 86400 - 5000)
    assert window_use(Rate(5, 60.0), [now], now).used is None  # short windows are not persisted


def test_views_per_provider_and_key(tmp_path: Path) -> None:
    now = time.time()
    _state(tmp_path, "facestudio", KEY, [now - 7200, now - 60, now - 30], tier="basic")
    _state(tmp_path, "facestudio", "someone-else", [now - 10])
    _state(tmp_path, "ailab", "k", [now - 10])
    env = {"AIOFACE_FACESTUDIO_KEY": KEY, "AIOFACE_AILAB_LIMITS": "2/hour"}
    got = views(tmp_path, env=env, now=now)
    assert [(v.provider, v.current) for v in got] == [
        ("ailab", False),
        ("facestudio", False),
        ("facestudio", True),
    ] or [(v.provider, v.current) for v in got] == [("ailab", False), ("facestudio", True), ("facestudio", False)]
    mine = next(v for v in got if v.current)
    assert mine.tier == "basic" and mine.limits_from == "tier"
    day = next(w for w in mine.windows if w.rate.period == 86400.0)
    assert day.used == 3 and day.next_free_in == 0.0
    ailab = got[0]
    assert ailab.limits_from == "env" and ailab.windows[0].used == 1
    assert KEY not in json.dumps([v.to_json() for v in got])  # keys only ever hashed


def test_cli_table_json_and_reset(tmp_path: Path) -> None:
    now = time.time()
    path = _state(tmp_path, "facestudio", KEY, [now - 100, now - 50], tier="professional")
    env = {**os.environ, "AIOFACE_CACHE_DIR": str(tmp_path), "AIOFACE_FACESTUDIO_KEY": KEY, "COLUMNS": "200"}
    r = aioface("limits", env=env)
    assert r.returncode == 0, r.stderr
    assert "facestudio" in r.stdout and "professional" in r.stdout and "2/1000" in r.stdout
    assert KEY not in r.stdout + r.stderr
    r = aioface("limits", "--json", env=env)
    line = json.loads(r.stdout)
    assert line["current"] and line["tier"] == "professional"
    assert [w["used"] for w in line["windows"]] == [None, 2]
    no = aioface_input("n\n", "limits", "--reset", "facestudio", env=env)
    assert no.returncode == 1 and path.exists()  # declined: nothing removed
    yes = aioface("limits", "--reset", "facestudio", "--yes", env=env)
    assert yes.returncode == 0 and not path.exists() and not path.with_name(path.name + ".tier").exists()
    again = aioface("limits", "--reset", "facestudio", "--yes", env=env)
    assert again.returncode == 2


def aioface_input(text: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run(
        [sys.executable, "-m", "aioface", *args], env=env, input=text, capture_output=True, text=True, timeout=60
    )


def test_cli_shows_and_resets_the_budget_kept_in_redis(redis_url: str, tmp_path: Path) -> None:
    """With a Redis limits store the view reads Redis: every window (short ones too), the tier every
    process shares; --reset forgets the key there for all of them."""
    import asyncio

    import redis

    from aioface import Client, MockResponse, MockTransport
    from tests.support.files import image_bytes

    url = redis_url.rsplit("/", 1)[0] + "/9"  # a database of its own
    r = redis.Redis.from_url(url)
    r.flushdb()

    async def three_faces() -> None:
        transport = MockTransport(
            lambda req: MockResponse(200, content=image_bytes(), headers={"X-User-Class": "Professional"})
        )
        async with Client(facestudio_key=KEY, transport=transport, limits_store=url, env={}) as client:
            for i in range(3):
                await client.facestudio.generate(tmp_path / f"f{i}", age=30)

    asyncio.run(three_faces())
    env = {**os.environ, "AIOFACE_CACHE_DIR": str(tmp_path / "cache"), "AIOFACE_FACESTUDIO_KEY": KEY,
           "AIOFACE_LIMITS_STORE": url, "COLUMNS": "200"}  # fmt: skip
    shown = aioface("limits", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    line = json.loads(shown.stdout)
    assert line["current"] and line["tier"] == "professional" and line["limits_from"] == "tier"
    assert [(w["limit"], w["used"]) for w in line["windows"]] == [(30, 3), (1000, 3)]
    assert KEY not in shown.stdout + shown.stderr
    table = aioface("limits", env=env)
    assert "3/30" in table.stdout and "limits store redis://" in table.stdout, table.stdout
    assert r.keys("aioface:{facestudio:*") != []
    gone = aioface("limits", "--reset", "facestudio", "--yes", env=env)
    assert gone.returncode == 0 and "Redis key" in gone.stdout, gone.stdout + gone.stderr
    assert r.keys("aioface:{facestudio:*") == []
    assert aioface("limits", "--json", env=env).stdout == ""
    bad = aioface("limits", "--limits-store", "redis://127.0.0.1:1/0", env=env)
    assert bad.returncode == 2 and "cannot reach the limits store at redis://127.0.0.1:1/0" in bad.stderr


def test_cli_refuses_an_odd_redis_url_with_exit_2_and_no_password(tmp_path: Path) -> None:
    """Seen: ``aioface limits --limits-store 'redis://...?db=abc'`` printed a traceback and exited 1."""
    env = {**os.environ, "AIOFACE_CACHE_DIR": str(tmp_path), "COLUMNS": "200"}
    env.pop("AIOFACE_LIMITS_STORE", None)
    r = aioface("limits", "--limits-store", "redis://u:secret@127.0.0.1:1/0?db=abc", env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "Traceback" not in out and "secret" not in out
    assert "bad limits store URL 'redis://127.0.0.1:1/0'" in r.stderr, out


def test_cli_limits_asks_for_credits_where_a_provider_tells_them(tmp_path: Path) -> None:
    """``aioface limits --credits``: AILab's remaining credits (its query-credits), beside the budget."""
    from tests.support.cli import EmulatorProcess

    with EmulatorProcess("--time-scale", "60") as emu:
        env = emu.env(tmp_path)
        r = aioface("limits", "--credits", "--json", env=env)
        assert r.returncode == 0, r.stderr
        lines = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
        told = [x for x in lines if x.get("provider") == "ailab" and "balance" in x]
        assert len(told) == 1 and told[0]["balance"] > 0
        r = aioface("limits", "--credits", env=env)
        assert r.returncode == 0 and "ailab credits:" in r.stdout, r.stderr
        no_key = {k: v for k, v in env.items() if k != "AIOFACE_AILAB_KEY"}
        r = aioface("limits", "--credits", "--json", env=no_key)
        assert r.returncode == 0 and "balance" not in r.stdout, r.stderr
