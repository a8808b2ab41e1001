"""The training collator: examples -> one ``model(**batch)`` batch, packed or padded.

:class:`VLMCollator` encodes each :class:`~vst.train.examples.TrainExample`
(:func:`vst.train.encode.encode_example`: chat template, fitted pictures, assistant-only labels,
mRoPE positions) and lays the encoded examples out in rows:

* ``packing=True``: rows of several examples (:func:`vst.train.packing.first_fit_decreasing`
  into ``max_length``), all rows right-filled to the longest row with pad tokens. The batch has
  ``position_ids`` ``[4, R, L]`` and no ``attention_mask``: row 0 holds the text positions,
  restarting at 0 for every example and for the pad run at the end of a row (so the pad run is a
  block of its own), rows 1-3 each example's own mRoPE (time, height, width) positions.
  transformers' Qwen2.5-VL builds the attention from row 0: a block-diagonal causal mask on CPU
  (sdpa / eager), flash-attention varlen on GPU; no token attends across an example boundary.
* ``packing=False``: one example per row (input order), right-padded, with ``attention_mask``
  ``[R, L]`` and ``position_ids`` ``[3, R, L]`` (pad positions 0), or no ``position_ids`` (the
  model computes them) when no ``rope_index`` was given.

Either way: ``input_ids`` and ``labels`` ``[R, L]`` (-100 off-target), ``mm_token_type_ids``
``[R, L]``, the pictures' ``pixel_values`` / ``image_grid_thw`` and ``pixel_values_videos`` /
``video_grid_thw`` / ``second_per_grid_ts`` when present, concatenated in the order their pad
tokens appear in the rows (row by row), ``use_cache=False`` (with a KV cache, transformers
ignores packed position ids and lets examples attend to each other), and ``vst_stats`` (plain
ints; the trainer pops it before the forward): ``real_tokens`` (tokens of the examples),
``total_tokens`` (R x L), ``row_capacity`` (R x ``max_length`` when packing, R x L when
padding; 0 for a batch without examples), ``label_tokens`` (trained tokens), ``samples``
(examples in the batch), ``skipped_too_long``.

Rows are only as full as the examples of one call allow (a call of 32 paper-mix examples fills
about 81% of its rows at 16,384). For full rows, plan them over the whole mix or a large window
first (:mod:`vst.train.planning`, what the trainer does with ``packing: true``) and give the
collator the planned rows themselves (:meth:`VLMCollator.collate_rows`: packed as given; 99.3%
real tokens on the paper mix; ``benchmarks/train.py``).

An example longer than ``max_length`` is never truncated: it is left out, counted in
``skipped_too_long`` and logged (one warning naming it). When every example of a call is left
out the batch is one pad token with no trained label and ``samples == 0``: the trainer skips it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from vst.models.chat import ENDOFTEXT
from vst.models.vision import PixelLimits
from vst.train.encode import IGNORE_INDEX, VISION_KEYS, Encoded, RopeIndex, encode_example
from vst.train.examples import TrainExample
from vst.train.packing import first_fit_decreasing

__all__ = ["VLMCollator", "collate_encoded"]

log = logging.getLogger(__name__)


def _pad_id(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = tokenizer.convert_tokens_to_ids(ENDOFTEXT)
    if not isinstance(pad, int):
        raise ValueError("the tokenizer has no pad token (nor <|endoftext|>)")
    return pad


def _pad_example(pad_id: int) -> Encoded:
    """A one-token stand-in (a pad token, not trained) for a call whose examples all skip."""
    one = torch.zeros(1, dtype=torch.long)
    return Encoded("", "", one + pad_id, one + IGNORE_INDEX, one, torch.zeros((3, 1)).long())


def _stats(examples: list[Encoded], skipped: int) -> dict[str, int]:
    """``vst_stats`` of the examples laid out (``total_tokens`` filled in by the caller)."""
    return {
        "real_tokens": sum(e.length for e in examples),
        "total_tokens": 0,
        "row_capacity": 0,
        "label_tokens": sum(int((e.labels != IGNORE_INDEX).sum()) for e in examples),
        "samples": len(examples),
        "skipped_too_long": skipped,
    }


def _vision(rows: list[list[Encoded]]) -> dict[str, torch.Tensor]:
    """The pictures' tensors, concatenated row by row, example by example."""
    out: dict[str, torch.Tensor] = {}
    for key in VISION_KEYS:
        parts = [e.vision[key] for row in rows for e in row if key in e.vision]
        if parts:
            out[key] = torch.cat(parts, dim=0)
    return out


