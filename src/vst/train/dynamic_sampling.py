"""Dynamic sampling (DAPO's online filtering) on TRL's GRPO batches: which prompt groups carry a
learning signal, and how the kept rows of several rollout rounds become one batch.

A *group* is the ``num_generations`` consecutive completions of one prompt. A group whose
rewards are all equal gets advantage 0 for every completion: it adds tokens to the loss
normaliser and nothing to the gradient. The filter keeps a group when the mean of its
**accuracy** lies strictly between ``low`` and ``high`` (the release's 0.01 / 0.99). It
filters on accuracy, not on the total reward: a group that is all wrong but well formatted has
total 0.5 everywhere and would pass a filter on the total in the release, yet teaches nothing
about the answer.

The batch dicts are what ``GRPOTrainer._generate_and_score_completions`` returns (TRL 1.16):
``prompt_ids`` / ``prompt_mask`` left-padded, ``completion_ids`` / ``completion_mask`` and the
per-token log-probabilities right-padded, ``advantages`` per row, ``pixel_values`` as the
concatenated patches of every image of every row with ``image_grid_thw`` one row per image and
``num_images`` the images per row, ``mm_token_type_ids`` over prompt + completion, and the
scalar ``num_items_in_batch``. :func:`select_rows` and :func:`concat_batches` keep those
layouts exactly (every row's tensors are unchanged apart from padding); the caller recomputes
``num_items_in_batch`` (a count over all processes).

Why this is written here: TRL has no option for it (ECOSYSTEM.md A2: it only logs
``frac_reward_zero_std``), and the batch layout is TRL's own.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "concat_batches",
    "gather_rows",
    "group_means",
    "keep_groups",
    "refill_indices",
    "select_rows",
]

_LEFT = {"prompt_ids": "pad", "prompt_mask": 0}
"""Left-padded prompt tensors and their pad values (``"pad"``: the tokenizer's pad id)."""

_RIGHT = {
    "completion_ids": "pad",
    "completion_mask": 0,
    "old_per_token_logps": 0.0,
    "sampling_per_token_logps": 0.0,
    "ref_per_token_logps": 0.0,
    "tool_mask": 1,
    "importance_sampling_ratio": 1.0,
}
"""Right-padded completion tensors and their pad values."""

_SPANNING = ("mm_token_type_ids", "token_type_ids")
"""Per-token tensors over prompt + completion: left part padded left, right part right, 0."""

_IMAGES = ("pixel_values", "image_grid_thw")
_SCALARS = ("num_items_in_batch",)


def group_means(values: Sequence[float] | np.ndarray, num_generations: int) -> np.ndarray:
    """Mean of each group of ``num_generations`` consecutive values (NaN-aware: a group of
    only NaN gives NaN)."""
    v = np.asarray(values, dtype=np.float64)
    if num_generations < 1 or v.size % num_generations:
        raise ValueError(
            f"{v.size} values do not split into groups of {num_generations} completions"
        )
    grouped = v.reshape(-1, num_generations)
    with warnings.catch_warnings():  # an all-NaN group is NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(grouped, axis=1)


def keep_groups(
    accuracy: Sequence[float] | np.ndarray,
    num_generations: int,
    low: float = 0.01,
    high: float = 0.99,
) -> np.ndarray:
    """Boolean mask over groups: True where ``low < mean accuracy < high`` (a group without
    any scorable completion, all NaN, is dropped)."""
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"filter bounds need 0 <= low < high <= 1, got low={low} high={high}")
    means = group_means(accuracy, num_generations)
    return (means > low) & (means < high)


def refill_indices(
    dataset_size: int, count: int, *, seed: int, key: Sequence[int], exclude: Sequence[int] = ()
) -> list[int]:
    """``count`` distinct prompt indices in ``[0, dataset_size)`` for a refill round, drawn from
    a generator seeded by ``seed`` and ``key`` (e.g. optimizer step, micro-step, round,
    process): the same key always gives the same prompts, so a resumed run refills exactly as
    the original did. Indices in ``exclude`` (the prompts already in the batch) are avoided
    while others remain."""
    if dataset_size < 1:
        raise ValueError("refill needs a non-empty dataset")
    rng = np.random.default_rng([seed & 0xFFFFFFFF, *(int(k) & 0xFFFFFFFF for k in key)])
    order = rng.permutation(dataset_size)
    banned = set(int(i) for i in exclude)
    fresh = [int(i) for i in order if int(i) not in banned]
    if len(fresh) < count:  # a small dataset: repeat prompts rather than come up short
        fresh += [int(i) for i in order if int(i) in banned]
        while len(fresh) < count:
            fresh += [int(i) for i in order]
    return fresh[:count]


