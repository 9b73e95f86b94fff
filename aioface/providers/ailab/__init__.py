"""AILabAPI AI Face Swap: multipart upload, an async task, polling, a result URL."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..._errors import InvalidRequestError
from ..._net import check_http_url
from ..._types import ImageResult
from .._base import BatchOp, BenchOp, ProviderSpec, result_op
from . import _adapter as _ailab
from ._adapter import Credits
from ._namespace import AILab, ImageInput


async def _swap(ns: AILab, p: Mapping[str, Any], dest: Path) -> ImageResult:
    return await ns.swap(dest, source=p["source"], target=p["target"])


def _precheck_swap(p: Mapping[str, Any]) -> None:
    for name in ("source", "target"):
        v = p[name]
        if not isinstance(v, str) or not v:
            raise InvalidRequestError(f"{name} must be a path or an http(s) URL", param=name)
        if "://" in v:
            check_http_url(v, param=name)


def _sample_image() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 160, 120)).save(buf, "JPEG")
    return buf.getvalue()


def _bench(ns: AILab) -> Any:
    image = _sample_image()
    return lambda dest: ns.swap(dest, source=image, target=image)


SPEC = ProviderSpec(
    name="ailab",
    namespace=AILab,
    parse_error=_ailab.parse_error,
    default_base_url=_ailab.DEFAULT_BASE_URL,
    batch_ops=(
        BatchOp("swap", _swap, required=frozenset({"source", "target"}), precheck=_precheck_swap),
        result_op(),
    ),
    bench=BenchOp("face swap (upload, poll, download)", _bench, op="swap"),
    emulator="aioface.emulator._ailab:setup",
)

__all__ = ["SPEC", "AILab", "Credits", "ImageInput"]
