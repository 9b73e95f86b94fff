"""Ace Data's answers that are facts, not images: analyze's key points per face, detect-live's score."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..._errors import ProtocolError
from ..._types import FACE_PARTS, FaceAnalysis, FaceInfo, Liveness, Point
from .._helpers import number_in
from ._adapter import PROVIDER


def _either(p: Mapping[str, Any], k: str) -> object:
    v = p.get(k)
    return p.get(k.upper()) if v is None else v


def _points(value: object, part: str) -> tuple[Point, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ProtocolError(f"{PROVIDER} analyze answer: {part} is not a list of points")
    out = []
    for p in value:
        # The spec's own example spells some points {"X", "Y"}: both spellings are read.
        x, y = (number_in(_either(p, "x")), number_in(_either(p, "y"))) if isinstance(p, Mapping) else (None, None)
        if x is None or y is None:
            raise ProtocolError(f"{PROVIDER} analyze answer: a point of {part} is not {{x, y}}")
        out.append(Point(x, y))
    return tuple(out)


def _str(v: object) -> str | None:
    return str(v) if isinstance(v, (str, int, float)) and not isinstance(v, bool) else None


def analysis(data: Mapping[str, Any]) -> FaceAnalysis:
    """``/face/analyze``'s answer (the spec): ``image_width``, ``image_height``,
    ``face_model_version`` and ``face_shape_set``, per face its named key-point lists; anything
    else stays in ``raw`` and each face's ``extra``."""
    shapes = data.get("face_shape_set")
    if shapes is None:
        shapes = []
    if not isinstance(shapes, list):
        raise ProtocolError(f"{PROVIDER} analyze answer: face_shape_set is not a list")
    faces = []
    for f in shapes:
        if not isinstance(f, Mapping):
            raise ProtocolError(f"{PROVIDER} analyze answer: a face is not an object")
        parts = {part: _points(f.get(part), part) for part in FACE_PARTS}
        extra = {k: v for k, v in f.items() if k not in FACE_PARTS}
        faces.append(FaceInfo(**parts, extra=extra))
    trace = data.get("trace_id")
    return FaceAnalysis(
        PROVIDER,
        tuple(faces),
        _integer(data.get("image_width")),
        _integer(data.get("image_height")),
        _str(data.get("face_model_version")),
        dict(data),
        str(trace) if trace else None,
    )


def _integer(v: object) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def liveness(data: Mapping[str, Any], threshold: float | None = None) -> Liveness:
    """``/face/detect-live``'s answer (the spec): ``{score, face_model_version}``, the score a
    number or a numeric string. ``is_live`` only from the caller's ``threshold``."""
    score = number_in(data.get("score"))
    trace = data.get("trace_id")
    live = None if threshold is None or score is None else score >= threshold
    return Liveness(
        PROVIDER,
        score,
        _str(data.get("face_model_version")),
        live,
        threshold,
        dict(data),
        str(trace) if trace else None,
    )
