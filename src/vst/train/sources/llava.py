"""``kind: llava``: LLaVA ``conversations`` data, a JSON list or JSONL file plus an image folder.

A record is ``{"id", "image": path | [paths], "conversations": [{"from", "value"}]}``, optionally
``"video"``: a list of frame paths (one video), a list of such lists (several videos) or one
video file path (decoded with PyAV when installed), with ``"video_fps"`` / ``"fps"`` or the
source's ``video_fps``. ``<image>`` / ``<video>`` markers in user turns place the pictures
(:mod:`vst.train.sources.chat`). Paths are resolved inside the image folder only
(:func:`vst.scenes.files.resolve_inside`); a record with a path outside it, a missing file, a
bad structure or marker counts that do not match is skipped while indexing, one whose picture
cannot be decoded when it is loaded. A record without an id gets ``"<file>#<line or
position>"``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vst.models.requests import Video
from vst.scenes.errors import UnreadableFileError
from vst.scenes.files import read_json, resolve_inside
from vst.train.examples import TrainExample
from vst.train.sources.base import ItemError, Source
from vst.train.sources.chat import conversation_turns, place_media
from vst.train.sources.media import decode_video, load_picture

__all__ = ["LlavaJson", "read_records"]

MARKERS = {"image": "<image>", "video": "<video>"}


@dataclass(frozen=True)
class _Entry:
    id: str
    messages: list[dict[str, Any]]
    images: tuple[Path, ...]
    videos: tuple[tuple[Path, ...] | Path, ...]  # frame lists, or one video file
    fps: float


def read_records(path: Path) -> list[tuple[str, Any]]:
    """``(position, record)`` pairs of a JSON list or a JSONL file; an unparsable JSONL line is
    returned as ``(position, ValueError)``. ``ValueError`` if the file itself is unusable."""
    if path.suffix == ".jsonl":
        out: list[tuple[str, Any]] = []
        try:
            with path.open(encoding="utf-8") as fh:
                for k, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        out.append((f"line {k}", json.loads(line)))
                    except (ValueError, RecursionError) as exc:
                        out.append((f"line {k}", ValueError(f"not JSON ({exc})")))
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: cannot read ({exc})") from None
        return out
    try:
        data = read_json(path)
    except UnreadableFileError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of records (or a .jsonl file)")
    return [(f"#{k}", rec) for k, rec in enumerate(data)]


def _paths(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise ValueError(f"{what} is not a path or a list of paths")
    return values


def _fps(rec: dict[str, Any], default: float) -> float:
    fps = rec.get("video_fps", rec.get("fps", default))
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not math.isfinite(fps):
        raise ValueError(f"video fps {fps!r} is not a number")
    if fps <= 0:
        raise ValueError(f"video fps must be positive, got {fps}")
    return float(fps)


class LlavaJson(Source):
    """Records of a LLaVA JSON / JSONL file with their pictures under ``images``."""

    kind = "llava"

    def __init__(
        self,
        name: str,
        path: Path,
        images: Path | None = None,
        system: str | None = None,
        video_fps: float = 2.0,
        max_frames: int = 64,
    ):
        super().__init__(name, system)
        self.path = path
        self.root = images if images is not None else path.parent
        self.max_frames = max_frames
        if not self.root.is_dir():
            raise ValueError(f"{self.root}: the image folder does not exist")
        self.entries: list[_Entry] = []
        for pos, rec in read_records(path):
            rid = f"{path.name}{pos if pos.startswith('#') else ':' + pos}"
            if isinstance(rec, dict) and isinstance(rec.get("id"), str | int):
                rid = str(rec["id"])
            try:
                if isinstance(rec, Exception):
                    raise rec
                self.entries.append(self._entry(rid, rec, video_fps))
            except (ValueError, UnreadableFileError) as exc:
                self.skip(rid, f"{path} {pos}: {exc}")

    def _file(self, rel: str) -> Path:
        full = resolve_inside(Path(rel), self.root)
        if not full.is_file():
            raise ValueError(f"missing file {rel} (under {self.root})")
        return full

    def _entry(self, rid: str, rec: Any, video_fps: float) -> _Entry:
        if not isinstance(rec, dict):
            raise ValueError("a record is not a JSON object")
        images = [self._file(p) for p in _paths(rec.get("image", rec.get("images")), "image")]
        raw = rec.get("video")
        videos: list[tuple[Path, ...] | Path] = []
        if isinstance(raw, str):
            videos.append(self._file(raw))
        elif isinstance(raw, list) and raw and all(isinstance(v, list) for v in raw):
            videos += [tuple(self._file(p) for p in _paths(v, "video")) for v in raw]
        elif raw is not None:
            videos.append(tuple(self._file(p) for p in _paths(raw, "video")))
        if any(isinstance(v, tuple) and not v for v in videos):
            raise ValueError("a video has no frames")
        turns = conversation_turns(rec.get("conversations"))
        messages = place_media(turns, MARKERS, {"image": len(images), "video": len(videos)})
        if not any(m["role"] == "assistant" for m in messages):
            raise ValueError("no assistant turn")
        fps = _fps(rec, video_fps) if videos else video_fps
        return _Entry(rid, messages, tuple(images), tuple(videos), fps)

    def __len__(self) -> int:
        return len(self.entries)

    def _load(self, i: int) -> TrainExample:
        e = self.entries[i]
        try:
            images = tuple(load_picture(p) for p in e.images)
            videos = []
            for v in e.videos:
                if isinstance(v, Path):
                    videos.append(decode_video(v.read_bytes(), e.fps, self.max_frames, str(v)))
                else:
                    videos.append(Video(tuple(load_picture(p) for p in v), e.fps))
            meta: dict[str, Any] = {"file": self.path.name}
            if videos:
                meta["video_fps"] = videos[0].fps
            return TrainExample(e.id, self.name, e.messages, images, tuple(videos), meta)
        except (ValueError, OSError) as exc:
            raise ItemError(e.id, f"{self.path}: {exc}") from None
