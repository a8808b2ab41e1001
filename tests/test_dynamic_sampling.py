"""vst.train.dynamic_sampling by value: the group filter's bounds and NaN groups, and row
selection / concatenation of TRL GRPO batches checked key by key against hand-written tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vst.train.dynamic_sampling import (  # noqa: E402 - after the torch skip
    concat_batches,
    gather_rows,
    group_means,
    keep_groups,
    select_rows,
)

PAD = 9
NAN = math.nan


def _t(values, dtype=torch.long):
    return torch.tensor(values, dtype=dtype)


def batch_one() -> dict:
    """6 rows (3 groups x 2): prompt width 3 (left-padded), completion width 2 (right-padded);
    images per row 1, 2, 0, 1, 1, 1; patch k of pixel_values is ``[k, 100 + k]``."""
    return {
        "prompt_ids": _t(
            [
                [PAD, 11, 12],
                [13, 14, 15],
                [PAD, PAD, 16],
                [PAD, 17, 18],
                [19, 20, 21],
                [PAD, 22, 23],
            ]
        ),
        "prompt_mask": _t([[0, 1, 1], [1, 1, 1], [0, 0, 1], [0, 1, 1], [1, 1, 1], [0, 1, 1]]),
        "completion_ids": _t([[21, PAD], [22, 23], [24, PAD], [25, 26], [27, PAD], [28, 29]]),
        "completion_mask": _t([[1, 0], [1, 1], [1, 0], [1, 1], [1, 0], [1, 1]]),
        "old_per_token_logps": _t(
            [[-0.1, 0], [-0.2, -0.3], [-0.4, 0], [-0.5, -0.6], [-0.7, 0], [-0.8, -0.9]],
            torch.float32,
        ),
        "advantages": _t([0.5, -0.5, 0.0, 1.0, -1.0, 0.25], torch.float32),
        "num_items_in_batch": _t(9),
        # images in row order: r0 (1,1,2) | r1 (1,1,1), (1,1,2) | r3 (1,2,2) | r4, r5 (1,1,1)
        "image_grid_thw": _t([[1, 1, 2], [1, 1, 1], [1, 1, 2], [1, 2, 2], [1, 1, 1], [1, 1, 1]]),
        "num_images": [1, 2, 0, 1, 1, 1],
        "pixel_values": _t([[k, 100 + k] for k in range(11)], torch.float32),
        # prompt part (3) + completion part (2); distinct values to follow the re-padding
        "mm_token_type_ids": _t([[10 * r + k for k in range(1, 6)] for r in range(6)]),
    }


def batch_two() -> dict:
    """2 rows: prompt width 2, completion width 3, one image each ((1,1,1), (1,1,2))."""
    return {
        "prompt_ids": _t([[31, 32], [PAD, 33]]),
        "prompt_mask": _t([[1, 1], [0, 1]]),
        "completion_ids": _t([[41, 42, PAD], [43, 44, 45]]),
        "completion_mask": _t([[1, 1, 0], [1, 1, 1]]),
        "old_per_token_logps": _t([[-1.1, -1.2, 0.0], [-1.3, -1.4, -1.5]], torch.float32),
        "advantages": _t([2.0, -2.0], torch.float32),
        "num_items_in_batch": _t(5),
        "image_grid_thw": _t([[1, 1, 1], [1, 1, 2]]),
        "num_images": [1, 1],
        "pixel_values": _t([[50, 150], [51, 151], [52, 152]], torch.float32),
        "mm_token_type_ids": _t([[61, 62, 63, 64, 65], [71, 72, 73, 74, 75]]),
    }


def _eq(got: torch.Tensor, expected, dtype=None) -> None:
    want = torch.tensor(expected, dtype=dtype or got.dtype)
    assert got.dtype == want.dtype and got.shape == want.shape, (got, want)
    assert torch.equal(got, want), (got, want)


# --- keep_groups --------------------------------------------------------------------------------


def test_group_means_hand_values():
    np.testing.assert_allclose(group_means([1, 0, 0.5, 0.5, 1, 1], 2), [0.5, 0.5, 1.0])
    np.testing.assert_allclose(group_means([NAN, 1.0, NAN, NAN], 2), [1.0, NAN])


def test_keep_groups_bounds_are_exclusive_and_nan_groups_dropped():
    accuracy = [
        1.0, 1.0,    # mean 1: all right, dropped
        0.0, 1.0,    # 0.5: kept
        NAN, NAN,    # nothing scorable: dropped
        0.01, 0.01,  # exactly low: dropped
        0.99, 0.99,  # exactly high: dropped
        0.02, 0.0,   # 0.01 again (a mean): dropped
        NAN, 0.5,    # NaN ignored: 0.5, kept
        0.0, 0.0,    # all wrong: dropped
        0.03, 0.0,   # 0.015: kept
    ]  # fmt: skip
    keep = keep_groups(accuracy, 2)
    assert keep.tolist() == [False, True, False, False, False, False, True, False, True]
    # other bounds, still exclusive: (0.2, 0.6)
    keep = keep_groups([0.2, 0.2, 0.3, 0.3, 0.6, 0.6, 0.59, 0.59], 2, low=0.2, high=0.6)
    assert keep.tolist() == [False, True, False, True]


@pytest.mark.parametrize(("values", "num_generations"), [([1.0] * 5, 2), ([1.0] * 6, 4)])
def test_keep_groups_wrong_group_sizes_raise(values, num_generations):
    with pytest.raises(ValueError, match=f"groups of {num_generations} completions"):
        keep_groups(values, num_generations)


@pytest.mark.parametrize(("low", "high"), [(0.5, 0.5), (0.6, 0.4), (-0.1, 0.9), (0.1, 1.1)])
def test_keep_groups_bad_bounds_raise(low, high):
    with pytest.raises(ValueError, match="0 <= low < high <= 1"):
        keep_groups([0.5, 0.5], 2, low=low, high=high)


def test_keep_groups_zero_generations_raise():
    with pytest.raises(ValueError, match="groups of 0"):
        keep_groups([0.5, 0.5], 0)


# --- select_rows --------------------------------------------------------------------------------


def test_select_rows_every_key_by_value():
    out = select_rows(batch_one(), [4, 1])
    assert set(out) == set(batch_one())
    _eq(out["prompt_ids"], [[19, 20, 21], [13, 14, 15]])
    _eq(out["prompt_mask"], [[1, 1, 1], [1, 1, 1]])
    _eq(out["completion_ids"], [[27, PAD], [22, 23]])
    _eq(out["completion_mask"], [[1, 0], [1, 1]])
    _eq(out["old_per_token_logps"], [[-0.7, 0.0], [-0.2, -0.3]])
    _eq(out["advantages"], [-1.0, -0.5])
    _eq(out["mm_token_type_ids"], [[41, 42, 43, 44, 45], [11, 12, 13, 14, 15]])
    # row 4's image (patch 9), then row 1's two images (patches 2 | 3, 4), in that order
    _eq(out["image_grid_thw"], [[1, 1, 1], [1, 1, 1], [1, 1, 2]])
    _eq(out["pixel_values"], [[9, 109], [2, 102], [3, 103], [4, 104]])
    assert out["num_images"] == [1, 2]
    _eq(out["num_items_in_batch"], 9)  # copied as is (the caller recomputes it)


def test_select_rows_without_images_and_with_none_values():
    b = batch_one()
    b["ref_per_token_logps"] = None
    out = select_rows(b, [2, 3])  # row 2 has no image, row 3 one of 2x2 patches
    assert out["ref_per_token_logps"] is None
    assert out["num_images"] == [0, 1]
    _eq(out["image_grid_thw"], [[1, 2, 2]])
    _eq(out["pixel_values"], [[5, 105], [6, 106], [7, 107], [8, 108]])
    out = select_rows(b, [2])
    assert out["pixel_values"].shape == (0, 2) and out["image_grid_thw"].shape == (0, 3)


def test_select_rows_pixel_values_need_the_grid():
    b = batch_one()
    del b["image_grid_thw"]
    with pytest.raises(ValueError, match="pixel_values without image_grid_thw"):
        select_rows(b, [0])


# --- concat_batches -----------------------------------------------------------------------------


def test_concat_two_parts_with_different_widths_every_key_by_value():
    one = select_rows(batch_one(), [4, 1])  # prompt width 3, completion width 2
    two = select_rows(batch_two(), [1])  # prompt width 2, completion width 3
    out = concat_batches([one, two], pad_token_id=PAD)
    assert set(out) == set(batch_one())
    _eq(out["prompt_ids"], [[19, 20, 21], [13, 14, 15], [PAD, PAD, 33]])  # left pad: pad id
    _eq(out["prompt_mask"], [[1, 1, 1], [1, 1, 1], [0, 0, 1]])
    _eq(out["completion_ids"], [[27, PAD, PAD], [22, 23, PAD], [43, 44, 45]])  # right pad
    _eq(out["completion_mask"], [[1, 0, 0], [1, 1, 0], [1, 1, 1]])
    _eq(out["old_per_token_logps"], [[-0.7, 0.0, 0.0], [-0.2, -0.3, 0.0], [-1.3, -1.4, -1.5]])
    _eq(out["advantages"], [-1.0, -0.5, -2.0])
    # prompt part left-padded to 3, completion part right-padded to 3, with 0
    _eq(
        out["mm_token_type_ids"],
        [[41, 42, 43, 44, 45, 0], [11, 12, 13, 14, 15, 0], [0, 71, 72, 73, 74, 75]],
    )
    _eq(out["pixel_values"], [[9, 109], [2, 102], [3, 103], [4, 104], [51, 151], [52, 152]])
    _eq(out["image_grid_thw"], [[1, 1, 1], [1, 1, 1], [1, 1, 2], [1, 1, 2]])
    assert out["num_images"] == [1, 2, 1]
    _eq(out["num_items_in_batch"], 9)  # the first part's (the caller recomputes it)


def test_concat_keeps_the_row_order_of_the_parts():
    b = batch_one()
    parts = [select_rows(b, [0, 1]), select_rows(b, [2, 3]), select_rows(b, [4, 5])]
    out = concat_batches(parts, pad_token_id=PAD)
    for key, value in b.items():
        if key == "num_items_in_batch":
            continue
        if isinstance(value, list):
            assert out[key] == value
        else:
            assert torch.equal(out[key], value), key


def test_concat_errors():
    with pytest.raises(ValueError, match="nothing to concatenate"):
        concat_batches([], pad_token_id=PAD)
    one = select_rows(batch_one(), [0])
    two = select_rows(batch_two(), [0])
    del two["advantages"]
    with pytest.raises(ValueError, match="different keys"):
        concat_batches([one, two], pad_token_id=PAD)
    single = concat_batches([one], pad_token_id=PAD)
    assert single == one and single is not one


def test_concat_sequence_and_token_level_importance_ratios():
    one = select_rows(batch_one(), [0])  # completion width 2
    two = select_rows(batch_two(), [0])  # completion width 3
    # sequence-level ratio: one column in every part, concatenated as is
    one["importance_sampling_ratio"] = _t([[0.5]], torch.float32)
    two["importance_sampling_ratio"] = _t([[2.0]], torch.float32)
    _eq(concat_batches([one, two], PAD)["importance_sampling_ratio"], [[0.5], [2.0]])
    # token-level ratio whose first part happens to be one token wide: right-padded with 1
    one = {k: v[:, :1] if k in ("completion_ids", "completion_mask") else v for k, v in one.items()}
    one["old_per_token_logps"] = one["old_per_token_logps"][:, :1]
    one["mm_token_type_ids"] = one["mm_token_type_ids"][:, :4]
    one["importance_sampling_ratio"] = _t([[0.5]], torch.float32)
    two["importance_sampling_ratio"] = _t([[2.0, 3.0, 1.0]], torch.float32)
    out = concat_batches([one, two], PAD)
    _eq(out["importance_sampling_ratio"], [[0.5, 1.0, 1.0], [2.0, 3.0, 1.0]])
    _eq(out["completion_ids"], [[21, PAD, PAD], [41, 42, PAD]])


# --- gather_rows (the trainer's path) ------------------------------------------------------------


def test_gather_rows_equals_select_then_concat():
    parts = [(batch_one(), [4, 1]), (batch_two(), [1])]
    fast = gather_rows(parts, pad_token_id=PAD)
    slow = concat_batches([select_rows(b, rows) for b, rows in parts], pad_token_id=PAD)
    assert set(fast) == set(slow)
    for key, value in slow.items():
        if isinstance(value, torch.Tensor):
            _eq(fast[key], value.tolist(), value.dtype)
        else:
            assert fast[key] == value, key
    whole = batch_one()
    assert gather_rows([(whole, range(6))], PAD)["pixel_values"] is whole["pixel_values"]


def test_gather_rows_with_a_round_of_text_only_prompts():
    """A round without any picture has no image keys: it gathers as rows of no image."""
    text = {k: v for k, v in batch_two().items() if k not in ("image_grid_thw", "num_images")}
    text = {k: v for k, v in text.items() if k not in ("pixel_values", "mm_token_type_ids")}
    out = gather_rows([(batch_one(), [1]), (text, [0, 1])], pad_token_id=PAD)
    assert out["num_images"] == [2, 0, 0]
    _eq(out["image_grid_thw"], [[1, 1, 1], [1, 1, 2]])
    _eq(out["pixel_values"], [[2, 102], [3, 103], [4, 104]])  # row 1: patches 2, 3-4
    # the text rows' token types are zeros over their prompt (left-padded) and completion
    _eq(out["mm_token_type_ids"], [[11, 12, 13, 14, 15, 0], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    _eq(out["prompt_ids"], [[13, 14, 15], [PAD, 31, 32], [PAD, PAD, 33]])
