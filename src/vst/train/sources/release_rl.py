"""``kind: vst_release_rl``: the VST release's RL Parquet (VST-R rule data, VST-RELEASE.md §1),
as written by its converter and by ``vst data export --format verl``.

Columns ``id``, ``images`` (``[{"bytes", "path"}]``), ``question``, ``answer`` (str),
``meta_info`` (a JSON string: ``mode``, a list of release reward modes, optional
``question_type``; vst's export adds ``reward``, the exact vst spec), optional ``data_source``.
As the release reads them:

* the question's ``<|image_pad|>`` flags are the images, in order; a question without any flag
  gets the images first (the release prepends one flag per image); a flag count that differs
  from the image count is a skipped row (the release asserts it);
* the example is ``[user: question, assistant: answer]``: the RL prompt is everything before
  the answer (:func:`vst.models.samples.prompt_turns`). No system turn: the run adds its prompt
  (thinking for every row except 3D detection ones, which have ``meta["det3d"] = True``);
* ``meta["reward"]``: the vst spec, or a list of specs meaning "any of"
  (:func:`vst.rewards.compute_reward`): ``meta_info["reward"]`` when present (vst's export:
  scored exactly as vst scores the sample), else the specs of the release modes
  (:func:`vst.rewards.release.release_reward`, the release's exact step included).
  ``meta["modes"]``: the release mode names; ``meta["task"]``: ``data_source`` or
  ``"vst_release_rl"``; ``meta["question_type"]`` when given; ``meta["unscored_modes"]`` lists
  modes left out because they cannot read the answer (another mode scores the row).

Rows that cannot be used are skipped with their id and reason: while indexing (text columns
only) for no question, no answer, an unknown or unusable mode; while loading for bad image
bytes or a flag count that differs from the images. A path is a Parquet file or a folder
searched recursively for ``*.parquet``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vst.engine.export_release import IMAGE_FLAG
from vst.rewards import accuracy_reward, load_reward_specs
from vst.rewards.release import release_reward
from vst.train.examples import TrainExample
from vst.train.sources.base import ItemError, Source, one_line
from vst.train.sources.chat import place_media
from vst.train.sources.media import decode_picture, entry_bytes, picture_entries
from vst.train.sources.rows import ParquetRows, parquet_files

__all__ = ["ReleaseRLParquet", "row_reward"]

TASK = "vst_release_rl"


def _meta_info(value: Any) -> dict[str, Any]:
    """``meta_info`` as a dict (a JSON string, or a dict); ValueError otherwise."""
    try:
        data = json.loads(value) if isinstance(value, str | bytes) else value
    except (ValueError, RecursionError):
        raise ValueError("meta_info is not valid JSON") from None
    if not isinstance(data, Mapping):
        raise ValueError("meta_info is not a JSON object")
    return dict(data)


def row_reward(answer: Any, meta_info: Any) -> tuple[Any, dict[str, Any]]:
    """The reward of a release RL row (a spec dict, or a list meaning "any of") and the meta
    it adds (``modes``, ``det3d``, ``question_type``, ``unscored_modes``); ValueError naming
    the field on anything unusable."""
    info = _meta_info(meta_info)
    modes = info.get("mode")
    if isinstance(modes, str):
        modes = [modes]
    if not isinstance(modes, list) or not modes or not all(isinstance(m, str) for m in modes):
        raise ValueError(f"meta_info.mode is not a non-empty list of mode names: {modes!r}")
    if not isinstance(answer, str) or not answer.strip():
        raise ValueError("no answer")
    meta: dict[str, Any] = {"modes": modes}
    if info.get("reward") is not None:
        try:
            specs = load_reward_specs(info["reward"])
            accuracy_reward("", specs)  # a ground truth its mode cannot read raises here
        except ValueError as exc:
            raise ValueError(f"meta_info.reward: {exc}") from None
    else:
        specs, dropped = release_reward(modes, answer)
        if dropped:
            meta["unscored_modes"] = dropped
    if any(s["mode"] == "det3d" for s in specs):
        meta["det3d"] = True
    if isinstance(info.get("question_type"), str):
        meta["question_type"] = info["question_type"]
    return (specs[0] if len(specs) == 1 else specs), meta


class ReleaseRLParquet(Source):
    """Rows of the release's RL Parquet files (see the module docstring)."""

    kind = "vst_release_rl"

    def __init__(self, name: str, path: Path):
        super().__init__(name, None)
        files = parquet_files(path)
        if not files:
            raise ValueError(f"{path}: no Parquet files")
        columns = ["id", "images", "question", "answer", "meta_info", "data_source"]
        self.rows = ParquetRows(files, columns, required=("question", "answer", "meta_info"))
        for file, reason in self.rows.bad:
            self.skip(file.name, f"{file}: {reason}")
        self.index: list[int] = []
        self._meta: list[dict[str, Any]] = []
        texts = {c: self.rows.column(c) for c in ("question", "answer", "meta_info")}
        ids = self.rows.column("id", optional=True)
        sources = self.rows.column("data_source", optional=True)
        for i in range(len(self.rows)):
            file, r = self.rows.locate(i)
            sid = str(ids[i]) if ids[i] not in (None, "") else f"{file.name}:{r}"
            try:
                question = texts["question"][i]
                if not isinstance(question, str) or not question.strip():
                    raise ValueError("no question")
                reward, meta = row_reward(texts["answer"][i], texts["meta_info"][i])
            except ValueError as exc:
                self.skip(sid, f"{file} row {r}: {one_line(exc)}")
                continue
            task = sources[i] if isinstance(sources[i], str) and sources[i] else TASK
            self.index.append(i)
            self._meta.append({"task": task, "reward": reward, **meta, "file": file.name})

    def __len__(self) -> int:
        return len(self.index)

    def _load(self, i: int) -> TrainExample:
        g = self.index[i]
        file, r = self.rows.locate(g)
        sid = f"{file.name}:{r}"
        try:
            row = self.rows.row(g)
            sid = str(row["id"]) if row.get("id") not in (None, "") else sid
            images = tuple(
                decode_picture(entry_bytes(e, f"image {k}"), f"image {k}")
                for k, e in enumerate(picture_entries(row.get("images")))
            )
            turns = [("user", row["question"]), ("assistant", row["answer"])]
            messages = place_media(turns, {"image": IMAGE_FLAG}, {"image": len(images)})
            return TrainExample(sid, self.name, messages, images, (), dict(self._meta[i]))
        except (ValueError, TypeError) as exc:  # untrusted cells of any type
            raise ItemError(sid, f"{file} row {r}: {one_line(exc)}") from None
