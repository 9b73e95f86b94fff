"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cli import EmulatorProcess


@pytest.fixture(scope="module")
def fast_emulator() -> Iterator[EmulatorProcess]:
    """An emulator process for the CLI: time 600x faster, tasks done in 0.05 s."""
    emu = EmulatorProcess("--time-scale", "600", "--task-duration", "0.05")
    yield emu
    emu.stop()
