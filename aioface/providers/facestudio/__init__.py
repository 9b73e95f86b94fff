"""Face Studio: one GET returning image bytes; tiers from ``X-User-Class``; DRF throttling."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..._types import ImageResult
from .._base import BatchOp, BenchOp, ProviderSpec
from . import _adapter
from ._adapter import ADVANCED_PARAMS, BASIC_PARAMS, TIERS
from ._namespace import FaceStudio


async def _run_generate(ns: FaceStudio, params: Mapping[str, Any], dest: Path) -> ImageResult:
    return await ns.generate(dest, **params)


def _precheck(params: Mapping[str, Any]) -> None:
    _adapter.build_params(**params)


def _bench(ns: FaceStudio) -> Any:
    return lambda dest: ns.generate(dest, resolution=256)


SPEC = ProviderSpec(
    name="facestudio",
    namespace=FaceStudio,
    parse_error=_adapter.parse_error,
    default_base_url=_adapter.DEFAULT_BASE_URL,
    key_required=False,
    adaptive=False,
    batch_ops=(
        BatchOp(
            "generate",
            _run_generate,
            optional=frozenset(BASIC_PARAMS) | frozenset(ADVANCED_PARAMS),
            precheck=_precheck,
            check=lambda ns, p: ns.check(p),
        ),
    ),
    bench=BenchOp("generate (256 px JPEG)", _bench, op="generate"),
    tiers=TIERS,
    emulator="aioface.emulator._facestudio:setup",
)

__all__ = ["SPEC", "TIERS", "FaceStudio"]
