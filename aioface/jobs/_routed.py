"""Batch jobs with ``"provider": "auto"`` (a routed swap), and resuming a job whose task already exists.

A job line ``{"id": "a", "op": "swap", "provider": "auto", "source": ..., "target": ...}`` may also
give ``"providers": [...]`` and ``"route": "failover" | "spread"``. A job that failed after its
provider created a task (the journal line's error has ``task_id`` and ``served_by``) is resumed
by waiting for that task (the provider's ``result`` operation), never by paying for a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._client import Client
from .._errors import AiofaceError, InvalidRequestError
from .._route import OP, check_route, tag_provider
from .._types import Result
from ..providers import operations

__all__ = ["AUTO", "check_routed", "resumable", "run_resumed", "run_routed"]

AUTO = "auto"
_ALLOWED = frozenset({"source", "target", "providers", "route"})
#: Errors after which waiting for the same task again is pointless (the provider said it failed).
_FINAL = frozenset({"task_failed"})


def check_routed(op: str, params: Mapping[str, Any]) -> None:
    """The parameters of an ``auto`` job, checked locally (:class:`InvalidRequestError`)."""
    if op != OP:
        raise InvalidRequestError(f'"provider": "{AUTO}" is for op {OP}, not {op}', param="provider")
    missing = sorted({"source", "target"} - set(params))
    unknown = sorted(set(params) - _ALLOWED)
    if missing or unknown:
        what = f"needs {', '.join(missing)}" if missing else f"takes no {', '.join(unknown)}"
        raise InvalidRequestError(f"an {AUTO} {OP} {what}", param=(missing or unknown)[0])
    for p in ("source", "target"):
        if not isinstance(params[p], str) or not params[p]:
            raise InvalidRequestError(f"{p} must be a non-empty string (a URL or a path)", param=p)
    providers = params.get("providers")
    if providers is not None and (not isinstance(providers, list) or not all(isinstance(x, str) for x in providers)):
        raise InvalidRequestError("providers must be a list of provider names", param="providers")
    check_route(providers, str(params.get("route", "failover")))


async def run_routed(client: Client, params: Mapping[str, Any], dest: Path) -> Result:
    """One ``auto`` job: :meth:`Client.swap` over the job's providers (default: every one offering it)."""
    return await client.swap(
        dest,
        source=params["source"],
        target=params["target"],
        providers=params.get("providers"),
        route=params.get("route", "failover"),
    )


def resumable(error: Mapping[str, Any]) -> tuple[str, str] | None:
    """(provider, task id) of a journaled failure whose task can still be waited for, else None."""
    provider, task_id = error.get("served_by"), error.get("task_id")
    if not isinstance(provider, str) or not isinstance(task_id, str) or error.get("code") in _FINAL:
        return None
    if not any(spec.name == provider for spec, _ in operations().get("result", [])):
        return None
    return provider, task_id


async def run_resumed(client: Client, provider: str, task_id: str, dest: Path) -> Result:
    """Wait for the task ``task_id`` that ``provider`` created in an earlier run and save its image."""
    for spec, bop in operations()["result"]:
        if spec.name == provider:
            try:
                return await bop.run(client.provider(provider), {"task_id": task_id}, dest)
            except AiofaceError as exc:
                tag_provider(exc, provider)
                exc.add_ids(task_id=task_id)
                raise
    raise InvalidRequestError(f"{provider} cannot resume a task", param="provider")