def _rows_index(rows: Sequence[int], device: torch.device) -> torch.Tensor:
    return torch.as_tensor(list(rows), dtype=torch.long, device=device)


def _image_index(batch: Mapping[str, Any], rows: Sequence[int]) -> tuple[list[int], torch.Tensor]:
    """(images of ``rows`` in order, their patch rows in ``pixel_values``)."""
    num_images = [int(n) for n in batch["num_images"]]
    grid = batch["image_grid_thw"]
    patches = grid.prod(-1).tolist()
    first_image = np.concatenate([[0], np.cumsum(num_images)]).astype(int)
    first_patch = np.concatenate([[0], np.cumsum(patches)]).astype(int)
    images: list[int] = []
    for r in rows:
        images.extend(range(first_image[r], first_image[r] + num_images[r]))
    spans = [np.arange(first_patch[i], first_patch[i] + patches[i]) for i in images]
    index = np.concatenate(spans) if spans else np.zeros(0, dtype=int)
    return images, torch.as_tensor(index, dtype=torch.long, device=grid.device)


def select_rows(batch: Mapping[str, Any], rows: Sequence[int]) -> dict[str, Any]:
    """The rows ``rows`` (in that order) of a GRPO batch, every key kept in its layout (see
    the module docstring). ``num_items_in_batch`` is copied as is (recompute it)."""
    out: dict[str, Any] = {}
    rows = [int(r) for r in rows]
    for key, value in batch.items():
        if value is None or key in _SCALARS:
            out[key] = value
        elif key == "num_images":
            out[key] = [value[r] for r in rows]
        elif key in _IMAGES:
            continue  # below, together
        elif isinstance(value, torch.Tensor):
            if value.ndim == 0:
                out[key] = value
            else:
                out[key] = value.index_select(0, _rows_index(rows, value.device))
        elif isinstance(value, list):
            out[key] = [value[r] for r in rows]
        else:
            raise ValueError(f"dynamic sampling: cannot select rows of batch key {key!r}")
    pixels = batch.get("pixel_values")
    if pixels is not None or batch.get("image_grid_thw") is not None:
        if batch.get("image_grid_thw") is None or "num_images" not in batch:
            raise ValueError(
                "dynamic sampling: pixel_values without image_grid_thw / num_images "
                "(only Qwen-style vision batches are supported)"
            )
        images, patch_index = _image_index(batch, rows)
        grid = batch["image_grid_thw"]
        out["image_grid_thw"] = grid.index_select(0, _rows_index(images, grid.device))
        if pixels is not None:
            out["pixel_values"] = pixels.index_select(0, patch_index)
    return out


def _with_image_keys(
    batches: Sequence[Mapping[str, Any]],
) -> list[Mapping[str, Any]]:
    """The batches with the picture keys of the others filled in where a batch has none (a
    round of text-only prompts): no images per row, empty grids and patches, zero token
    types over prompt + completion."""
    keys = set().union(*(b.keys() for b in batches))
    wanted = [k for k in ("num_images", "image_grid_thw", "pixel_values", *_SPANNING) if k in keys]
    if all(k in b for b in batches for k in wanted):
        return list(batches)
    reference = {k: next(b[k] for b in batches if k in b) for k in wanted}
    out = []
    for b in batches:
        missing = [k for k in wanted if k not in b]
        if not missing:
            out.append(b)
            continue
        filled = dict(b)
        n = int(b["completion_ids"].shape[0])
        width = int(b["prompt_ids"].shape[1] + b["completion_ids"].shape[1])
        for k in missing:
            ref = reference[k]
            if k == "num_images":
                filled[k] = [0] * n
            elif k in _SPANNING:
                filled[k] = torch.zeros((n, width), dtype=ref.dtype, device=ref.device)
            else:
                filled[k] = ref.new_zeros((0, *ref.shape[1:]))
        out.append(filled)
    return out