def _packed(rows: list[list[Encoded]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(sum(e.length for e in row) for row in rows)
    ids, labels, types, positions = [], [], [], []
    for row in rows:
        n_pad = width - sum(e.length for e in row)
        pad_pos = torch.arange(n_pad, dtype=torch.long)
        ids.append(torch.cat([*(e.input_ids for e in row), torch.full((n_pad,), pad_id)]))
        labels.append(torch.cat([*(e.labels for e in row), torch.full((n_pad,), IGNORE_INDEX)]))
        types.append(
            torch.cat([*(e.mm_token_type_ids for e in row), torch.zeros(n_pad, dtype=torch.long)])
        )
        text = torch.cat([*(e.text_positions for e in row), pad_pos])
        rope = torch.cat([*(e.rope_positions for e in row), pad_pos.expand(3, -1)], dim=1)
        positions.append(torch.cat([text[None], rope]))
    return {
        "input_ids": torch.stack(ids).long(),
        "labels": torch.stack(labels).long(),
        "mm_token_type_ids": torch.stack(types).long(),
        "position_ids": torch.stack(positions, dim=1).long(),
    }


def _padded(rows: list[list[Encoded]], pad_id: int) -> dict[str, torch.Tensor]:
    examples = [row[0] for row in rows]
    width = max(e.length for e in examples)
    r = len(examples)
    out = {
        "input_ids": torch.full((r, width), pad_id, dtype=torch.long),
        "labels": torch.full((r, width), IGNORE_INDEX, dtype=torch.long),
        "attention_mask": torch.zeros((r, width), dtype=torch.long),
        "mm_token_type_ids": torch.zeros((r, width), dtype=torch.long),
    }
    with_rope = all(e.rope_positions is not None for e in examples)
    if with_rope:
        out["position_ids"] = torch.zeros((3, r, width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = e.length
        out["input_ids"][i, :n] = e.input_ids
        out["labels"][i, :n] = e.labels
        out["attention_mask"][i, :n] = 1
        out["mm_token_type_ids"][i, :n] = e.mm_token_type_ids
        if with_rope:
            out["position_ids"][:, i, :n] = e.rope_positions
    return out


def _as_planned(
    rows: Sequence[Sequence[int]], lengths: Sequence[int], max_length: int
) -> tuple[list[list[int]], tuple[int, ...]]:
    """Planned ``rows`` of example indices kept as given; an example longer than
    ``max_length`` is skipped, and a row that overflows (lengths unlike the plan's) is packed
    again by first-fit decreasing, with a warning."""
    layout: list[list[int]] = []
    skipped: list[int] = []
    for row in rows:
        fits = [i for i in row if lengths[i] <= max_length]
        skipped += [i for i in row if lengths[i] > max_length]
        if sum(lengths[i] for i in fits) <= max_length:
            if fits:
                layout.append(list(fits))
            continue
        log.warning(
            "a planned row holds %d tokens > max_length %d (lengths unlike the plan's): "
            "packed again",
            sum(lengths[i] for i in fits),
            max_length,
        )
        again = first_fit_decreasing([lengths[i] for i in fits], max_length)
        layout += [[fits[k] for k in r] for r in again.rows]
    return layout, tuple(skipped)


def collate_encoded(
    encoded: Sequence[Encoded],
    *,
    max_length: int,
    packing: bool,
    pad_id: int,
    rows: Sequence[Sequence[int]] | None = None,
) -> dict[str, Any]:
    """The batch of already encoded examples (see the module docstring); packing needs every
    example's ``rope_positions``. ``rows`` (packing only): the layout as planned, rows of
    indices into ``encoded`` (each example in one row), instead of first-fit decreasing."""
    lengths = [e.length for e in encoded]
    if rows is not None:
        used = sorted(i for row in rows for i in row)
        if not packing or used != list(range(len(encoded))):
            raise ValueError("rows must place every example exactly once, and need packing")
    if packing:
        if any(e.rope_positions is None for e in encoded):
            raise ValueError("packing needs each example's mRoPE positions (give rope_index)")
        if rows is None:
            layout = first_fit_decreasing(lengths, max_length)
            planned, skipped = [list(r) for r in layout.rows], layout.skipped
        else:
            planned, skipped = _as_planned(rows, lengths, max_length)
        kept = [[encoded[i] for i in row] for row in planned]
    else:
        skipped = tuple(i for i, n in enumerate(lengths) if n > max_length)
        kept = [[e] for e, n in zip(encoded, lengths, strict=True) if n <= max_length]
    for i in skipped:
        e = encoded[i]
        log.warning(
            "skipped example %r (%s): %d tokens > max_length %d",
            e.id,
            e.source,
            e.length,
            max_length,
        )
    stats = _stats([e for row in kept for e in row], len(skipped))
    if not kept:  # nothing fits: one pad token, nothing trained
        kept = [[_pad_example(pad_id)]]
    batch: dict[str, Any] = (_packed if packing else _padded)(kept, pad_id)
    batch.update(_vision(kept))
    batch["use_cache"] = False  # with a cache, transformers ignores the packed position ids
    stats["total_tokens"] = int(batch["input_ids"].numel())
    rows_used = len(kept) if stats["samples"] else 0
    stats["row_capacity"] = rows_used * max_length if packing else stats["total_tokens"]
    if not stats["samples"]:
        stats["row_capacity"] = 0
    batch["vst_stats"] = stats
    return batch


class VLMCollator:
    """``collator(list_of_TrainExample) -> batch`` for Qwen2.5-VL training (module docstring).

    ``processor``: the checkpoint's processor (:func:`vst.models.processor.load_processor`);
    ``max_length``: row capacity in tokens (longer examples are skipped); ``packing``: several
    examples per row (needs ``rope_index``) or one per row, padded; ``system``: system prompt
    text put first in examples without a system turn (None: the chat template's default);
    ``limits``: picture pixel limits; ``rope_index``: ``model.model.get_rope_index``.
    """

    def __init__(
        self,
        processor: Any,
        *,
        max_length: int = 16384,
        packing: bool = True,
        system: str | None = None,
        limits: PixelLimits | None = None,
        rope_index: RopeIndex | None = None,
    ) -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be positive, got {max_length}")
        if packing and rope_index is None:
            raise ValueError(
                "packing=True needs rope_index=model.model.get_rope_index "
                "(each example's own mRoPE positions)"
            )
        self.processor = processor
        self.max_length = int(max_length)
        self.packing = bool(packing)
        self.system = system
        self.limits = limits or PixelLimits()
        self.rope_index = rope_index
        self.pad_id = _pad_id(processor.tokenizer)

    def encode(self, example: TrainExample) -> Encoded:
        """``example`` encoded with this collator's settings; a ``ValueError`` names it."""
        try:
            return encode_example(
                self.processor,
                example,
                system=self.system,
                limits=self.limits,
                rope_index=self.rope_index,
            )
        except ValueError as exc:
            raise ValueError(f"example {example.id!r} ({example.source}): {exc}") from None

    def __call__(self, examples: Sequence[TrainExample]) -> dict[str, Any]:
        return collate_encoded(
            [self.encode(e) for e in examples],
            max_length=self.max_length,
            packing=self.packing,
            pad_id=self.pad_id,
        )

    def collate_rows(self, rows: Sequence[Sequence[TrainExample]]) -> dict[str, Any]:
        """The batch of rows planned ahead (:mod:`vst.train.planning`), packed as given: one
        batch row per given row, its examples in the given order (packing only; a row that
        no longer fits ``max_length`` is packed again, an over-long example skipped).
        No rows: the one-pad-token batch with ``samples == 0``."""
        if not self.packing:
            raise ValueError("collate_rows needs packing=True")
        examples = [e for row in rows for e in row]
        layout, start = [], 0
        for row in rows:
            layout.append(list(range(start, start + len(row))))
            start += len(row)
        return collate_encoded(
            [self.encode(e) for e in examples],
            max_length=self.max_length,
            packing=True,
            pad_id=self.pad_id,
            rows=layout,
        )
