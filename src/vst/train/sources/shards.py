"""``kind: vst``: the Parquet shards of a vst engine run (a run folder or its ``data/``).

Indexing reads the ``task`` column (for the optional task filter, names or globs) and, with a
``splits`` filter, the ``meta`` column (a row is kept when its ``meta["split"]``, the split of
the scene it was drawn from, is one of them; rows without a split are dropped); a row is
decoded by :func:`vst.models.samples.sample_chat` (the whole chat, every answer turn included;
videos at ``meta["video_fps"]``). ``meta`` keeps ``task``, ``scenario``, ``shard`` and, for
videos, ``video_fps``.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

from vst.engine.writer import list_shards
from vst.models.samples import sample_chat
from vst.train.examples import TrainExample
from vst.train.sources.base import ItemError, Source
from vst.train.sources.rows import ParquetRows

__all__ = ["VstShards"]


def _split(meta: object) -> str | None:
    """The ``split`` of a row's ``meta`` JSON (None when absent or unreadable)."""
    try:
        value = json.loads(meta) if isinstance(meta, str | bytes) else None
    except ValueError:
        return None
    split = value.get("split") if isinstance(value, dict) else None
    return split if isinstance(split, str) else None


class VstShards(Source):
    """The samples of a vst shard folder, optionally only ``tasks`` (names or globs) and only
    scene ``splits``."""

    kind = "vst"

    def __init__(
        self,
        name: str,
        path: Path,
        tasks: list[str] | None = None,
        system: str | None = None,
        splits: list[str] | None = None,
    ):
        super().__init__(name, system)
        shards = list_shards(path)
        if not shards:
            raise ValueError(f"{path}: no vst shards (shard-*.parquet) here or in its data/")
        columns = ["id", "task", "scenario", "messages", "images", "videos", "meta"]
        self.rows = ParquetRows(shards, columns, required=("id", "task", "messages"))
        for file, reason in self.rows.bad:
            self.skip(file.name, f"{file}: {reason}")
        task_of = self.rows.column("task")
        keep = range(len(task_of))
        if tasks:
            keep = [
                i
                for i, t in enumerate(task_of)
                if isinstance(t, str) and any(fnmatch.fnmatch(t, p) for p in tasks)
            ]
        if splits:
            split_of = [_split(m) for m in self.rows.column("meta")]
            keep = [i for i in keep if split_of[i] in splits]
        self.index = list(keep)

    def __len__(self) -> int:
        return len(self.index)

    def _load(self, i: int) -> TrainExample:
        g = self.index[i]
        shard, r = self.rows.locate(g)
        sid = f"{shard.name}:{r}"
        try:
            row = self.rows.row(g)
            sid = row["id"] if isinstance(row.get("id"), str) and row["id"] else sid
            info = {"task": row.get("task"), "scenario": row.get("scenario"), "shard": shard.name}
            request = sample_chat(row)
            if request.videos:
                info["video_fps"] = request.videos[0].fps
            return TrainExample(
                sid, self.name, request.messages, request.images, request.videos, info
            )
        except ValueError as exc:
            reason = str(exc).removeprefix(f"sample {sid}: ")
            raise ItemError(sid, f"{shard}: {reason}") from None
