"""Chain-of-thought samples and their shards (shared by the teacher pipeline and offline CoT).

A CoT sample (:func:`cot_sample`) is the original VST-P sample with the thinking system prompt
first, the original user turn (or the same turn with a revised question text) and the answer
``"<think>{reasoning}</think> {answer}"``; ``meta`` is the original meta plus ``"cot"``:
``{"source": "teacher"|"offline", "kind": "num"|"rt"|"rt_bev", "teacher": model or None,
"prompt_version": 12 hex, "attempts": int, "tokens": {"prompt": n, "completion": n},
"parent_id": the original sample id}``. The sample's own reward checker must give the answer
accuracy 1.0 and format 1.0, else ``ValueError`` naming the sample.

:class:`CotShardWriter` writes such samples ``shard_size`` at a time to ``<out>/data/`` with
:func:`vst.engine.writer.write_shard` (atomic; names ``shard-<index>-<hash of the sample ids>``,
so the same samples give the same files) and resumes: the ``(parent_id, kind)`` pairs already
in ``<out>/data/`` are :meth:`CotShardWriter.is_done`, new shards continue the numbering. The
folder is a ``kind: vst`` training source with ``system: think``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vst.engine.imaging import decode_image
from vst.engine.sample import Sample, assistant
from vst.engine.writer import (
    ShardInfo,
    image_extension,
    iter_rows,
    list_shards,
    parse_shard_name,
    shard_name,
    write_shard,
)
from vst.models.prompts import THINK_SYSTEM_PROMPT
from vst.reasoning.facts import SampleFacts
from vst.rewards import compute_reward, load_reward_spec

__all__ = [
    "COT_KINDS",
    "COT_SOURCES",
    "CotShardWriter",
    "cot_sample",
    "cot_text",
    "prompt_version",
    "row_image_format",
]

COT_KINDS = ("num", "rt", "rt_bev")
COT_SOURCES = ("teacher", "offline")
_HEX12 = re.compile(r"^[0-9a-f]{12}$")


def prompt_version(*parts: str) -> str:
    """12-hex hash of a prompt's defining texts (its version in the provenance)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:12]


def cot_text(reasoning: str, answer: str) -> str:
    """The assistant text ``"<think>{reasoning}</think> {answer}"``."""
    return f"<think>{reasoning}</think> {answer}"


def row_image_format(row: Mapping[str, Any]) -> str:
    """``"PNG"`` when a row's first picture is stored as PNG, else ``"JPEG"``."""
    images = row.get("images") or []
    data = images[0].get("bytes") if images and isinstance(images[0], Mapping) else None
    return "PNG" if data and image_extension(data) == "png" else "JPEG"


