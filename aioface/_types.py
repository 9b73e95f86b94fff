"""Result types."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

#: What a task is doing: waiting at the provider, being made, its image coming down, finished.
TaskStatus = Literal["queued", "processing", "callback", "downloading", "done", "failed"]


@dataclass(frozen=True)
class TaskEvent:
    """A change in a task's progress, given to ``on_status`` callbacks.

    ``status``: ``queued`` (accepted, waiting; AILab ``task_status`` 0, an Ace Data task with a
    callback), ``processing`` (AILab 1, a synchronous Ace Data call in flight), ``callback`` (Ace
    Data's callback arrived), ``downloading`` (the result image is coming down), ``done`` (saved),
    ``failed``. ``code`` is the provider's own status code when it sent one.
    """

    provider: str
    status: TaskStatus
    task_id: str | None = None
    code: int | None = None
    #: ``time.monotonic()`` when it happened.
    at: float = 0.0


@dataclass(frozen=True)
class ImageResult:
    """A result image, with what the provider said about it.

    Where the image is depends on the ``dest`` the call was given: a file (``path``), memory
    (``data``, for ``dest=None``), or a file object / sink you passed (neither). With
    ``download=False`` nothing was fetched: ``source_url`` is the provider's URL (valid for hours),
    ``downloaded`` is False and ``bytes``/``width``/``height`` are what the provider declared, if anything.
    """

    provider: str
    #: The saved file; None when the image went to memory, to a file object, or was not downloaded.
    path: Path | None
    #: Its size (declared by the provider when not downloaded; None if it declared none).
    bytes: int | None
    #: ``jpeg``, ``png``, ``webp`` or ``gif``; None when not downloaded.
    format: str | None
    width: int | None = None
    height: int | None = None
    #: The provider's task id (Ace Data swap, AILab), when it has one.
    task_id: str | None = None
    #: The provider's request or trace id, when it sent one.
    request_id: str | None = None
    #: Face Studio's ``X-User-Class`` (anon, basic, professional, enterprise).
    user_class: str | None = None
    #: Where the provider served the image from (not for Face Studio, which sends bytes).
    source_url: str | None = None
    #: Whatever else the provider said, under its own names: Ace Data's declared ``image_width``,
    #: ``image_height`` and ``image_size``, AILab's ``log_id``; batch adds ``recovered``.
    extra: dict[str, Any] = field(default_factory=dict)
    #: The image, when ``dest`` was None (kept in memory, capped at 32 MiB).
    data: builtins.bytes | None = field(default=None, repr=False)

    @property
    def downloaded(self) -> bool:
        """False for ``download=False`` results (the provider's URL only)."""
        return self.format is not None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``results.jsonl`` records)."""
        d: dict[str, Any] = {
            "provider": self.provider,
            "path": None if self.path is None else str(self.path),
            "bytes": self.bytes,
            "format": self.format,
            "width": self.width,
            "height": self.height,
        }
        for k in ("task_id", "request_id", "user_class") + (() if self.downloaded else ("source_url",)):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        d.update(self.extra)
        return d


class Point(NamedTuple):
    """One key point of a face, in the picture's pixels."""

    x: float
    y: float


#: The named key-point lists of a face in Ace Data's ``/face/analyze`` answer (90 points in all).
FACE_PARTS = (
    "face_profile",
    "left_eye",
    "right_eye",
    "left_eye_brow",
    "right_eye_brow",
    "left_pupil",
    "right_pupil",
    "nose",
    "mouth",
)


@dataclass(frozen=True)
class FaceInfo:
    """One face of a :class:`FaceAnalysis`: its key points, as the provider named them.

    Ace Data sends 90 points per face: ``face_profile`` (21), ``left_eye``/``right_eye`` (8 each),
    ``left_eye_brow``/``right_eye_brow`` (8 each), ``left_pupil``/``right_pupil`` (1 each),
    ``nose`` (13), ``mouth`` (22). A list the answer lacks is empty.
    """

    face_profile: tuple[Point, ...] = ()
    left_eye: tuple[Point, ...] = ()
    right_eye: tuple[Point, ...] = ()
    left_eye_brow: tuple[Point, ...] = ()
    right_eye_brow: tuple[Point, ...] = ()
    left_pupil: tuple[Point, ...] = ()
    right_pupil: tuple[Point, ...] = ()
    nose: tuple[Point, ...] = ()
    mouth: tuple[Point, ...] = ()
    #: Everything else the provider said of this face, under its own names.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def points(self) -> tuple[Point, ...]:
        """Every key point of the face, part after part."""
        return tuple(p for part in FACE_PARTS for p in getattr(self, part))

    def box(self) -> tuple[float, float, float, float] | None:
        """(x, y, width, height) around every key point; None without points."""
        pts = self.points
        if not pts:
            return None
        xs, ys = [p.x for p in pts], [p.y for p in pts]
        return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {part: [{"x": p.x, "y": p.y} for p in getattr(self, part)] for part in FACE_PARTS}
        d.update(self.extra)
        return d


def _num(v: float) -> str:
    return f"{v:g}"


@dataclass(frozen=True)
class FaceAnalysis:
    """A face analysis (Ace Data ``/face/analyze``): each face's key points, the picture's size and
    the model version the provider used; ``raw`` is the provider's own JSON (``analysis["..."]``
    reads it)."""

    provider: str
    faces: tuple[FaceInfo, ...]
    image_width: int | None = None
    image_height: int | None = None
    face_model_version: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    request_id: str | None = None

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __contains__(self, key: object) -> bool:
        return key in self.raw

    def to_json(self) -> dict[str, Any]:
        """Everything: the size, the model version, every key point of every face, and any other
        field the provider sent."""
        d: dict[str, Any] = {
            "provider": self.provider,
            "face_num": len(self.faces),
            "image_width": self.image_width,
            "image_height": self.image_height,
            "face_model_version": self.face_model_version,
            "faces": [f.to_json() for f in self.faces],
        }
        if self.request_id:
            d["request_id"] = self.request_id
        # Whatever else the provider sent, under its own names (the faces are above, typed).
        d.update({k: v for k, v in self.raw.items() if k not in d and k != "face_shape_set"})
        return d

    def table(self) -> tuple[list[str], list[list[object]]]:
        """(columns, rows), one row a face: its key points and the box around them, for printing."""
        size = f"{self.image_width}x{self.image_height}" if self.image_width and self.image_height else None
        rows: list[list[object]] = []
        for i, f in enumerate(self.faces):
            box = f.box()
            rows.append(
                [
                    i + 1,
                    len(f.points),
                    None if box is None else f"{_num(box[0])},{_num(box[1])} {_num(box[2])}x{_num(box[3])}",
                    size,
                    self.face_model_version,
                ]
            )
        return ["face", "key points", "box (x,y wxh)", "image", "model"], rows


@dataclass(frozen=True)
class Liveness:
    """A liveness check (Ace Data ``/face/detect-live``): the provider's score and model version.

    The provider decides nothing: ``is_live`` is None unless the caller gave a ``threshold`` (then
    ``score >= threshold``)."""

    provider: str
    score: float | None
    face_model_version: str | None = None
    is_live: bool | None = None
    threshold: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    request_id: str | None = None

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __contains__(self, key: object) -> bool:
        return key in self.raw

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "provider": self.provider,
            "score": self.score,
            "face_model_version": self.face_model_version,
        }
        if self.threshold is not None:
            d["threshold"] = self.threshold
            d["is_live"] = self.is_live
        if self.request_id:
            d["request_id"] = self.request_id
        d.update({k: v for k, v in self.raw.items() if k not in d})  # whatever else the provider sent
        return d

    def table(self) -> tuple[list[str], list[list[object]]]:
        columns = ["score", "model"]
        row: list[object] = [self.score, self.face_model_version]
        if self.threshold is not None:
            columns += ["threshold", "is_live"]
            row += [self.threshold, self.is_live]
        return columns, [row]


@dataclass(frozen=True)
class SubmittedTask:
    """A task started with the caller's own webhook (a batch swap with ``callback_url``): the
    provider POSTs its result there, so the task id is all there is to keep."""

    provider: str
    task_id: str
    callback_url: str

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "task_id": self.task_id, "callback_url": self.callback_url}

    def table(self) -> tuple[list[str], list[list[object]]]:
        return ["task_id", "callback_url"], [[self.task_id, self.callback_url]]


#: Whatever one operation returns: an image, facts about one, or a task handed to a webhook.
Result = ImageResult | FaceAnalysis | Liveness | SubmittedTask
