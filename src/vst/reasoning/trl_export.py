"""The RL set in TRL's GRPO form: one Parquet file, one row per prompt.

Columns:

* ``id``, ``task``;
* ``prompt``: the conversational prompt (``list<struct<role, content: list<struct<type,
  text>>>>``, the shards' message form): a system turn with the thinking prompt (none for
  ``det3d`` rows, which GRPO prompts without one, as the release does) and the sample's user
  turn, image items in place;
* ``images``: ``[{"bytes", "path"}]`` (the encoded pictures; ``path`` null), decoded to PIL
  images by ``datasets`` (Hugging Face features in the schema metadata);
* ``reward``: the sample's reward spec as canonical JSON (score with
  :func:`vst.rewards.compute_reward` or the TRL adapter in :mod:`vst.rewards.adapters`).

Written atomically, in row groups of 128.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from vst.atomic import commit, temp_file
from vst.models.prompts import THINK_SYSTEM_PROMPT
from vst.models.samples import prompt_turns
from vst.rewards import load_reward_specs

__all__ = ["TRL_SCHEMA", "export_trl", "trl_row"]

_ITEM = pa.struct([("type", pa.string()), ("text", pa.string())])
_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.list_(_ITEM))])
_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
_V = {"dtype": "string", "_type": "Value"}
_FEATURES = {
    "id": _V,
    "task": _V,
    "prompt": [{"role": _V, "content": [{"type": _V, "text": _V}]}],
    "images": [{"_type": "Image"}],
    "reward": _V,
}
TRL_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("task", pa.string()),
        ("prompt", pa.list_(_MESSAGE)),
        ("images", pa.list_(_IMAGE)),
        ("reward", pa.string()),
    ],
    metadata={"huggingface": json.dumps({"info": {"features": _FEATURES}}, sort_keys=True)},
)
"""Arrow schema of the TRL GRPO file (``datasets`` features in its metadata)."""


def trl_row(row: dict[str, Any]) -> dict[str, Any]:
    """The TRL GRPO row of an RL set shard row."""
    specs = load_reward_specs(row["reward"])
    turns = [
        {
            "role": m["role"],
            "content": [{"type": c["type"], "text": c.get("text")} for c in m["content"]],
        }
        for m in prompt_turns(row["messages"])
    ]
    if not any(s["mode"] == "det3d" for s in specs) and turns and turns[0]["role"] != "system":
        turns.insert(
            0, {"role": "system", "content": [{"type": "text", "text": THINK_SYSTEM_PROMPT}]}
        )
    return {
        "id": row["id"],
        "task": row["task"],
        "prompt": turns,
        "images": [{"bytes": im["bytes"], "path": None} for im in row.get("images") or []],
        "reward": row["reward"],
    }


def export_trl(rows: Iterable[dict[str, Any]], path: Path, batch: int = 128) -> int:
    """Write the TRL GRPO form of ``rows`` (RL set shard rows) to ``path``; the row count."""
    tmp = temp_file(path)
    n = 0
    try:
        writer = pq.ParquetWriter(str(tmp), TRL_SCHEMA, compression="zstd")
        buffer: list[dict[str, Any]] = []
        for row in rows:
            buffer.append(trl_row(row))
            if len(buffer) >= batch:
                writer.write_table(pa.Table.from_pylist(buffer, schema=TRL_SCHEMA))
                n, buffer = n + len(buffer), []
        if buffer or n == 0:
            writer.write_table(pa.Table.from_pylist(buffer, schema=TRL_SCHEMA))
            n += len(buffer)
        writer.close()
        commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n