def _json(value: Any, what: str, sid: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError(f"sample {sid}: {what} is not valid JSON") from None
    return value


def _original(source: SampleFacts | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(id, parts)`` of the original sample: task, scenario, turns (without the system turn
    and the last answer), images, videos, reward, meta."""
    if isinstance(source, SampleFacts):
        n = len(source.images)
        labelled = n > 1 and source.meta.get("layout", 1) != 0
        items: list[Any] = []
        for k, img in enumerate(source.images):
            items += [f"Image {k + 1}:", img] if labelled else [img]
        content = [
            {"type": "text", "text": x} if isinstance(x, str) else {"type": "image"} for x in items
        ]
        content.append({"type": "text", "text": source.question})
        return source.id, {
            "task": source.task,
            "scenario": "multi_image" if n > 1 else "single_image",
            "turns": [{"role": "user", "content": content}],
            "images": list(source.images),
            "videos": [],
            "reward": source.reward,
            "meta": dict(source.meta),
        }
    sid = str(source.get("id") or "?")
    messages = list(source.get("messages") or [])
    if not messages or messages[-1].get("role") != "assistant":
        raise ValueError(f"sample {sid}: the last turn is not an assistant answer")
    turns = []
    for m in messages[:-1]:
        if m.get("role") == "system":
            continue
        content = []
        for c in m.get("content") or []:
            kind = c.get("type") or "text"
            content.append(
                {"type": kind, "text": c.get("text")} if kind == "text" else {"type": kind}
            )
        turns.append({"role": m["role"], "content": content})
    try:
        images = [decode_image(im["bytes"]) for im in source.get("images") or []]
        videos = [[decode_image(f["bytes"]) for f in v] for v in source.get("videos") or []]
    except (OSError, KeyError, TypeError) as exc:
        raise ValueError(f"sample {sid}: a picture cannot be decoded ({exc})") from None
    meta = _json(source.get("meta") or {}, "meta", sid)
    return sid, {
        "task": str(source.get("task") or ""),
        "scenario": source.get("scenario") or "multi_image",
        "turns": turns,
        "images": images,
        "videos": videos,
        "reward": load_reward_spec(source["reward"]),
        "meta": meta if isinstance(meta, dict) else {},
    }


_PROVENANCE_KEYS = (
    "source",
    "kind",
    "teacher",
    "prompt_version",
    "attempts",
    "tokens",
    "parent_id",
)


def _provenance(p: Mapping[str, Any], sid: str) -> dict[str, Any]:
    """The ``cot`` record (module docstring), checked; defaults: teacher None, attempts 1,
    no tokens; other keys (a teacher run's rewrite fields) are kept as given."""
    source, kind, version = p.get("source"), p.get("kind"), p.get("prompt_version")
    if source not in COT_SOURCES:
        raise ValueError(f"sample {sid}: provenance source {source!r} is not one of {COT_SOURCES}")
    if kind not in COT_KINDS:
        raise ValueError(f"sample {sid}: provenance kind {kind!r} is not one of {COT_KINDS}")
    if not isinstance(version, str) or not _HEX12.match(version):
        raise ValueError(f"sample {sid}: provenance prompt_version {version!r} is not 12 hex")
    teacher = p.get("teacher")
    attempts = p.get("attempts", 1)
    tokens = p.get("tokens") or {}
    if teacher is not None and not isinstance(teacher, str):
        raise ValueError(f"sample {sid}: provenance teacher must be a model name or null")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValueError(f"sample {sid}: provenance attempts must be a positive integer")
    tok = {k: tokens.get(k, 0) for k in ("prompt", "completion")}
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in tok.values()):
        raise ValueError(f"sample {sid}: provenance tokens must be non-negative integers")
    extra = {k: v for k, v in p.items() if k not in _PROVENANCE_KEYS}  # e.g. a rewrite's
    return {
        "source": source,
        "kind": kind,
        "teacher": teacher,
        "prompt_version": version,
        "attempts": attempts,
        "tokens": tok,
        "parent_id": sid,
        **extra,
    }


def cot_sample(
    source: SampleFacts | Mapping[str, Any],
    reasoning: str,
    answer: str,
    provenance: Mapping[str, Any],
    *,
    question: str | None = None,
) -> Sample:
    """The CoT sample of ``source`` (a shard row, or its :class:`SampleFacts`; a row keeps its
    user turn exactly, facts rebuild it as labelled images then the question) with
    ``reasoning`` and ``answer`` (module docstring). ``question`` replaces the last text item
    of the last user turn (a teacher's revised question; the image items stay). ``ValueError``
    naming the sample when the answer does not score accuracy 1 and format 1, the reasoning
    holds think tags or the provenance is malformed."""
    sid, orig = _original(source)
    reasoning, answer = (reasoning or "").strip(), (answer or "").strip()
    if not reasoning or not answer:
        raise ValueError(f"sample {sid}: empty reasoning or answer")
    if "<think>" in reasoning or "</think>" in reasoning:
        raise ValueError(f"sample {sid}: the reasoning holds think tags")
    cot = _provenance(provenance, sid)
    text = cot_text(reasoning, answer)
    score = compute_reward(text, orig["reward"])
    if score["accuracy"] != 1.0 or score["format"] != 1.0:
        raise ValueError(
            f"sample {sid}: answer {answer[:80]!r} scores accuracy {score['accuracy']} and "
            f"format {score['format']} against its reward spec"
        )
    turns = [dict(t, content=list(t["content"])) for t in orig["turns"]]
    if question is not None:
        users = [t for t in turns if t["role"] == "user"]
        texts = (
            [i for i, c in enumerate(users[-1]["content"]) if c["type"] == "text"] if users else []
        )
        if not texts or not question.strip():
            raise ValueError(f"sample {sid}: no question text to replace (or an empty one)")
        users[-1]["content"][texts[-1]] = {"type": "text", "text": question.strip()}
    system = {"role": "system", "content": [{"type": "text", "text": THINK_SYSTEM_PROMPT}]}
    return Sample(
        task=orig["task"],
        scenario=orig["scenario"],
        messages=[system, *turns, assistant(text)],
        images=orig["images"],
        videos=orig["videos"],
        answer=answer,
        reward=orig["reward"],
        meta={**orig["meta"], "cot": cot},
    )


class CotShardWriter:
    """Resumable writer of CoT samples into ``<out_dir>/data/`` (module docstring).

    ``add(sample)`` buffers and writes a shard every ``shard_size`` samples; ``close()`` (or
    leaving a ``with`` block, also on an error) writes the rest. ``written`` lists this
    session's shards; ``done`` holds the ``(parent_id, kind)`` pairs already on disk."""

    def __init__(
        self,
        out_dir: str | Path,
        *,
        shard_size: int = 256,
        image_format: str = "JPEG",
        quality: int = 95,
    ):
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        if image_format not in ("JPEG", "PNG"):
            raise ValueError(f"image_format must be JPEG or PNG, got {image_format!r}")
        self.data_dir = Path(out_dir) / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.shard_size, self.image_format, self.quality = shard_size, image_format, quality
        self.done: set[tuple[str, str]] = set()
        self._next = 0
        for path in list_shards(self.data_dir):
            parsed = parse_shard_name(path.name)
            self._next = max(self._next, (parsed[0] + 1) if parsed else 0)
            try:
                for row in iter_rows(path, columns=["meta"]):
                    cot = (json.loads(row["meta"]) or {}).get("cot") or {}
                    if cot.get("parent_id"):
                        self.done.add((str(cot["parent_id"]), str(cot.get("kind"))))
            except (OSError, ValueError) as exc:
                raise ValueError(f"{path}: cannot read this CoT shard ({exc})") from None
        self._buffer: list[Sample] = []
        self.written: list[ShardInfo] = []

    def is_done(self, parent_id: str, kind: str) -> bool:
        """Whether a CoT of ``kind`` for sample ``parent_id`` is already written or buffered."""
        return (parent_id, kind) in self.done

    def add(self, sample: Sample) -> ShardInfo | None:
        """Buffer ``sample`` (a :func:`cot_sample`); the shard written when the buffer is full."""
        cot = sample.meta.get("cot") or {}
        if not cot.get("parent_id"):
            raise ValueError(f"sample {sample.id}: not a CoT sample (no meta cot.parent_id)")
        self.done.add((str(cot["parent_id"]), str(cot.get("kind"))))
        self._buffer.append(sample)
        return self.flush() if len(self._buffer) >= self.shard_size else None

    def flush(self) -> ShardInfo | None:
        """Write the buffered samples as one shard (None when there are none)."""
        if not self._buffer:
            return None
        key = hashlib.sha256("\n".join(s.id for s in self._buffer).encode()).hexdigest()
        path = self.data_dir / shard_name(self._next, key)
        info = write_shard(
            path,
            self._buffer,
            self.image_format,
            self.quality,
            meta={"kind": "cot", "samples": len(self._buffer)},
        )
        self._next += 1
        self._buffer = []
        self.written.append(info)
        return info

    def close(self) -> list[ShardInfo]:
        """Write what is buffered; the shards written in this session."""
        self.flush()
        return list(self.written)

    def __enter__(self) -> CotShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
