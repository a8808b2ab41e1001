"""Deduplication keys: a sample is the same as another when its normalised question text and the
sha256 of each picture's bytes (in order) are the same.

:func:`row_key` reads a vst shard row (or an RL set row); :func:`sft_keys` collects the keys of
an SFT set: vst runs (shard folders; a CoT sample's ``meta.cot.parent_id`` and every sample id
are collected too, so a sample whose question a teacher rewrote still counts as seen) or the
release's SFT Parquet (``conversations`` + ``images``, a file or a folder).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from vst.engine.writer import iter_rows, list_shards
from vst.reasoning.general import question_key_text
from vst.train.sources.chat import conversation_turns
from vst.train.sources.media import entry_bytes, picture_entries
from vst.train.sources.rows import parquet_files

__all__ = ["SeenSet", "dedup_key", "row_key", "sft_keys"]


def dedup_key(question: str, pictures: Iterable[bytes]) -> str:
    """sha256 (hex) of the normalised question text and each picture's sha256, in order."""
    h = hashlib.sha256(question_key_text(question).encode())
    for data in pictures:
        h.update(b"\0" + hashlib.sha256(data).hexdigest().encode())
    return h.hexdigest()


def _user_text(messages: Any) -> str:
    parts = []
    for m in messages or []:
        if isinstance(m, Mapping) and m.get("role") == "user":
            for c in m.get("content") or []:
                if isinstance(c, Mapping) and c.get("type") == "text" and c.get("text"):
                    parts.append(str(c["text"]))
    return " ".join(parts)


def row_key(row: Mapping[str, Any]) -> str:
    """The key of a shard row: its user turns' text and its image bytes."""
    pictures = [entry_bytes(e, f"image {k}") for k, e in enumerate(row.get("images") or [])]
    return dedup_key(_user_text(row.get("messages")), pictures)


@dataclass
class SeenSet:
    """Keys and sample ids of an SFT set; ``rows`` read, ``bad`` skipped as reasons."""

    keys: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    rows: int = 0
    bad: list[str] = field(default_factory=list)

    def __contains__(self, item: tuple[str, str]) -> bool:
        key, sid = item
        return key in self.keys or sid in self.ids


def _add_vst(seen: SeenSet, folder: Path) -> None:
    for shard in list_shards(folder):
        try:
            for row in iter_rows(shard, columns=["id", "messages", "images", "meta"]):
                seen.rows += 1
                try:
                    seen.keys.add(row_key(row))
                except ValueError as exc:
                    seen.bad.append(f"{shard}: {row.get('id')}: {exc}")
                if isinstance(row.get("id"), str):
                    seen.ids.add(row["id"])
                try:
                    parent = json.loads(row.get("meta") or "{}").get("cot", {}).get("parent_id")
                except (ValueError, AttributeError):
                    parent = None
                if isinstance(parent, str):
                    seen.ids.add(parent)
        except Exception as exc:
            seen.bad.append(f"{shard}: cannot read ({type(exc).__name__}: {exc})")


def _add_release(seen: SeenSet, path: Path) -> None:
    for file in parquet_files(path):
        try:
            pf = pq.ParquetFile(file)
            names = set(pf.schema_arrow.names)
            if "conversations" not in names:
                seen.bad.append(f"{file}: no conversations column (not a release SFT file)")
                continue
            columns = [c for c in ("conversations", "images", "type") if c in names]
            r = 0
            for batch in pf.iter_batches(batch_size=128, columns=columns):
                for row in batch.to_pylist():
                    r += 1
                    seen.rows += 1
                    try:
                        turns = conversation_turns(row.get("conversations"))
                        question = " ".join(t for role, t in turns if role == "user")
                        kind = str(row.get("type") or "")
                        entries = [] if "text" in kind else picture_entries(row.get("images"))
                        pictures = [entry_bytes(e, f"image {k}") for k, e in enumerate(entries)]
                        seen.keys.add(dedup_key(question, pictures))
                    except (ValueError, TypeError) as exc:
                        seen.bad.append(f"{file} row {r}: {exc}")
        except Exception as exc:
            seen.bad.append(f"{file}: cannot read ({type(exc).__name__}: {exc})")


def sft_keys(paths: Iterable[str | Path]) -> SeenSet:
    """The keys of an SFT set made of vst runs and/or release SFT Parquet files/folders (a
    path with vst shards is a vst run; otherwise its ``*.parquet`` files are release SFT).
    ValueError naming a path that holds neither."""
    seen = SeenSet()
    for p in paths:
        path = Path(p)
        if list_shards(path):
            _add_vst(seen, path)
        elif path.exists() and parquet_files(path):
            _add_release(seen, path)
        else:
            raise ValueError(f"{path}: no vst shards and no Parquet files (SFT set)")
    return seen
