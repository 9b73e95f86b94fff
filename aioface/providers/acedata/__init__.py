"""Ace Data Cloud's face API: POST JSON, Bearer token, synchronous or callback swaps."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..._config import TOKEN, provider_env
from ..._errors import GenerationTimeoutError, InvalidRequestError
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
    return await ns.change_gender(p["image_url"], p["genders"], dest, face_rects=p.get("face_rects"))


async def _beautify(ns: AceData, p: Mapping[str, Any], dest: Path) -> ImageResult:
    return await ns.beautify(p["image_url"], dest, **{k: p[k] for k in _ace.BEAUTIFY_OPTIONS if k in p})


async def _cartoon(ns: AceData, p: Mapping[str, Any], dest: Path) -> ImageResult:
    return await ns.cartoon(p["image_url"], dest)


async def _swap(ns: AceData, p: Mapping[str, Any], dest: Path) -> ImageResult | SubmittedTask:
    if p.get("callback_url"):  # the result goes to the user's own webhook: keep the task id
        url = p["callback_url"]
        tid = await ns.submit_swap(source=p["source"], target=p["target"], callback_url=url, timeout=p.get("timeout"))
        return SubmittedTask("acedata", tid, url)
    return await ns.swap(
        dest,
        source=p["source"],
        target=p["target"],
        timeout=p.get("timeout"),
        callback=p.get("callback"),
        sync=bool(p.get("sync", False)),
    )


async def _analyze(ns: AceData, p: Mapping[str, Any], dest: Path) -> FaceAnalysis:
    return await ns.analyze(
        p["image_url"],
        mode=p.get("mode"),
        face_model_version=p.get("face_model_version"),
        need_rotate_detection=p.get("need_rotate_detection"),
    )


async def _detect_live(ns: AceData, p: Mapping[str, Any], dest: Path) -> Liveness:
    return await ns.detect_live(
        p["image_url"], face_model_version=p.get("face_model_version"), threshold=p.get("threshold")
    )


def _url(v: object, name: str) -> str:
    """A URL as it is; a local path (uploaded when the job runs) as a stand-in URL for the checks."""
    if not isinstance(v, str) or not v:
        raise InvalidRequestError(f"{name} must be an http(s) URL or a path", param=name)
    return v if "://" in v else "https://upload.invalid/image"


def _check_change_age(p: Mapping[str, Any]) -> None:
    _ace.change_age_body(_url(p["image_url"], "image_url"), p["ages"], p.get("face_rects"))


def _check_change_gender(p: Mapping[str, Any]) -> None:
    _ace.change_gender_body(_url(p["image_url"], "image_url"), p["genders"], p.get("face_rects"))


def _check_image(p: Mapping[str, Any]) -> None:
    _ace.image_body(_url(p["image_url"], "image_url"))


def _check_beautify(p: Mapping[str, Any]) -> None:
    _ace.beautify_body(_url(p["image_url"], "image_url"), **{k: p[k] for k in _ace.BEAUTIFY_OPTIONS if k in p})


def _check_analyze(p: Mapping[str, Any]) -> None:
    _ace.analyze_body(
        _url(p["image_url"], "image_url"), p.get("mode"), p.get("face_model_version"), p.get("need_rotate_detection")
    )


def _check_detect_live(p: Mapping[str, Any]) -> None:
    _ace.detect_live_body(_url(p["image_url"], "image_url"), p.get("face_model_version"))
    if p.get("threshold") is not None:
        _ace.number(p["threshold"], "threshold")


def _check_swap(p: Mapping[str, Any]) -> None:
    _ace.swap_body(_url(p["source"], "source"), _url(p["target"], "target"), p.get("timeout"), p.get("callback_url"))
    if not isinstance(p.get("sync", False), bool):
        raise InvalidRequestError("sync must be true or false", param="sync")
    if p.get("sync") and p.get("callback_url"):
        raise InvalidRequestError("sync and callback_url exclude each other", param="sync")


def _age_alias(p: dict[str, Any]) -> dict[str, Any]:
    if "age" in p and "ages" not in p:
        p["ages"] = [p.pop("age")]
    return p


def _version_text(p: dict[str, Any]) -> dict[str, Any]:
    """analyze's ``face_model_version`` is a string in the spec; the command line parses ``3.0`` as a number."""
    v = p.get("face_model_version")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        p["face_model_version"] = str(v)
    return p


def _bench(ns: AceData) -> Any:
    return lambda dest: ns.change_age(SAMPLE_URL, [60], dest)


#: A second image from the provider's docs, the picture a benchmarked swap puts a face into.
SAMPLE_TARGET_URL = "https://cdn.acedata.cloud/3np95r.png"


def _bench_swap(ns: AceData) -> Any:
    return lambda dest: ns.swap(dest, source=SAMPLE_URL, target=SAMPLE_TARGET_URL, sync=True)


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
            optional=frozenset({"face_rects"}),
            precheck=_check_change_gender,
            help="Change the gender of the faces (one 0 or 1 per face, optionally one face rectangle per face).",
            lists=frozenset({"genders", "face_rects"}),
            objects=frozenset({"face_rects"}),
        ),
        BatchOp(
            "beautify",
            _beautify,
            required=_URL,
            optional=frozenset(_ace.BEAUTIFY_OPTIONS),
            precheck=_check_beautify,
            help="Beautify the faces (optional numbers: smoothing, whitening, face lifting, eye enlarging).",
        ),
        BatchOp("cartoon", _cartoon, required=_URL, precheck=_check_image, help="Turn the picture into a cartoon."),
        BatchOp(
            "analyze",
            _analyze,
            required=_URL,
            optional=frozenset({"mode", "face_model_version", "need_rotate_detection"}),
            precheck=_check_analyze,
            normalize=_version_text,
            help="Analyze the faces: 90 key points per face, the picture's size, the model version (table or --json).",
            writes_image=False,
        ),
        BatchOp(
            "detect_live",
            _detect_live,
            required=_URL,
            optional=frozenset({"face_model_version", "threshold"}),
            precheck=_check_detect_live,
            help="Liveness score and model version; is_live only from your --threshold (a table, or --json).",
            writes_image=False,
        ),
        BatchOp(
            "swap",
            _swap,
            required=frozenset({"source", "target"}),
            optional=frozenset({"timeout", "callback_url", "sync"}),
            precheck=_check_swap,
            extras=frozenset({"callback"}),
            help=(
                "Swap the face of source into target (URLs or local files, uploaded first); sent with async: true "
                "and the task polled, or --sync true to hold the connection; with callback_url, the result goes "
                "to your webhook."
            ),
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

__all__ = ["SAMPLE_URL", "SPEC", "AceData", "CallbackReceiver", "GenerationTimeoutError"]
