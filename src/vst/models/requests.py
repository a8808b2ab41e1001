"""What a backend is asked: a chat with its pictures, and a stable fingerprint of it.

A :class:`Request` holds chat ``messages`` in the TRL / transformers multimodal form (the form
of a sample's ``messages``): each turn is ``{"role", "content"}`` where ``content`` is a string
or a list of items ``{"type": "text", "text": ...}``, ``{"type": "image"}`` or
``{"type": "video"}``. Image items take ``images`` in order, video items take ``videos`` in
order. A :class:`Video` is a list of frames (PIL images, in time order) and the rate they were
sampled at (frames per second), which is how Qwen2.5-VL reads video.

:meth:`Request.fingerprint` hashes what the model sees: the messages (canonical JSON) and every
picture's pixels, size and mode, and each video's fps. The caller's ``id`` is not part of it, so
two jobs asking the same thing share cache entries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

__all__ = [
    "Request",
    "Video",
    "count_items",
    "image_fingerprint",
    "normalize_messages",
]


@dataclass(frozen=True)
class Video:
    """A video as frames (PIL images, time order) sampled at ``fps`` frames per second."""

    frames: tuple[Image.Image, ...]
    fps: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "frames", tuple(self.frames))
        if not self.frames:
            raise ValueError("a video needs at least one frame")
        if not (self.fps > 0):
            raise ValueError(f"video fps must be positive, got {self.fps!r}")


def normalize_messages(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages with list content only: a string content becomes one text item, item dicts keep
    only ``type`` and (for text) ``text``; ``None`` texts of non-text items (as read back from
    Parquet) are dropped. Raises ``ValueError`` naming the turn on a malformed message."""
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ValueError(f"message {i}: expected a dict with a string 'role'")
        content = message.get("content")
        if isinstance(content, str):
            items = [{"type": "text", "text": content}]
        elif isinstance(content, list | tuple):
            items = []
            for j, item in enumerate(content):
                kind = item.get("type") if isinstance(item, dict) else None
                if kind == "text":
                    text = item.get("text")
                    if not isinstance(text, str):
                        raise ValueError(f"message {i} item {j}: a text item needs a string 'text'")
                    items.append({"type": "text", "text": text})
                elif kind in ("image", "video"):
                    items.append({"type": kind})
                else:
                    raise ValueError(
                        f"message {i} item {j}: unknown content type {kind!r} "
                        "(text, image or video)"
                    )
        else:
            raise ValueError(f"message {i}: content must be a string or a list of items")
        out.append({"role": message["role"], "content": items})
    return out


def count_items(messages: Sequence[dict[str, Any]], kind: str) -> int:
    """Number of ``{"type": kind}`` items in normalised ``messages``."""
    return sum(
        1
        for m in messages
        if isinstance(m.get("content"), list)
        for c in m["content"]
        if c.get("type") == kind
    )


def image_fingerprint(image: Image.Image) -> str:
    """sha256 (hex) of an image's mode, size and raw pixels."""
    h = hashlib.sha256()
    h.update(f"{image.mode}:{image.width}x{image.height}:".encode())
    h.update(image.tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Request:
    """One chat for a model: ``messages`` (normalised on creation), ``images`` and ``videos`` in
    the order their items appear, and a caller's ``id`` (reports only; not hashed)."""

    messages: list[dict[str, Any]]
    images: tuple[Image.Image, ...] = ()
    videos: tuple[Video, ...] = ()
    id: str = ""
    _fingerprint: list[str] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "messages", normalize_messages(self.messages))
        object.__setattr__(self, "images", tuple(self.images))
        object.__setattr__(self, "videos", tuple(self.videos))
        where = f"request {self.id!r}: " if self.id else ""
        for kind, given in (("image", self.images), ("video", self.videos)):
            slots = count_items(self.messages, kind)
            if slots != len(given):
                raise ValueError(
                    f"{where}messages have {slots} {kind} item(s) but {len(given)} {kind}(s) "
                    "were given"
                )
        if not self.messages:
            raise ValueError(f"{where}no messages")

    def fingerprint(self) -> str:
        """sha256 (hex) of the messages, the pixels of every image and video frame, and each
        video's fps (computed once)."""
        if not self._fingerprint:
            h = hashlib.sha256()
            h.update(json.dumps(self.messages, sort_keys=True, ensure_ascii=False).encode())
            for image in self.images:
                h.update(b"image:" + image_fingerprint(image).encode())
            for video in self.videos:
                h.update(f"video:{float(video.fps)!r}:{len(video.frames)}".encode())
                for frame in video.frames:
                    h.update(image_fingerprint(frame).encode())
            self._fingerprint.append(h.hexdigest())
        return self._fingerprint[0]
