"""What a provider offers the batch runner and the bench: :class:`BatchOp`, :class:`BenchOp`, ``result_op``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import InvalidRequestError
from .._types import Result

#: ``run(namespace, params, dest)``: one batch job (an image saved at ``dest``, or facts such as a face analysis).
BatchRun = Callable[[Any, Mapping[str, Any], Path], Awaitable[Result]]


@dataclass(frozen=True)
class BatchOp:
    """One operation a provider offers to ``aioface batch`` (and the CLI)."""

    op: str
    run: BatchRun
    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()
    #: Local checks of the parameters (raise InvalidRequestError); nothing is sent.
    precheck: Callable[[Mapping[str, Any]], None] | None = None
    #: Rewrites shorthand before checking (``age`` -> ``ages``).
    normalize: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: Checks that need the client (a known tier, say): ``check(namespace, params)``; nothing is sent.
    check: Callable[[Any, Mapping[str, Any]], None] | None = None
    #: Run-time-only parameters (objects, not JSON) the CLI may pass, e.g. ``callback``.
    extras: frozenset[str] = frozenset()
    #: One line of help for the command ``aioface <op>`` made from this operation.
    help: str = ""
    #: Parameters that are lists (one entry per face); on the command line the option repeats.
    lists: frozenset[str] = frozenset()
    #: Parameters that are JSON objects (``--face-rect '{"x": 0, ...}'`` on the command line).
    objects: frozenset[str] = frozenset()
    #: False for operations whose result is facts (a face analysis), not an image file.
    writes_image: bool = True


def result_op() -> BatchOp:
    """The ``result`` operation (``aioface result --task-id ID``, batch op ``result``) of a provider
    whose namespace has ``async def result(task_id, dest)``: go on waiting for a task submitted
    earlier and save its image, paying nothing again."""

    async def run(ns: Any, p: Mapping[str, Any], dest: Path) -> Result:
        result: Result = await ns.result(str(p["task_id"]), dest)
        return result

    def check(p: Mapping[str, Any]) -> None:
        tid = p["task_id"]
        if isinstance(tid, bool) or not isinstance(tid, (str, int)) or not str(tid).strip():
            raise InvalidRequestError("task_id must be a non-empty string", param="task_id")

    return BatchOp(
        "result",
        run,
        required=frozenset({"task_id"}),
        precheck=check,
        help="Go on waiting for a task submitted earlier and save its image (nothing is paid again).",
    )


#: ``make(namespace)`` returns ``call(dest)``: one benchmarked call.
BenchMake = Callable[[Any], Callable[[Path], Awaitable[Result]]]


@dataclass(frozen=True)
class BenchOp:
    """What ``aioface bench`` calls: ``make(namespace)`` returns ``call(dest)``.

    ``ops`` offers more operations by name (``aioface bench --op swap``), each as (description,
    make); ``op`` names the default one, so that providers can be compared on the same operation.
    ``price`` is what one accepted call costs, as (amount, unit), where the provider publishes it.
    """

    description: str
    make: BenchMake
    op: str = ""
    ops: Mapping[str, tuple[str, BenchMake]] = field(default_factory=dict)
    price: tuple[float, str] | None = None

    def select(self, op: str | None) -> tuple[str, BenchMake] | None:
        """(description, make) for ``op`` (None or the default: the main one); None if not offered."""
        if op is None or op == self.op:
            return self.description, self.make
        return self.ops.get(op)

    @property
    def names(self) -> list[str]:
        """The operations offered, the default first."""
        return [n for n in (self.op, *self.ops) if n]


__all__ = ["BatchOp", "BatchRun", "BenchMake", "BenchOp", "result_op"]
