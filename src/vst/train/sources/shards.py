"""``kind: vst``: the Parquet shards of a vst engine run (a run folder or its ``data/``).

Indexing reads the ``task`` column (for the optional task filter, names or globs) and, with a
``splits`` filter, the ``meta`` column (a row is kept when its ``meta["split"]``, the split of
the scene it was drawn from, is one of them; rows without a split are dropped); a row is
decoded by :func:`vst.models.samples.sample_chat` (the whole chat, every answer turn included;
videos at ``meta["video_fps"]``). ``meta`` keeps ``task``, ``scenario``, ``shard``, ``reward``
(the row's reward spec as a dict: what the GRPO stage scores answers with) and, for videos,
``video_fps``.

``modes``: only rows whose reward mode is one of these (the ``reward`` column is read while
indexing). ``rl=True`` (the GRPO stage): only rule-checkable rows with pictures a GRPO rollout can
take: rows in the ``caption`` mode (free text: no rule checks them) and video rows (TRL's GRPO
trainer has no video input) are left out while indexing, and each of the two is reported as one
skip line with its count.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

from vst.engine.writer import list_shards
from vst.models.samples import sample_chat
from vst.rewards import load_reward_spec
from vst.train.examples import TrainExample
from vst.train.sources.base import ItemError, Source
from vst.train.sources.rows import ParquetRows

__all__ = ["VstShards"]


def _meta(meta: object) -> dict:
    """A row's ``meta`` JSON as a dict (empty when absent or unreadable)."""
    try:
        value = json.loads(meta) if isinstance(meta, str | bytes) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _split(meta: object) -> str | None:
    """The ``split`` of a row's ``meta`` JSON (None when absent or unreadable)."""
    split = _meta(meta).get("split")
    return split if isinstance(split, str) else None


def _mode(reward: object) -> str | None:
    """The mode of a row's reward spec (None when it is not a valid spec)."""
    try:
        return load_reward_spec(reward)["mode"]
    except ValueError:
        return None


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
        modes: list[str] | None = None,
        rl: bool = False,
    ):
        super().__init__(name, system)
        self.rl = rl
        shards = list_shards(path)
        if not shards:
            raise ValueError(f"{path}: no vst shards (shard-*.parquet) here or in its data/")
        columns = ["id", "task", "scenario", "messages", "images", "videos", "meta", "reward"]
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
        metas = self.rows.column("meta") if splits or rl else None
        if splits:
            split_of = [_split(m) for m in metas]
            keep = [i for i in keep if split_of[i] in splits]
        if modes or rl:
            mode_of = [_mode(r) for r in self.rows.column("reward")]
            if modes:
                keep = [i for i in keep if mode_of[i] in modes]
            if rl:
                keep = self._rule_checkable(keep, mode_of, metas)
        self.index = list(keep)

    def _rule_checkable(
        self, keep: list[int] | range, mode_of: list[str | None], metas: list[object]
    ) -> list[int]:
        """``keep`` without caption rows, rows without a valid reward spec and video rows;
        one skip line per reason with its count."""
        out: list[int] = []
        caption = no_spec = video = 0
        for i in keep:
            if mode_of[i] is None:
                no_spec += 1
            elif mode_of[i] == "caption":
                caption += 1
            elif "video_fps" in _meta(metas[i]):
                video += 1
            else:
                out.append(i)
        if caption:
            self.skip("caption", f"{caption} sample(s) in the caption mode (not rule-checkable)")
        if video:
            self.skip("video", f"{video} video sample(s) (GRPO rollouts take images only)")
        if no_spec:
            self.skip("reward", f"{no_spec} sample(s) without a valid reward spec")
        return out

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
            if row.get("reward") is not None:
                try:
                    info["reward"] = load_reward_spec(row["reward"])
                except ValueError as exc:
                    if self.rl:
                        raise ValueError(f"reward: {exc}") from None
            request = sample_chat(row)
            if request.videos:
                info["video_fps"] = request.videos[0].fps
            return TrainExample(
                sid, self.name, request.messages, request.images, request.videos, info
            )
        except ValueError as exc:
            reason = str(exc).removeprefix(f"sample {sid}: ")
            raise ItemError(sid, f"{shard}: {reason}") from None
