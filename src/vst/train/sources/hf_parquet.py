"""``kind: hf_parquet``: Parquet files with a TRL-style ``messages`` column and ``images``.

``messages``: ``[{"role", "content"}]``, content a string or a list of items (``text`` /
``image`` / ``video``; the extra keys ``datasets`` adds to struct items are ignored).
``images``: a list of ``{"bytes", "path"}`` structs (how ``datasets`` stores images) or of raw
bytes, or one such entry; only the bytes are read, never the path. Optional ``videos``: a list
of frame lists (as vst shards store them) at ``meta["video_fps"]`` (``meta`` a JSON string or
dict) or the source's ``video_fps``; optional ``id`` (else ``"<file>:<row>"``). When the
messages have no image item, the images go first in the first user turn (TRL's rule). A path is
a Parquet file or a folder searched recursively for ``*.parquet``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vst.models.requests import Video, count_items, normalize_messages
from vst.train.examples import TrainExample
from vst.train.sources.media import decode_picture, entry_bytes, picture_entries
from vst.train.sources.rows import ParquetRows, ParquetRowSource, parquet_files

__all__ = ["HfParquet"]

_COLUMNS = ("id", "messages", "images", "image", "videos", "meta")


class HfParquet(ParquetRowSource):
    """Rows of Parquet files in the ``messages`` + ``images`` form."""

    kind = "hf_parquet"

    def __init__(self, name: str, path: Path, system: str | None = None, video_fps: float = 2.0):
        super().__init__(name, system)
        files = parquet_files(path)
        if not files:
            raise ValueError(f"{path}: no Parquet files")
        self.rows = ParquetRows(files, list(_COLUMNS), required=("messages",))
        for file, reason in self.rows.bad:
            self.skip(file.name, f"{file}: {reason}")
        self.video_fps = video_fps

    def _example(self, sid: str, row: dict[str, Any], file: Path) -> TrainExample:
        messages = normalize_messages(row.get("messages") or [])
        entries = picture_entries(row.get("images", row.get("image")))
        images = tuple(
            decode_picture(entry_bytes(e, f"image {k}"), f"image {k}")
            for k, e in enumerate(entries)
        )
        if images and count_items(messages, "image") == 0:
            first = next((m for m in messages if m["role"] == "user"), None)
            if first is None:
                raise ValueError("images but no user turn")
            first["content"] = [{"type": "image"} for _ in images] + first["content"]
        meta = row.get("meta") or {}
        meta = json.loads(meta) if isinstance(meta, str | bytes) else meta
        fps = meta.get("video_fps", self.video_fps) if isinstance(meta, Mapping) else self.video_fps
        videos = []
        for v, frames in enumerate(row.get("videos") or []):
            pics = tuple(
                decode_picture(entry_bytes(f, f"video {v} frame {k}"), f"video {v} frame {k}")
                for k, f in enumerate(frames or [])
            )
            if not pics:
                raise ValueError(f"video {v} has no frames")
            videos.append(Video(pics, float(fps)))
        info: dict[str, Any] = {"file": file.name}
        if videos:
            info["video_fps"] = float(fps)
        return TrainExample(sid, self.name, messages, images, tuple(videos), info)
