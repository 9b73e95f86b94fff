"""Shared by the benchmark scripts: an emulator in a child process, timing and reporting."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aioface.emulator import EmulatorProcess

KEY = "bench-key"


ChildEmulator = EmulatorProcess


def report(
    name: str, rows: Sequence[dict[str, Any]], columns: Sequence[str], extra: dict[str, Any] | None = None
) -> None:
    """Print a small table, then one JSON line with everything."""
    print(f"\n## {name}")
    widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("JSON " + json.dumps({"benchmark": name, "rows": list(rows), **(extra or {})}))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"
    return "" if v is None else str(v)
