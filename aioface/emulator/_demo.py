"""``aioface demo``: the emulator in-process, and each built-in provider's main call against it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from .._client import Client
from .._errors import AiofaceError
from .._types import ImageResult
from ..providers import BatchOp, operations
from . import DEMO_KEY, Emulator, EmulatorConfig

Fan = Callable[[Client, str, BatchOp, Sequence[tuple[str, dict[str, Any]]], str], Awaitable[tuple[list[Path], int]]]


def _name(result: ImageResult) -> str:
    """The saved file's name (every demo call saves to a file)."""
    return result.path.name if result.path is not None else "(in memory)"


async def run_demo(
    out: Path, count: int, *, fan: Fan, say: Callable[[str], None], fail: Callable[[BaseException], None]
) -> tuple[int, int]:
    """Generate ``count`` faces through ``fan``, then an age change and two swaps; (ok, failed)."""
    cfg = EmulatorConfig(time_scale=60.0, keys={DEMO_KEY: "professional"}, latency=0.02, task_duration=0.5)
    generate = next(op for spec, op in operations()["generate"] if spec.name == "facestudio")
    async with Emulator(cfg) as emu, emu.client() as client:
        say(f"emulator at {emu.url} (limits run 60x faster)")
        items = [(f"face-{i:03d}", {"age": (i * 7) % 81, "seed": 1000 + i, "resolution": 256}) for i in range(count)]
        faces, fails = await fan(client, "facestudio", generate, items, "faces")
        extra: list[str] = []
        try:
            aged = await client.acedata.change_age("https://cdn.acedata.cloud/f5687u.png", [60], out / "aged")
            extra.append(f"acedata change-age -> {_name(aged)}")
            sw = await client.acedata.swap(
                out / "swapped-acedata",
                source="https://cdn.acedata.cloud/n1lmd8.png",
                target="https://cdn.acedata.cloud/3np95r.png",
            )
            extra.append(f"acedata swap -> {_name(sw)} (task {sw.task_id})")
            if faces:
                face = min(faces)
                ai = await client.ailab.swap(out / "swapped-ailab", source=face, target=face)
                extra.append(f"ailab swap -> {_name(ai)} (task {ai.task_id})")
        except AiofaceError as exc:
            fails += 1
            fail(exc)
        for line in extra:
            say(line)
        lim = client.limiter("facestudio")
        say(
            f"tier {client.facestudio.tier}: limits {', '.join(map(str, lim.rates))}; "
            f"429s from the emulator: {emu.stats['throttled']}"
        )
    return len(faces) + len(extra), fails
