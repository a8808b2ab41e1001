"""STAND-INS, used only while ``vst.train.data`` and ``vst.train.collate`` do not exist.

Issue 13 is built in parallel: engineer "data" writes ``vst.train.data`` (``source_from_dict``,
``load_source``, ``mix``) and engineer "pack" writes ``vst.train.collate.VLMCollator``. Until
they land, :mod:`vst.train.trainer` falls back to these minimal versions with the same
signatures, so the trainer, its CLI and its tests run. DELETE THIS MODULE once both exist.

* data: only ``kind: vst`` (engine shards: the prompt via :func:`vst.models.samples.
  sample_request` plus the chat's final assistant turn, else the sample's ``answer``), with
  ``path``, ``weight`` and ``limit``; :func:`mix` takes ``round(weight x n)`` examples of each
  source (repeating when the weight is above 1) and shuffles them with the seed;
* collator: right-padded rows (no packing), labels on every assistant turn's tokens after its
  ``<|im_start|>assistant\\n`` header up to and including ``<|im_end|>``; an example longer than
  ``max_length`` is skipped and counted.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vst.models.processor import model_inputs
from vst.models.prompts import with_system
from vst.models.vision import PixelLimits
from vst.train.examples import TrainExample

__all__ = ["MixReport", "PaddedCollator", "VstShards", "load_source", "mix", "source_from_dict"]


@dataclass(frozen=True)
class VstShards:
    """A folder of vst engine shards (stand-in data source)."""

    path: Path
    weight: float = 1.0
    limit: int | None = None
    name: str = "vst"


def source_from_dict(d: Any, where: str) -> VstShards:
    """A data source from its config dict; ``ValueError`` naming ``where`` and the field."""
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a mapping")
    extra = sorted(set(d) - {"kind", "path", "weight", "limit", "name"})
    if extra:
        raise ValueError(f"{where}: {extra[0]}: unknown field")
    if d.get("kind") != "vst":
        raise ValueError(f"{where}: kind: {d.get('kind')!r} is not supported (stand-in: vst)")
    path = d.get("path")
    if not isinstance(path, str) or not path:
        raise ValueError(f"{where}: path: must be a folder path, got {path!r}")
    weight = d.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
        raise ValueError(f"{where}: weight: must be a positive number, got {weight!r}")
    limit = d.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"{where}: limit: must be a positive integer, got {limit!r}")
    return VstShards(Path(path), float(weight), limit, str(d.get("name", f"vst:{path}")))


def load_source(src: VstShards) -> Iterator[TrainExample]:
    """The examples of a stand-in source, shard by shard, row by row."""
    from vst.engine.writer import iter_rows, list_shards
    from vst.models.samples import sample_request

    if not src.path.is_dir():
        raise ValueError(f"data source {src.name}: {src.path} does not exist")
    n = 0
    for shard in list_shards(src.path):
        for row in iter_rows(shard):
            if src.limit is not None and n >= src.limit:
                return
            s = sample_request(row, where=str(shard))
            final = row["messages"][-1] if row.get("messages") else None
            if isinstance(final, dict) and final.get("role") == "assistant":
                answer = final["content"]
            else:
                answer = s.answer
            messages = [*s.request.messages, {"role": "assistant", "content": answer}]
            yield TrainExample(
                s.id, src.name, messages, s.request.images, s.request.videos, {"task": s.task}
            )
            n += 1


@dataclass
class MixReport:
    """Examples drawn per source."""

    drawn: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)


def mix(
    sources: list[VstShards], weights: list[float], seed: int, total: int | None = None
) -> tuple[list[TrainExample], MixReport]:
    """``round(weight x n)`` examples of each source (cycled), shuffled with ``seed``."""
    out: list[TrainExample] = []
    report = MixReport()
    for src, w in zip(sources, weights, strict=True):
        pool = list(load_source(src))
        k = round(w * len(pool))
        picked = [pool[i % len(pool)] for i in range(k)] if pool else []
        report.drawn[src.name] = len(picked)
        out.extend(picked)
    random.Random(seed).shuffle(out)
    return (out[:total] if total is not None else out), report


class PaddedCollator:
    """Stand-in for ``vst.train.collate.VLMCollator`` (padding only; see the module
    docstring). Same constructor and output keys, incl. ``vst_stats``."""

    def __init__(
        self,
        processor: Any,
        *,
        max_length: int = 16384,
        packing: bool = True,
        system: str | None = None,
        limits: PixelLimits | None = None,
        rope_index: Any = None,
    ) -> None:
        self.processor = processor
        self.max_length = max_length
        self.system = system
        self.limits = limits or PixelLimits()
        tok = processor.tokenizer
        self._header = tok("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
        self._end = tok.convert_tokens_to_ids("<|im_end|>")
        self._pad = tok.pad_token_id

    def _labels(self, ids: list[int]) -> list[int]:
        out, inside, h = [-100] * len(ids), False, len(self._header)
        i = 0
        while i < len(ids):
            if not inside and ids[i : i + h] == self._header:
                inside, i = True, i + h
                continue
            if inside:
                out[i] = ids[i]
                inside = ids[i] != self._end
            i += 1
        return out

    def __call__(self, examples: list[TrainExample]) -> dict[str, Any]:
        from vst.models.requests import Request

        requests = [
            Request(with_system(e.messages, self.system), e.images, e.videos, id=e.id)
            for e in examples
        ]
        kept, skipped = [], 0
        for r in requests:
            n = model_inputs(self.processor, [r], self.limits, False, "right")["input_ids"].shape[1]
            if n > self.max_length:
                skipped += 1
            else:
                kept.append(r)
        if not kept:
            raise ValueError("every example of the batch is longer than max_length")
        batch = dict(model_inputs(self.processor, kept, self.limits, False, "right"))
        mask = batch["attention_mask"]
        labels = torch.tensor([self._labels(row.tolist()) for row in batch["input_ids"]])
        batch["labels"] = labels.masked_fill(mask == 0, -100)
        batch["vst_stats"] = {
            "real_tokens": int(mask.sum()),
            "total_tokens": int(mask.numel()),
            "label_tokens": int((batch["labels"] != -100).sum()),
            "samples": len(kept),
            "skipped_too_long": skipped,
        }
        return batch
