"""Result types."""

from __future__ import annotations

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
    """A result image saved to disk, with what the provider said about it."""

    provider: str
    path: Path
    bytes: int
    format: str
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

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``results.jsonl`` records)."""
        d: dict[str, Any] = {
            "provider": self.provider,
            "path": str(self.path),
            "bytes": self.bytes,
            "format": self.format,
            "width": self.width,
            "height": self.height,
        }
        for k in ("task_id", "request_id", "user_class"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        d.update(self.extra)
        return d
