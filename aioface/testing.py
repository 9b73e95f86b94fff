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
``asyncio_mode = "auto"``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported when a fixture is used: every pytest run loads this plugin
    from ._client import Client
    from .emulator import Emulator, EmulatorConfig

__all__ = [
    "aioface_client",
    "aioface_client_options",
    "aioface_emulator",
    "aioface_emulator_config",
    "emulator_config_for",
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


def emulator_config_for(base: EmulatorConfig, marker: pytest.Mark | None) -> EmulatorConfig:
    """``base`` with the fields a ``aioface_emulator(...)`` marker names replaced (unknown names fail)."""
    from .emulator import EmulatorConfig

    if marker is None:
        return base
    if marker.args:
        raise pytest.UsageError("@pytest.mark.aioface_emulator takes keyword arguments only (EmulatorConfig fields)")
    known = {f.name for f in dataclasses.fields(EmulatorConfig)}
    unknown = set(marker.kwargs) - known
    if unknown:
        raise pytest.UsageError(
            f"@pytest.mark.aioface_emulator: unknown field(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(known))}"
        )
    return dataclasses.replace(base, **marker.kwargs)


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
    marker = request.node.get_closest_marker("aioface_client")
    return dict(marker.kwargs) if marker is not None else {}


@pytest.fixture
async def aioface_client(aioface_emulator: Emulator, aioface_client_options: dict[str, Any]) -> AsyncIterator[Client]:
    """An open :class:`aioface.Client` pointed at ``aioface_emulator``."""
    client: Client = aioface_emulator.client(**aioface_client_options)
    async with client:
        yield client
