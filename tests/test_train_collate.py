"""Training encoding, loss masks, first-fit-decreasing packing and the VLM collator."""

from __future__ import annotations

import copy
from typing import ClassVar

import numpy as np
import pytest
import torch
from PIL import Image

from vst.models.processor import load_processor
from vst.models.requests import Video
from vst.train.collate import VLMCollator, collate_encoded
from vst.train.encode import IGNORE_INDEX, assistant_labels, encode_example, encoded_length
from vst.train.examples import TrainExample
from vst.train.packing import first_fit_decreasing

PAD4 = "<|image_pad|>" * 4


def _image(seed: int, w: int, h: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def _turn(role: str, *items) -> dict:
    content = [{"type": "text", "text": i} if isinstance(i, str) else i for i in items]
    return {"role": role, "content": content}


IMAGE = {"type": "image"}
VIDEO = {"type": "video"}


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    return load_processor(tiny_model_dir)


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    from transformers import Qwen2_5_VLForConditionalGeneration

    return Qwen2_5_VLForConditionalGeneration.from_pretrained(
        str(tiny_model_dir), dtype=torch.float32
    )


def _multi_turn() -> TrainExample:
    """system, user with an image, assistant, user, assistant."""
    return TrainExample(
        "mt",
        "test",
        [
            _turn("system", "Be brief."),
            _turn("user", IMAGE, "How far is the chair?"),
            _turn("assistant", "2.5 meters"),
            _turn("user", "Why?"),
            _turn("assistant", "It is near the table."),
        ],
        images=(_image(0, 56, 56),),
    )


def _video_example(fps: float = 1.0) -> TrainExample:
    frames = [_image(10 + i, 84, 56) for i in range(4)]
    return TrainExample(
        "vid",
        "test",
        [_turn("user", VIDEO, "Count the chairs."), _turn("assistant", "3")],
        videos=(Video(frames, fps),),
    )


def _mixed_examples() -> list[TrainExample]:
    """Images (one, two), a video, multi-turn, text only: what packing must keep apart."""
    return [
        TrainExample(
            "a",
            "t",
            [_turn("user", IMAGE, "How far is the chair?"), _turn("assistant", "2.5 meters")],
            images=(_image(1, 80, 60),),
        ),
        _video_example(2.0),
        _multi_turn(),
        TrainExample("d", "t", [_turn("user", "What is 2?"), _turn("assistant", "2")]),
        TrainExample(
            "e",
            "t",
            [
                _turn("system", "You are a helpful assistant."),
                _turn("user", IMAGE, IMAGE, "Which one is closer, A or B?"),
                _turn("assistant", "A"),
                _turn("user", "And the farther?"),
                _turn("assistant", "B. chair"),
            ],
            images=(_image(2, 112, 56), _image(3, 56, 84)),
        ),
    ]


# ---------------------------------------------------------------- loss mask


class _FakeTokenizer:
    """Tokens by hand: ids index ``VOCAB``; decode joins their strings."""

    VOCAB: ClassVar[list[str]] = [
        "<|im_start|>",
        "<|im_end|>",
        "<|image_pad|>",
        "<|video_pad|>",
        "assistant",
        "\n",
        "user",
        "hi",
        "\n\nok",
        "ass",
        "istant",
    ]
    unk_token_id = None

    def convert_tokens_to_ids(self, token: str) -> int:
        return self.VOCAB.index(token)

    def decode(self, ids) -> str:
        return "".join(self.VOCAB[i] for i in ids)


def test_assistant_labels_by_hand_on_a_fake_vocabulary():
    tok = _FakeTokenizer()
    # <s>user\n<img>hi</s>\n <s>ass istant\n hi <img> </s>\n
    ids = [0, 6, 5, 2, 7, 1, 5, 0, 9, 10, 5, 7, 2, 1, 5]
    x = IGNORE_INDEX
    assert assistant_labels(ids, tok) == [x, x, x, x, x, x, x, x, x, x, x, 7, x, 1, x]
    # the header newline merged with content: that token carries content, so it is trained
    assert assistant_labels([0, 4, 8, 1, 5], tok) == [x, x, 8, 1, x]
    with pytest.raises(ValueError, match="no closing"):
        assistant_labels([0, 4, 5, 7], tok)
    with pytest.raises(ValueError, match="no newline"):
        assistant_labels([0, 4, 7, 1], tok)


def test_multi_turn_label_mask_matches_hand_built_expectation(processor):
    enc = encode_example(processor, _multi_turn())
    ids = enc.input_ids.tolist()
    tok = processor.tokenizer
    text = (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        f"<|im_start|>user\n<|vision_start|>{PAD4}<|vision_end|>How far is the chair?<|im_end|>\n"
        "<|im_start|>assistant\n2.5 meters<|im_end|>\n"
        "<|im_start|>user\nWhy?<|im_end|>\n"
        "<|im_start|>assistant\nIt is near the table.<|im_end|>\n"
    )
    assert tok.decode(ids) == text
    trained = ["2.5 meters<|im_end|>", "It is near the table.<|im_end|>"]
    spans = []
    for piece in trained:
        start = text.index("<|im_start|>assistant\n" + piece) + len("<|im_start|>assistant\n")
        spans.append((start, start + len(piece)))
    expected = []
    for i, tid in enumerate(ids):
        a, b = len(tok.decode(ids[:i])), len(tok.decode(ids[: i + 1]))
        inside = any(s <= a and b <= e for s, e in spans)
        assert inside or all(b <= s or a >= e for s, e in spans), f"token {i} straddles a span"
        expected.append(tid if inside else IGNORE_INDEX)
    assert enc.labels.tolist() == expected
    labelled = [t for t in enc.labels.tolist() if t != IGNORE_INDEX]
    assert tok.decode(labelled) == "".join(trained)
    # the image pads are typed as image tokens, nothing else is
    assert enc.mm_token_type_ids.tolist() == [
        int(t == tok.convert_tokens_to_ids("<|image_pad|>")) for t in ids
    ]


def test_run_system_prompt_goes_first_and_is_not_trained(processor):
    ex = TrainExample("s", "t", [_turn("user", "Hi?"), _turn("assistant", "Yes.")])
    tok = processor.tokenizer
    enc = encode_example(processor, ex, system="Think first.")
    assert tok.decode(enc.input_ids.tolist()).startswith(
        "<|im_start|>system\nThink first.<|im_end|>"
    )
    assert tok.decode([t for t in enc.labels.tolist() if t != IGNORE_INDEX]) == "Yes.<|im_end|>"
    default = encode_example(processor, ex)  # the template's default system prompt
    assert tok.decode(default.input_ids.tolist()).startswith(
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>"
    )


def test_encoded_length_equals_encoding_without_touching_pixels(processor):
    examples = [*_mixed_examples(), _video_example(1.0)]
    # 5 frames (an odd count: the last is repeated to fill the time step) of a large picture
    big = [_image(20 + i, 700, 500) for i in range(5)]
    examples.append(
        TrainExample(
            "big",
            "t",
            [_turn("user", VIDEO, "?"), _turn("assistant", "2")],
            videos=(Video(big, 3.0),),
        )
    )
    for ex in examples:
        for system in (None, "Be brief."):
            assert (
                encoded_length(processor, ex, system=system)
                == encode_example(processor, ex, system=system).length
            ), ex.id


# ---------------------------------------------------------------- video


def test_video_example_encodes_grid_time_and_mrope(processor, model):
    enc = encode_example(processor, _video_example(1.0), rope_index=model.model.get_rope_index)
    # 4 frames of 84 x 56 px: 2 time steps (2 frames each) x 4 x 6 patches; 2x2 merge -> 12 tokens
    assert enc.vision["video_grid_thw"].tolist() == [[2, 4, 6]]
    assert enc.vision["pixel_values_videos"].shape == (2 * 4 * 6, 3 * 2 * 14 * 14)
    assert enc.vision["second_per_grid_ts"].tolist() == [2.0]  # 2 frames per step at 1 fps
    video = (enc.mm_token_type_ids == 2).nonzero().flatten().tolist()
    assert len(video) == 12 and video == list(range(video[0], video[0] + 12))
    s = video[0]
    pos = enc.rope_positions
    # text before the video: t = h = w = text position
    assert pos[:, :s].tolist() == [list(range(s))] * 3
    # time steps 2 s apart x 2 tokens per second = 4; merged rows (2) and columns (3) from s
    assert pos[0, video].tolist() == [s] * 6 + [s + 4] * 6
    assert pos[1, video].tolist() == [s + r for r in (0, 0, 0, 1, 1, 1)] * 2
    assert pos[2, video].tolist() == [s + c for c in (0, 1, 2)] * 4
    # text after the video resumes at s + max(rows, columns) = s + 3
    assert pos[:, s + 12].tolist() == [s + 3] * 3


def test_video_example_trains_one_step(processor, model):
    m = copy.deepcopy(model).train()
    collator = VLMCollator(processor, rope_index=m.model.get_rope_index)
    batch = collator([_video_example(2.0)])
    assert batch.pop("vst_stats")["samples"] == 1
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    loss0 = m(**batch).loss
    loss0.backward()
    visual = [p.grad for n, p in m.named_parameters() if ".visual." in f".{n}"]
    assert visual and all(g is not None for g in visual)
    assert sum(float(g.abs().sum()) for g in visual) > 0  # the video reached the loss
    opt.step()
    with torch.no_grad():
        loss1 = m(**batch).loss
    assert torch.isfinite(loss0) and float(loss1) < loss0.item() - 0.1


# ---------------------------------------------------------------- packed == padded


def _loss_and_grads(model, batch):
    batch = dict(batch)
    batch.pop("vst_stats")
    model.zero_grad(set_to_none=True)
    loss = model(**batch).loss
    loss.backward()
    return loss.item(), {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def test_packed_loss_and_gradients_equal_padded(processor, model):
    m = copy.deepcopy(model).train()
    rope = m.model.get_rope_index
    examples = _mixed_examples()
    packed = VLMCollator(processor, max_length=220, rope_index=rope)(examples)
    padded = VLMCollator(processor, max_length=220, packing=False, rope_index=rope)(examples)
    assert "attention_mask" not in packed and packed["position_ids"].shape[0] == 4
    assert padded["attention_mask"].shape == padded["input_ids"].shape
    rows = packed["input_ids"].shape[0]
    assert rows < len(examples)  # really packed: rows hold several examples
    assert packed["vst_stats"]["samples"] == padded["vst_stats"]["samples"] == 5
    assert packed["vst_stats"]["label_tokens"] == padded["vst_stats"]["label_tokens"]
    lp, gp = _loss_and_grads(m, packed)
    lu, gu = _loss_and_grads(m, padded)
    assert abs(lp - lu) < 1e-5
    assert set(gp) == set(gu) and all(g is not None for g in gp.values())
    worst = max(float((gp[n] - gu[n]).abs().max()) for n in gp)
    assert worst < 1e-5
    # control: text positions that do not restart let examples attend to each other
    leaky = dict(packed)
    pos = packed["position_ids"].clone()
    pos[0] = torch.arange(pos.shape[-1]).expand(rows, -1)
    leaky["position_ids"] = pos
    ll, _ = _loss_and_grads(m, leaky)
    assert abs(ll - lu) > 1e-3


def test_packed_layout_positions_padding_and_vision_order(processor, model):
    rope = model.model.get_rope_index
    collator = VLMCollator(processor, max_length=220, rope_index=rope)
    examples = _mixed_examples()
    enc = [collator.encode(e) for e in examples]
    lengths = [e.length for e in enc]
    layout = first_fit_decreasing(lengths, 220)
    batch = collator(examples)
    width = max(layout.fills(lengths))
    assert batch["input_ids"].shape == (len(layout.rows), width)
    pad = processor.tokenizer.pad_token_id
    order = []
    for r, row in enumerate(layout.rows):
        at = 0
        for i in row:
            n = lengths[i]
            assert torch.equal(batch["input_ids"][r, at : at + n], enc[i].input_ids)
            assert torch.equal(batch["labels"][r, at : at + n], enc[i].labels)
            assert batch["position_ids"][0, r, at : at + n].tolist() == list(range(n))
            assert torch.equal(batch["position_ids"][1:, r, at : at + n], enc[i].rope_positions)
            at += n
            order.append(i)
        # the pad run: pad tokens, untrained, positions restarting at 0 (a block of its own)
        rest = width - at
        assert batch["input_ids"][r, at:].tolist() == [pad] * rest
        assert batch["labels"][r, at:].tolist() == [IGNORE_INDEX] * rest
        assert batch["position_ids"][:, r, at:].tolist() == [list(range(rest))] * 4
    # pictures in the order their pad tokens appear, row by row
    grids = [
        g for i in order for g in enc[i].vision.get("image_grid_thw", torch.empty(0, 3)).tolist()
    ]
    assert batch["image_grid_thw"].tolist() == grids
    pixels = torch.cat(
        [enc[i].vision["pixel_values"] for i in order if "pixel_values" in enc[i].vision]
    )
    assert torch.equal(batch["pixel_values"], pixels)
    n_image_tokens = int((batch["mm_token_type_ids"] == 1).sum())
    assert n_image_tokens == int(batch["image_grid_thw"].prod(-1).sum()) // 4
    stats = batch["vst_stats"]
    assert stats == {
        "real_tokens": sum(lengths),
        "total_tokens": len(layout.rows) * width,
        "row_capacity": len(layout.rows) * 220,
        "label_tokens": sum(int((e.labels != IGNORE_INDEX).sum()) for e in enc),
        "samples": 5,
        "skipped_too_long": 0,
    }
    assert batch["use_cache"] is False


# ---------------------------------------------------------------- first-fit decreasing


def test_first_fit_decreasing_by_hand():
    # longest first: 11 -> row 0; 9 -> row 1; 7 -> row 2; 5 -> row 2 (full); 3 (#2) -> row 1
    # (full); 3 (#4) -> row 3; 2 -> row 3; 13 does not fit any row: skipped
    lengths = [5, 9, 3, 7, 3, 2, 11, 13]
    p = first_fit_decreasing(lengths, 12)
    assert p.rows == ((6,), (1, 2), (0, 3), (4, 5))
    assert p.skipped == (7,)
    assert p.fills(lengths) == [11, 12, 12, 5]
    # ties keep input order: the first two 4s share a row
    assert first_fit_decreasing([4, 4, 4], 8).rows == ((0, 1), (2,))
    assert first_fit_decreasing([], 8).rows == ()
    assert first_fit_decreasing(lengths, 12) == p  # deterministic
    with pytest.raises(ValueError, match="positive"):
        first_fit_decreasing([3, 0], 8)


def test_first_fit_decreasing_never_overfills_and_keeps_everything():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 120, 300).tolist()
    p = first_fit_decreasing(lengths, 100)
    placed = sorted(i for row in p.rows for i in row)
    assert placed == [i for i, n in enumerate(lengths) if n <= 100]
    assert list(p.skipped) == [i for i, n in enumerate(lengths) if n > 100]
    assert max(p.fills(lengths)) <= 100
    # no two rows could be merged: FFD leaves every pair of rows over capacity
    fills = sorted(p.fills(lengths))
    assert fills[0] + fills[1] > 100


# ---------------------------------------------------------------- skips, determinism


@pytest.mark.parametrize("packing", [True, False])
def test_over_length_examples_are_skipped_and_counted(processor, model, packing, caplog):
    rope = model.model.get_rope_index
    examples = _mixed_examples()
    probe = VLMCollator(processor, rope_index=rope)
    lengths = [probe.encode(e).length for e in examples]
    limit = sorted(lengths)[-2]  # only the longest example is too long
    longest = examples[lengths.index(max(lengths))]
    collator = VLMCollator(processor, max_length=limit, packing=packing, rope_index=rope)
    with caplog.at_level("WARNING", logger="vst.train.collate"):
        batch = collator(examples)
    stats = batch["vst_stats"]
    assert stats["skipped_too_long"] == 1 and stats["samples"] == 4
    assert stats["real_tokens"] == sum(lengths) - max(lengths)
    assert batch["input_ids"].shape[1] <= limit
    assert f"skipped example {longest.id!r}" in caplog.text
    # nothing fits: one untrained pad token, samples 0
    none = VLMCollator(processor, max_length=5, packing=packing, rope_index=rope)(examples)
    assert none["vst_stats"]["samples"] == 0 and none["vst_stats"]["skipped_too_long"] == 5
    assert none["labels"].tolist() == [[IGNORE_INDEX]]
    assert "pixel_values" not in none


def test_padded_batch_layout(processor, model):
    rope = model.model.get_rope_index
    examples = _mixed_examples()
    collator = VLMCollator(processor, packing=False, rope_index=rope)
    enc = [collator.encode(e) for e in examples]
    batch = collator(examples)
    width = max(e.length for e in enc)
    assert batch["input_ids"].shape == (5, width) and batch["position_ids"].shape == (3, 5, width)
    for i, e in enumerate(enc):
        assert batch["attention_mask"][i].tolist() == [1] * e.length + [0] * (width - e.length)
        assert torch.equal(batch["labels"][i, : e.length], e.labels)
        assert torch.equal(batch["position_ids"][:, i, : e.length], e.rope_positions)
    no_rope = VLMCollator(processor, packing=False)(examples)
    assert "position_ids" not in no_rope
    assert torch.equal(no_rope["input_ids"], batch["input_ids"])
    with pytest.raises(ValueError, match="rope_index"):
        VLMCollator(processor, packing=True)


def test_collator_is_deterministic(processor, model):
    rope = model.model.get_rope_index
    a = VLMCollator(processor, max_length=220, rope_index=rope)(_mixed_examples())
    b = VLMCollator(processor, max_length=220, rope_index=rope)(_mixed_examples())
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], torch.Tensor):
            assert torch.equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k


def test_collate_encoded_rejects_packing_without_positions(processor):
    enc = encode_example(processor, _multi_turn())
    with pytest.raises(ValueError, match="mRoPE"):
        collate_encoded([enc], max_length=100, packing=True, pad_id=0)
