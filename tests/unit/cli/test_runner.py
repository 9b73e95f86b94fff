"""The CLI's event-loop runner: a command's run gets the CLI's GC settings, and gives them back."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from aioface.cli._runner import GC_GEN0, command_gc, run_command
from aioface.emulator import Emulator


@pytest.fixture
def gc_state() -> Iterator[tuple[int, int, int]]:
    """The GC as Python leaves it (the default threshold, nothing frozen), put back after the test."""
    before = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    try:
        yield gc.get_threshold()
    finally:
        gc.set_threshold(*before)


def test_a_command_runs_with_imports_frozen_and_young_collections_apart(gc_state: tuple[int, int, int]) -> None:
    seen: list[tuple[tuple[int, int, int], int]] = []

    async def command() -> int:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        return 0

    with pytest.raises(SystemExit) as exit_:
        run_command(command())
    assert exit_.value.code == 0
    ((threshold, frozen),) = seen
    assert threshold == (GC_GEN0, 10, 10)
    assert frozen > 0
    assert gc.get_threshold() == gc_state  # given back once the command is over
    assert gc.get_freeze_count() == 0


def test_the_gc_is_given_back_when_the_command_fails(gc_state: tuple[int, int, int]) -> None:
    async def command() -> int:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_command(command())
    assert gc.get_threshold() == gc_state
    assert gc.get_freeze_count() == 0


def test_collection_left_off_stays_off(gc_state: tuple[int, int, int]) -> None:
    gc.set_threshold(0, 10, 10)
    with command_gc():
        assert gc.get_threshold() == (0, 10, 10)
    assert gc.get_threshold() == (0, 10, 10)


@pytest.mark.anyio
async def test_the_library_leaves_the_gc_alone(gc_state: tuple[int, int, int]) -> None:
    """A client's calls, downloads to disk included, never change the GC: only the CLI (which owns
    its process) does."""
    async with Emulator() as emu, emu.client() as client:
        assert gc.get_threshold() == gc_state
        r = await client.facestudio.generate(resolution=256)
        assert r.data
    assert gc.get_threshold() == gc_state
    assert gc.get_freeze_count() == 0
