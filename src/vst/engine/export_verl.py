"""vst shards -> RL Parquet in the VST release's form (``vst data export --format verl``), for
EasyR1 / verl and the release's own RL trainer.

Columns, in the release's order (VST-RELEASE.md §1), plus ``data_source``:

* ``id``: the sample id;
* ``images``: ``[{"bytes", "path"}]``, the encoded pictures as the shard stores them (``path`` =
  ``<id>_<k>.<ext>``, a name only);
* ``question``: the prompt's user turn, each image item an ``<|image_pad|>`` in place, items
  joined with newlines (the release's reader strips the text around flags). The sample's
  system prompt is not in it (the RL trainer adds its own: EasyR1's think prompt);
* ``answer``: the ground truth as the release reads it (:func:`vst.rewards.release.
  release_answer`: the option label for ``mcq``, the number for ``numeric``, the ```json box
  list for ``det3d``, the items joined with ``", "`` for ``order``);
* ``meta_info``: a JSON string ``{"mode": [release mode], "reward": <the sample's full vst
  spec>, "task": <task>}``; ``mode`` drives the release's reward function, ``reward`` lets vst
  (``kind: vst_release_rl``) and vst's EasyR1 / verl adapters
  (:mod:`vst.rewards.adapters`) score exactly as vst scores the sample (e.g. ``numeric`` by
  MRA, where the release's ``relaxed_score`` is a 5% pass/fail);
* ``data_source``: the task.

Samples the form cannot carry are skipped with the reason: ``caption`` mode (not
rule-checkable), videos (the release's RL reader takes images), a prompt with earlier assistant
turns or several user turns (the form holds one question), a custom system prompt (the form has
no system field; the plain and think prompts are dropped, the trainer adds its own), no reward.

One output file per input shard with rows (``<shard stem>.parquet``, written atomically, row
groups of 100), as :func:`vst.engine.export_release.export_shards` writes them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa

from vst.engine.export_release import IMAGE_FLAG, ExportResult, export_shards
from vst.engine.writer import image_extension
from vst.models.prompts import PLAIN_SYSTEM_PROMPT, THINK_SYSTEM_PROMPT
from vst.models.samples import prompt_turns
from vst.rewards import load_reward_spec
from vst.rewards.release import release_answer, release_mode

__all__ = ["VERL_COLUMNS", "VERL_SCHEMA", "export_verl", "verl_row"]

VERL_COLUMNS = ("id", "images", "question", "answer", "meta_info", "data_source")

VERL_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))),
        ("question", pa.string()),
        ("answer", pa.string()),
        ("meta_info", pa.string()),
        ("data_source", pa.string()),
    ]
)
"""Arrow schema of an RL shard in the release's form (``data_source`` last)."""


def _question(messages: list[dict[str, Any]]) -> str:
    """The one user turn of a prompt as release text; ValueError for what it cannot hold."""
    turns = prompt_turns(messages)
    if turns and turns[0]["role"] == "system":
        text = "".join(c.get("text") or "" for c in turns[0]["content"] if c["type"] == "text")
        if text not in (PLAIN_SYSTEM_PROMPT, THINK_SYSTEM_PROMPT):
            raise ValueError("a custom system prompt (the RL form has no system field)")
        turns = turns[1:]
    if any(t["role"] == "assistant" for t in turns):
        raise ValueError("a multi-turn prompt with earlier assistant turns (one question only)")
    if len(turns) != 1:
        raise ValueError(f"{len(turns)} user turns in the prompt (one question only)")
    parts = []
    for item in turns[0]["content"]:
        if item["type"] == "image":
            parts.append(IMAGE_FLAG)
        elif item["type"] == "text":
            parts.append(item.get("text") or "")
        else:
            raise ValueError(f"a {item['type']} item (the RL form carries images only)")
    return "\n".join(parts)


def verl_row(row: dict[str, Any]) -> dict[str, Any]:
    """The RL row of a shard row; ValueError naming the reason when the form cannot carry it
    (see the module docstring)."""
    if row.get("videos"):
        raise ValueError("a video (the RL form carries images only)")
    if row.get("reward") is None:
        raise ValueError("no reward spec")
    spec = load_reward_spec(row["reward"])
    if spec["mode"] == "caption":
        raise ValueError("caption mode (not rule-checkable)")
    question = _question(row["messages"])
    sid, task = row["id"], row.get("task") or "vst"
    images = [
        {"bytes": im["bytes"], "path": f"{sid}_{k}.{image_extension(im['bytes'])}"}
        for k, im in enumerate(row.get("images") or [])
    ]
    if question.count(IMAGE_FLAG) != len(images):
        raise ValueError(f"{question.count(IMAGE_FLAG)} image items for {len(images)} images")
    meta_info = {"mode": [release_mode(spec)], "reward": spec, "task": task}
    return {
        "id": sid,
        "images": images,
        "question": question,
        "answer": release_answer(spec),
        "meta_info": json.dumps(meta_info, ensure_ascii=False),
        "data_source": task,
    }


def export_verl(shards: Iterable[Path], out: Path) -> ExportResult:
    """Write the RL form of every rule-checkable sample of ``shards`` into ``out`` (see the
    module docstring); the others, and shards that cannot be read, are skipped and listed.
    Errors writing ``out`` propagate (``OSError``)."""
    return export_shards(shards, out, verl_row, VERL_SCHEMA)
