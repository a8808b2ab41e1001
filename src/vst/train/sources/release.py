"""``kind: vst_release``: the VST release's SFT Parquet (VST-RELEASE.md §1).

Columns ``conversations``, ``id``, ``data_source``, ``images`` (``{"bytes", "path"}``), ``type``,
``meta_info``. As the release reads them:

* ``<|image_pad|>`` / ``<|video_pad|>`` in user turns take the pictures in order; with neither
  flag anywhere, legacy ``<image>`` tags are used in place when their count matches, else removed
  and the pictures put first in the first user turn (the release always removes and prepends);
* ``type`` containing ``text``: no pictures; containing ``video``: every ``images`` entry is a
  video: a video file (decoded with PyAV when installed, at the source's ``video_fps``, at most
  ``max_frames`` frames; skipped with that reason otherwise), or JPEG/PNG frames (a frame list:
  grouped into videos by ``meta_info[k]["video_index"]`` when given, else all one video, at
  ``meta_info[k]["fps"]`` or ``video_fps``); otherwise entries are images;
* ``type`` containing ``thought``: the thinking system prompt, else the plain one, put first as a
  system turn (``meta["system"]``); a source ``system`` overrides the type. ``bbox_3d`` rows are
  read as stored (the release's train-time FoV rewrite is not applied).

A path is a Parquet file or a folder searched recursively for ``*.parquet``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vst.engine.export_release import IMAGE_FLAG, VIDEO_FLAG
from vst.models.prompts import system_prompt, with_system
from vst.models.requests import Video
from vst.train.examples import TrainExample
from vst.train.sources.chat import conversation_turns, place_media
from vst.train.sources.media import (
    decode_picture,
    decode_video,
    entry_bytes,
    is_image_bytes,
    picture_entries,
)
from vst.train.sources.rows import ParquetRows, ParquetRowSource, parquet_files

__all__ = ["ReleaseParquet"]

FLAGS = {"image": IMAGE_FLAG, "video": VIDEO_FLAG}


def _meta_info(value: Any) -> list[Mapping[str, Any]]:
    try:
        data = json.loads(value) if isinstance(value, str | bytes) else value
    except (ValueError, RecursionError):
        return []
    return [d for d in data if isinstance(d, Mapping)] if isinstance(data, list) else []


class ReleaseParquet(ParquetRowSource):
    """Rows of the release's SFT Parquet files."""

    kind = "vst_release"

    def __init__(
        self,
        name: str,
        path: Path,
        system: str | None = None,
        video_fps: float = 2.0,
        max_frames: int = 64,
    ):
        super().__init__(name, None)
        if system is not None:
            system_prompt(system)
        self.override = system
        files = parquet_files(path)
        if not files:
            raise ValueError(f"{path}: no Parquet files")
        self.rows = ParquetRows(files, required=("conversations",))
        for file, reason in self.rows.bad:
            self.skip(file.name, f"{file}: {reason}")
        self.video_fps = video_fps
        self.max_frames = max_frames

    def _videos(self, entries: list[Any], info: list[Mapping[str, Any]]) -> list[Video]:
        data = [entry_bytes(e, f"video entry {k}") for k, e in enumerate(entries)]
        frames = [is_image_bytes(d) for d in data]
        if not any(frames):
            return [
                decode_video(d, self.video_fps, self.max_frames, f"video {k}")
                for k, d in enumerate(data)
            ]
        if not all(frames):
            raise ValueError("a video row mixes video files and image frames")
        groups: dict[int, list[Any]] = {}
        grouped = len(info) == len(data) and all("video_index" in d for d in info)
        for k, d in enumerate(data):
            v = info[k]["video_index"] if grouped else 0
            groups.setdefault(int(v), []).append(decode_picture(d, f"video frame {k}"))
        fps = info[0].get("fps") if info else None
        fps = float(fps) if fps else self.video_fps
        return [Video(tuple(groups[v]), fps) for v in sorted(groups)]

    def _example(self, sid: str, row: dict[str, Any], file: Path) -> TrainExample:
        kind = str(row.get("type") or "unknow")
        entries = [] if "text" in kind else picture_entries(row.get("images"))
        images: tuple[Any, ...] = ()
        videos: list[Video] = []
        if "video" in kind:
            videos = self._videos(entries, _meta_info(row.get("meta_info")))
        else:
            images = tuple(
                decode_picture(entry_bytes(e, f"image {k}"), f"image {k}")
                for k, e in enumerate(entries)
            )
        turns = conversation_turns(row.get("conversations"))
        counts = {"image": len(images), "video": len(videos)}
        flagged = any(f in text for role, text in turns if role == "user" for f in FLAGS.values())
        if flagged:
            messages = place_media(turns, FLAGS, counts)
        else:
            legacy = {"video" if videos else "image": "<image>"}
            messages = place_media(turns, legacy, counts, prepend_on_mismatch=True)
        system = self.override or ("think" if "thought" in kind else "plain")
        messages = with_system(messages, system_prompt(system))
        meta: dict[str, Any] = {"file": file.name, "type": kind}
        if isinstance(row.get("data_source"), str):
            meta["data_source"] = row["data_source"]
        if videos:
            meta["video_fps"] = videos[0].fps
        return TrainExample(sid, self.name, messages, images, tuple(videos), meta)
