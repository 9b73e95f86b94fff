"""Result types."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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


@dataclass(frozen=True)
class FaceInfo:
    """One face of a :class:`FaceAnalysis`: what the provider said, the common fields typed."""

    age: int | None = None
    #: The provider's code (Ace Data: 0 female, 1 male, as its change-gender docs number them).
    gender: int | None = None
    beauty: float | None = None
    #: Everything else the provider said of this face, under its own names.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FaceAnalysis:
    """A face analysis (Ace Data ``/face/analyze``): the faces found and the provider's own JSON.

    ``analysis["face_num"]`` still reads the provider's JSON (``raw``)."""

    provider: str
    faces: tuple[FaceInfo, ...]
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    request_id: str | None = None

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __contains__(self, key: object) -> bool:
        return key in self.raw

    def to_json(self) -> dict[str, Any]:
        faces = [{"age": f.age, "gender": f.gender, "beauty": f.beauty, **f.extra} for f in self.faces]
        d: dict[str, Any] = {"provider": self.provider, "face_num": len(self.faces), "faces": faces}
        if self.request_id:
            d["request_id"] = self.request_id
        return d

    def table(self) -> tuple[list[str], list[list[object]]]:
        """(columns, rows), one row a face, for printing."""
        return ["face", "age", "gender", "beauty"], [
            [i + 1, f.age, f.gender, f.beauty] for i, f in enumerate(self.faces)
        ]


@dataclass(frozen=True)
class Liveness:
    """A liveness check (Ace Data ``/face/detect-live``): is it a live face, with the provider's score."""

    provider: str
    is_live: bool | None
    score: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    request_id: str | None = None

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __contains__(self, key: object) -> bool:
        return key in self.raw

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"provider": self.provider, "is_live": self.is_live, "score": self.score}
        if self.request_id:
            d["request_id"] = self.request_id
        return d

    def table(self) -> tuple[list[str], list[list[object]]]:
        return ["is_live", "score"], [[self.is_live, self.score]]


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
