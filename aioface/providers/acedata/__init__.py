"""Ace Data Cloud's face API: POST JSON, Bearer token, synchronous or callback swaps."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..._config import TOKEN, provider_env
from ..._types import FaceAnalysis, ImageResult, Liveness, SubmittedTask
from .._base import BatchOp, BenchOp, ProviderSpec, result_op
from . import _adapter as _ace
from ._callbacks import CallbackReceiver
from ._namespace import AceData

#: An image from the provider's own docs, used by ``aioface bench``.
SAMPLE_URL = "https://cdn.acedata.cloud/f5687u.png"


async def _change_age(ns: AceData, p: Mapping[str, Any], dest: Path) -> ImageResult:
    return await ns.change_age(p["image_url"], p["ages"], dest, face_rects=p.get("face_rects"))


async def _change_gender(ns: AceData, p: Mapping[str, Any], dest: Path) -> ImageResult:
    return await ns.change_gender(p["image_url"], p["genders"], dest)


async def _beautify(ns: AceData, p: Mapping[str, Any], dest: Path) -> ImageResult:
    return await ns.beautify(p["image_url"], dest)


async def _cartoon(ns: AceData, p: Mapping[str, Any], dest: Path) -> ImageResult:
    return await ns.cartoon(p["image_url"], dest)


async def _swap(ns: AceData, p: Mapping[str, Any], dest: Path) -> ImageResult | SubmittedTask:
    if p.get("callback_url"):  # the result goes to the user's own webhook: keep the task id
        url = p["callback_url"]
        tid = await ns.submit_swap(source=p["source"], target=p["target"], callback_url=url, timeout=p.get("timeout"))
        return SubmittedTask("acedata", tid, url)
    return await ns.swap(
        dest, source=p["source"], target=p["target"], timeout=p.get("timeout"), callback=p.get("callback")
    )


async def _analyze(ns: AceData, p: Mapping[str, Any], dest: Path) -> FaceAnalysis:
    return await ns.analyze(p["image_url"])


async def _detect_live(ns: AceData, p: Mapping[str, Any], dest: Path) -> Liveness:
    return await ns.detect_live(p["image_url"])


def _check_change_age(p: Mapping[str, Any]) -> None:
    _ace.change_age_body(p["image_url"], p["ages"], p.get("face_rects"))


def _check_change_gender(p: Mapping[str, Any]) -> None:
    _ace.change_gender_body(p["image_url"], p["genders"])


def _check_image(p: Mapping[str, Any]) -> None:
    _ace.image_body(p["image_url"])


def _check_swap(p: Mapping[str, Any]) -> None:
    _ace.swap_body(p["source"], p["target"], p.get("timeout"), p.get("callback_url"))


def _age_alias(p: dict[str, Any]) -> dict[str, Any]:
    if "age" in p and "ages" not in p:
        p["ages"] = [p.pop("age")]
    return p


def _bench(ns: AceData) -> Any:
    return lambda dest: ns.change_age(SAMPLE_URL, [60], dest)


#: A second image from the provider's docs, the picture a benchmarked swap puts a face into.
SAMPLE_TARGET_URL = "https://cdn.acedata.cloud/3np95r.png"


def _bench_swap(ns: AceData) -> Any:
    return lambda dest: ns.swap(dest, source=SAMPLE_URL, target=SAMPLE_TARGET_URL)


_URL = frozenset({"image_url"})
SPEC = ProviderSpec(
    name="acedata",
    namespace=AceData,
    parse_error=_ace.parse_error,
    default_base_url=_ace.DEFAULT_BASE_URL,
    key_env=provider_env("acedata", TOKEN),
    batch_ops=(
        BatchOp(
            "change_age",
            _change_age,
            required=frozenset({"image_url", "ages"}),
            optional=frozenset({"face_rects"}),
            precheck=_check_change_age,
            normalize=_age_alias,
            help="Change the age of the faces (one age per face, optionally one face rectangle per age).",
            lists=frozenset({"ages", "face_rects"}),
            objects=frozenset({"face_rects"}),
        ),
        BatchOp(
            "change_gender",
            _change_gender,
            required=frozenset({"image_url", "genders"}),
            precheck=_check_change_gender,
            help="Change the gender of the faces (one 0 or 1 per face).",
            lists=frozenset({"genders"}),
        ),
        BatchOp("beautify", _beautify, required=_URL, precheck=_check_image, help="Beautify the faces."),
        BatchOp("cartoon", _cartoon, required=_URL, precheck=_check_image, help="Turn the picture into a cartoon."),
        BatchOp(
            "analyze",
            _analyze,
            required=_URL,
            precheck=_check_image,
            help="Analyze the faces: age, gender, beauty per face (a table, or --json).",
            writes_image=False,
        ),
        BatchOp(
            "detect_live",
            _detect_live,
            required=_URL,
            precheck=_check_image,
            help="Check that the face is a live one (is_live and a score; a table, or --json).",
            writes_image=False,
        ),
        BatchOp(
            "swap",
            _swap,
            required=frozenset({"source", "target"}),
            optional=frozenset({"timeout", "callback_url"}),
            precheck=_check_swap,
            extras=frozenset({"callback"}),
            help="Swap the face of source into target (both URLs); with callback_url, the result goes to your webhook.",
        ),
        result_op(),
    ),
    bench=BenchOp(
        "change-age (one age)",
        _bench,
        op="change_age",
        ops={"swap": ("face swap (synchronous, download)", _bench_swap)},
    ),
    emulator="aioface.emulator._acedata:setup",
)

__all__ = ["SAMPLE_URL", "SPEC", "AceData", "CallbackReceiver"]
