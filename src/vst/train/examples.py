"""What training reads: one conversation with its pictures, from any source.

Every data source (vst shards, LLaVA JSON, Hugging Face parquet, the VST release's parquet, CoT
data) yields :class:`TrainExample` s; the mixer draws from them; the collator encodes, masks and
packs them. ``messages`` are in the normalised multimodal form of
:class:`vst.models.requests.Request` (``{"role", "content": [items]}``, items ``{"type":
"text", "text"}`` / ``{"type": "image"}`` / ``{"type": "video"}``), with every assistant turn
present: all of them are trained on. A system turn is optional; the collator puts the run's
system prompt first when the example has none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from vst.models.requests import Request, Video

__all__ = ["TrainExample"]


@dataclass(frozen=True)
class TrainExample:
    """One training conversation: ``id`` (unique within its source), ``source`` (the name of the
    data source it came from, for mix reports), ``messages``, ``images`` and ``videos`` (taken in
    the order their items appear), ``meta`` (free JSON-able provenance)."""

    id: str
    source: str
    messages: list[dict[str, Any]]
    images: tuple[Image.Image, ...] = ()
    videos: tuple[Video, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # validate and normalise through Request (item counts, content types)
        request = Request(self.messages, self.images, self.videos, id=self.id)
        object.__setattr__(self, "messages", request.messages)
        object.__setattr__(self, "images", request.images)
        object.__setattr__(self, "videos", request.videos)
        if not any(m["role"] == "assistant" for m in request.messages):
            raise ValueError(f"example {self.id!r} ({self.source}): no assistant turn to train on")

    def as_request(self) -> Request:
        """The whole conversation as a :class:`Request` (for processing)."""
        return Request(self.messages, self.images, self.videos, id=self.id)