def gather_rows(
    parts: Sequence[tuple[Mapping[str, Any], Sequence[int]]], pad_token_id: int
) -> dict[str, Any]:
    """``concat_batches([select_rows(batch, rows) for batch, rows in parts])``, with the
    picture patches (by far the biggest tensor) copied once, straight into the result; one
    part taking all its rows in order is returned as is (a shallow copy)."""
    if not parts:
        raise ValueError("gather_rows: nothing to gather")
    if len(parts) == 1:
        batch, rows = parts[0]
        n = int(batch["completion_ids"].shape[0])
        if [int(r) for r in rows] == list(range(n)):
            return dict(batch)
    parts = list(zip(_with_image_keys([b for b, _ in parts]), [r for _, r in parts], strict=True))
    selected, patch_rows = [], []
    for batch, rows in parts:
        light = {k: v for k, v in batch.items() if k != "pixel_values"}
        selected.append(select_rows(light, rows))
        if batch.get("pixel_values") is not None:
            patch_rows.append(_image_index(batch, [int(r) for r in rows])[1])
    out = concat_batches(selected, pad_token_id)
    if patch_rows:
        first = parts[0][0]["pixel_values"]
        total = sum(len(i) for i in patch_rows)
        pixels = torch.empty((total, *first.shape[1:]), dtype=first.dtype, device=first.device)
        offset = 0
        for (batch, _), index in zip(parts, patch_rows, strict=True):
            torch.index_select(
                batch["pixel_values"], 0, index, out=pixels[offset : offset + len(index)]
            )
            offset += len(index)
        out["pixel_values"] = pixels
    return out


def _pad_to(t: torch.Tensor, width: int, value: float, left: bool) -> torch.Tensor:
    missing = width - t.shape[1]
    if missing <= 0:
        return t
    pad = torch.full((t.shape[0], missing, *t.shape[2:]), value, dtype=t.dtype, device=t.device)
    return torch.cat([pad, t] if left else [t, pad], dim=1)


def concat_batches(batches: Sequence[Mapping[str, Any]], pad_token_id: int) -> dict[str, Any]:
    """One GRPO batch of the rows of ``batches`` in order: prompt tensors left-padded and
    completion tensors right-padded to the widest part, prompt + completion tensors
    re-padded on both sides, images concatenated. ``num_items_in_batch`` is taken from the
    first part (recompute it)."""
    if not batches:
        raise ValueError("concat_batches: nothing to concatenate")
    if len(batches) == 1:
        return dict(batches[0])
    keys = list(batches[0])
    for b in batches[1:]:
        if set(b) != set(keys):
            raise ValueError(
                f"concat_batches: parts have different keys ({sorted(keys)} vs {sorted(b)})"
            )
    prompt_w = max(int(b["prompt_ids"].shape[1]) for b in batches)
    completion_w = max(int(b["completion_ids"].shape[1]) for b in batches)
    out: dict[str, Any] = {}
    for key in keys:
        values = [b[key] for b in batches]
        first = values[0]
        if first is None or key in _SCALARS:
            out[key] = first
        elif key in _LEFT or key in _RIGHT:
            pad = _LEFT.get(key, _RIGHT.get(key))
            value = pad_token_id if pad == "pad" else pad
            one_column = all(v.ndim == 2 and v.shape[1] == 1 for v in values)
            if key in _RIGHT and one_column and key.endswith("ratio"):
                out[key] = torch.cat(values, dim=0)  # sequence-level ratio, one column
                continue  # (a token-level one is one column wide only if every part is)
            width = prompt_w if key in _LEFT else completion_w
            out[key] = torch.cat([_pad_to(v, width, value, key in _LEFT) for v in values], dim=0)
        elif key in _SPANNING:
            parts = []
            for b, v in zip(batches, values, strict=True):
                p = int(b["prompt_ids"].shape[1])
                left = _pad_to(v[:, :p], prompt_w, 0, left=True)
                right = _pad_to(v[:, p:], completion_w, 0, left=False)
                parts.append(torch.cat([left, right], dim=1))
            out[key] = torch.cat(parts, dim=0)
        elif isinstance(first, torch.Tensor):
            if first.ndim == 0:
                out[key] = first
            else:
                out[key] = torch.cat(values, dim=0)
        elif isinstance(first, list):
            out[key] = [x for v in values for x in v]
        else:
            raise ValueError(f"concat_batches: cannot concatenate batch key {key!r}")
    return out
