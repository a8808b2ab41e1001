"""VLA training examples: the release's LIBERO parquet (``vst vla convert``) as a training source,
and a held-out split by episode.

One row -> one example, the release's sample (VST-RELEASE.md §4): a user turn ``[image,
"What action should the robot take to {instruction}?"]`` with no system turn, and an assistant
turn of D action tokens, one per dimension of the row's normalised action (``meta_info.action``,
in [-1, 1]; values outside are clipped, so the release's -3 gripper lands on -1). The targets
are written with the added vocabulary's token strings ``<|action_b|>``; a run on the "last"
vocabulary swaps their ids for the last ids of the base vocabulary after tokenisation
(:class:`vst.vla.train.ActionCollator`), so both vocabularies train on exactly one token per
dimension. The image is stored already rotated 180° (the conversion did it).

``meta`` of an example: ``episode`` (``{data_source}/{episode_id}``), ``step``, ``instruction``,
``action`` (the normalised action as a list, clipped to [-1, 1]), ``action_unnorm`` (the raw
action when the row has it), ``file``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vst.train.examples import TrainExample
from vst.train.sources.base import ItemError, Source
from vst.train.sources.media import decode_picture, entry_bytes, picture_entries
from vst.train.sources.rows import ParquetRows, ParquetRowSource, parquet_files
from vst.vla.action_tokens import ActionTokenizer, action_token
from vst.vla.convert import prompt_for

__all__ = ["EpisodeSplit", "LiberoParquetSource", "SubsetSource", "action_text", "split_episodes"]


def action_text(action: Any, bins: int = 256) -> str:
    """The target text of a normalised action: one ``<|action_b|>`` per dimension (b its bin
    of ``bins`` uniform bins on [-1, 1], clipped)."""
    return "".join(action_token(int(b)) for b in ActionTokenizer(bins=bins).bin_indices(action))


def _meta_info(value: Any) -> Mapping[str, Any]:
    data = json.loads(value) if isinstance(value, str | bytes) else value
    if not isinstance(data, Mapping):
        raise ValueError("meta_info: expected a mapping")
    return data


class LiberoParquetSource(ParquetRowSource):
    """Rows of LIBERO parquet shards (``id``, ``images``, ``meta_info`` with ``action``,
    ``language_instruction``, ``episode_id``, ``step``, ``data_source``) as VLA examples; ``dim``:
    the action dimension every row must have (7 for LIBERO)."""

    kind = "vla_libero"

    def __init__(self, name: str, path: Path, bins: int = 256, dim: int = 7) -> None:
        super().__init__(name, None)
        files = [p for p in parquet_files(Path(path)) if p.name != "norm_stats.json"]
        if not files:
            raise ValueError(f"{path}: no Parquet files")
        self.rows = ParquetRows(files, columns=["id", "images", "meta_info"], required=("images",))
        for file, reason in self.rows.bad:
            self.skip(file.name, f"{file}: {reason}")
        self.bins = bins
        self.dim = dim
        self._episodes: list[str] | None = None

    def episodes(self) -> list[str]:
        """The episode key of every row, in order (``{data_source}/{episode_id}``; a row whose
        ``meta_info`` cannot be read gets ``?{file}:{row}``, so it splits alone)."""
        if self._episodes is None:
            keys = []
            for i, value in enumerate(self.rows.column("meta_info", optional=True)):
                try:
                    info = _meta_info(value)
                    keys.append(f"{info.get('data_source', '')}/{info['episode_id']}")
                except (ValueError, KeyError, TypeError):
                    file, r = self.rows.locate(i)
                    keys.append(f"?{file.name}:{r}")
            self._episodes = keys
        return self._episodes

    def _example(self, sid: str, row: dict[str, Any], file: Path) -> TrainExample:
        info = _meta_info(row.get("meta_info"))
        action = info.get("action")
        if action is None:
            raise ValueError("meta_info.action: missing (convert with normalisation statistics)")
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (self.dim,) or not np.isfinite(a).all():
            raise ValueError(f"meta_info.action: expected {self.dim} finite numbers, got {action}")
        instruction = info.get("language_instruction")
        if not isinstance(instruction, str) or not instruction.strip():
            raise ValueError("meta_info.language_instruction: missing or empty")
        entries = picture_entries(row.get("images"))
        if len(entries) != 1:
            raise ValueError(f"images: expected one image, got {len(entries)}")
        image = decode_picture(entry_bytes(entries[0], "image 0"), "image 0")
        messages = [
            {
                "role": "user",
                "content": [{"type": "image"}, {"type": "text", "text": prompt_for(instruction)}],
            },
            {"role": "assistant", "content": [{"type": "text", "text": action_text(a, self.bins)}]},
        ]
        meta = {
            "episode": f"{info.get('data_source', '')}/{info.get('episode_id')}",
            "step": info.get("step"),
            "instruction": instruction,
            "action": np.clip(a, -1.0, 1.0).tolist(),
            "action_unnorm": info.get("action_unnorm"),
            "file": file.name,
        }
        return TrainExample(sid, self.name, messages, (image,), (), meta)


class SubsetSource(Source):
    """The examples ``indices`` of ``inner`` (in that order) as a source of their own, named
    ``name`` (a held-out split, a train split)."""

    def __init__(self, name: str, inner: Source, indices: Sequence[int]) -> None:
        super().__init__(name, None)
        self.inner = inner
        self.indices = [int(i) for i in indices]

    def __len__(self) -> int:
        return len(self.indices)

    def _load(self, i: int) -> TrainExample:
        ex = self.inner.load(self.indices[i])
        if ex.source == self.name:
            return ex
        return TrainExample(ex.id, self.name, ex.messages, ex.images, ex.videos, ex.meta)


class EpisodeSplit:
    """Row indices of a source split by episode: ``train`` and ``held_out`` (sorted), and the
    held-out episode keys."""

    def __init__(self, train: list[int], held_out: list[int], held_out_episodes: list[str]):
        self.train = train
        self.held_out = held_out
        self.held_out_episodes = held_out_episodes


def split_episodes(episodes: Sequence[str], fraction: float, seed: int) -> EpisodeSplit:
    """Hold out ``round(fraction x episodes)`` whole episodes (at least one when ``fraction > 0``
    and there are two or more; none when ``fraction == 0``), chosen by a seeded permutation of
    the sorted episode keys: the same keys and seed give the same split."""
    if not 0 <= fraction < 1:
        raise ValueError(f"held_out: a fraction in [0, 1), got {fraction}")
    keys = sorted(set(episodes))
    n = round(fraction * len(keys))
    if fraction > 0 and len(keys) >= 2:
        n = min(max(n, 1), len(keys) - 1)
    order = np.random.default_rng(seed).permutation(len(keys))
    held = {keys[k] for k in order[:n]}
    train = [i for i, e in enumerate(episodes) if e not in held]
    held_out = [i for i, e in enumerate(episodes) if e in held]
    if not train:
        raise ItemError("split", "every episode is held out")
    return EpisodeSplit(train, held_out, sorted(held))
