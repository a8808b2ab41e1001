"""Qwen2.5-VL input/output: system prompts, chat rendering, token sequences and patch layouts."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import numpy as np
import pytest
from PIL import Image

from vst.models import Request, Video
from vst.models.chat import CHAT_TEMPLATE, expand_vision_tokens, render_chat
from vst.models.processor import (
    CLIP_MEAN,
    CLIP_STD,
    load_processor,
    model_inputs,
    torchvision_available,
)
from vst.models.prompts import PLAIN_SYSTEM_PROMPT, THINK_SYSTEM_PROMPT, with_system
from vst.models.vision import PixelLimits, fit_image

RELEASE_NOTES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "VST-RELEASE.md"


def _release_prompt(name: str) -> str:
    text = RELEASE_NOTES.read_text(encoding="utf-8")
    m = re.search(rf'`{name} = "(.*?)"`', text)
    assert m, f"{name} not found in {RELEASE_NOTES}"
    return m.group(1)


@pytest.mark.skipif(not RELEASE_NOTES.is_file(), reason="../shared/reference not beside the repo")
def test_system_prompts_match_the_release_byte_for_byte():
    assert _release_prompt("SYS_PROMPT") == PLAIN_SYSTEM_PROMPT
    assert _release_prompt("THINK_SYSTEM_PROMPT") == THINK_SYSTEM_PROMPT


def test_with_system_adds_one_system_turn_only_when_missing():
    chat = [{"role": "user", "content": "hi"}]
    think = with_system(chat, THINK_SYSTEM_PROMPT)
    assert think[0] == {
        "role": "system",
        "content": [{"type": "text", "text": THINK_SYSTEM_PROMPT}],
    }
    assert with_system(think, PLAIN_SYSTEM_PROMPT) == think
    assert with_system(chat, None) == chat


CHATS = [
    [{"role": "user", "content": "plain string"}],
    [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "image"},
                {"type": "image", "text": None},
                {"type": "text", "text": "  Which is closer?\n"},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "B. chair"}]},
        {"role": "user", "content": [{"type": "text", "text": "And now?"}]},
    ],
    [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Count."}]}],
]


@pytest.mark.parametrize("messages", CHATS)
@pytest.mark.parametrize("gen", [True, False])
def test_chat_template_renders_exactly_as_the_python_renderer(messages, gen):
    env = jinja2.Environment()
    rendered = env.from_string(CHAT_TEMPLATE).render(messages=messages, add_generation_prompt=gen)
    assert rendered == render_chat(messages, add_generation_prompt=gen)


def test_render_chat_is_qwen25vl_format():
    text = render_chat(CHATS[1])
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>"
        "<|vision_start|><|image_pad|><|vision_end|>  Which is closer?\n<|im_end|>\n"
        "<|im_start|>assistant\nB. chair<|im_end|>\n"
        "<|im_start|>user\nAnd now?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    # without a system turn, Qwen2.5-VL's default one comes first
    assert render_chat(CHATS[0], add_generation_prompt=False) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nplain string<|im_end|>\n"
    )


def test_expand_vision_tokens_counts_must_match():
    text = "a<|image_pad|>b<|video_pad|>c<|image_pad|>"
    assert expand_vision_tokens(text, [2, 1], [3]) == (
        "a<|image_pad|><|image_pad|>b<|video_pad|><|video_pad|><|video_pad|>c<|image_pad|>"
    )
    with pytest.raises(ValueError, match=re.escape("text has 2 <|image_pad|> but 3 counts")):
        expand_vision_tokens(text, [1, 1, 1], [3])


def _coded_image(w: int, h: int, salt: int = 0) -> Image.Image:
    """Pixels that encode their own position: R = x, G = y, B = salt (all < 256)."""
    y, x = np.mgrid[0:h, 0:w]
    arr = np.stack([x % 256, y % 256, np.full_like(x, salt)], axis=-1).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def _norm(value: float, channel: int) -> float:
    return (value / 255 - CLIP_MEAN[channel]) / CLIP_STD[channel]


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    return load_processor(tiny_model_dir, use_torchvision=False)


def test_two_image_sample_renders_to_the_exact_token_sequence(processor):
    a, b = _coded_image(84, 56), _coded_image(56, 112, salt=9)
    request = Request(CHATS[1], images=[a, b])
    batch = model_inputs(processor, [request], return_tensors="np")
    # 84x56 -> 6x4 patches -> 3x2 merged = 6 tokens; 56x112 -> 4x8 patches -> 8 tokens
    assert batch["image_grid_thw"].tolist() == [[1, 4, 6], [1, 8, 4]]
    expected = expand_vision_tokens(render_chat(CHATS[1]), [6, 8], [])
    ids = processor.tokenizer(expected, add_special_tokens=False)["input_ids"]
    assert batch["input_ids"][0].tolist() == ids
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((batch["input_ids"][0] == pad).sum()) == 14
    assert batch["pixel_values"].shape == (24 + 32, 3 * 2 * 14 * 14)


def test_four_frame_video_renders_to_the_exact_token_sequence(processor):
    frames = [_coded_image(56, 84, salt=t) for t in range(4)]
    request = Request(CHATS[2], videos=[Video(frames, fps=2.0)])
    batch = model_inputs(processor, [request], return_tensors="np")
    # 4 frames / temporal patch 2 = 2 steps; 56x84 -> 4x6 patches -> 6 tokens per step
    assert batch["video_grid_thw"].tolist() == [[2, 6, 4]]
    expected = expand_vision_tokens(render_chat(CHATS[2]), [], [12])
    ids = processor.tokenizer(expected, add_special_tokens=False)["input_ids"]
    assert batch["input_ids"][0].tolist() == ids
    # mRoPE time step of one grid step = temporal patch / fps = 2 / 2.0 seconds
    assert np.asarray(batch["second_per_grid_ts"]).tolist() == [1.0]


def test_image_patch_layout_hand_checked(processor):
    img = _coded_image(84, 56, salt=7)  # 6 x 4 patches of 14 px
    batch = model_inputs(processor, [Request(CHATS[1], images=[img, img])], return_tensors="np")
    rows = batch["pixel_values"][:24]
    # row order: merge blocks in raster order (3 across, 2 down), 2x2 patches inside each
    order = [(0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (0, 3), (1, 2), (1, 3)]
    for row, (py, px) in enumerate(order):
        patch = rows[row].reshape(3, 2, 14, 14)  # channel, time, y, x
        # R encodes x, G encodes y: the patch's top-left pixel and one inside it
        assert patch[0, 0, 0, 0] == pytest.approx(_norm(px * 14, 0), abs=1e-5)
        assert patch[1, 0, 0, 0] == pytest.approx(_norm(py * 14, 1), abs=1e-5)
        assert patch[0, 1, 5, 9] == pytest.approx(_norm(px * 14 + 9, 0), abs=1e-5)
        assert patch[1, 1, 5, 9] == pytest.approx(_norm(py * 14 + 5, 1), abs=1e-5)
        assert patch[2, 0, 3, 3] == pytest.approx(_norm(7, 2), abs=1e-5)
    # the second row of merge blocks starts at row 12 with patch (2, 0)
    assert rows[12].reshape(3, 2, 14, 14)[1, 0, 0, 0] == pytest.approx(_norm(28, 1), abs=1e-5)


def test_video_patch_layout_hand_checked_odd_frames_repeat_the_last(processor):
    frames = [_coded_image(56, 56, salt=40 * t) for t in range(3)]  # salt marks the frame
    request = Request(CHATS[2], videos=[Video(frames, fps=4.0)])
    batch = model_inputs(processor, [request], return_tensors="np")
    assert batch["video_grid_thw"].tolist() == [[2, 4, 4]]  # 3 frames padded to 4
    rows = batch["pixel_values_videos"].reshape(2, 16, 3, 2, 14, 14)  # step, patch, C, t, y, x
    assert rows[0, 0, 2, 0, 0, 0] == pytest.approx(_norm(0, 2), abs=1e-5)  # frame 0
    assert rows[0, 0, 2, 1, 0, 0] == pytest.approx(_norm(40, 2), abs=1e-5)  # frame 1
    assert rows[1, 0, 2, 0, 0, 0] == pytest.approx(_norm(80, 2), abs=1e-5)  # frame 2
    assert rows[1, 0, 2, 1, 0, 0] == pytest.approx(_norm(80, 2), abs=1e-5)  # repeated
    assert rows[1, 3, 0, 0, 0, 0] == pytest.approx(_norm(14, 0), abs=1e-5)  # patch (1, 1)
    assert rows[1, 3, 1, 0, 0, 0] == pytest.approx(_norm(14, 1), abs=1e-5)
    assert np.asarray(batch["second_per_grid_ts"]).tolist() == [0.5]


def test_pictures_are_fitted_once_like_the_engine_and_not_resized_again(processor):
    big = _coded_image(1000, 700)
    limits = PixelLimits(max_pixels=200 * 28 * 28)
    fitted = fit_image(big, limits.min_pixels, limits.max_pixels)
    assert fitted.width % 28 == 0 and fitted.height % 28 == 0
    assert fitted.width * fitted.height <= limits.max_pixels
    assert fit_image(fitted, limits.min_pixels, limits.max_pixels) is fitted  # stored = as is
    batch = model_inputs(processor, [Request(CHATS[1], images=[big, fitted])], limits, "np")
    grid = batch["image_grid_thw"].tolist()
    assert grid[0] == grid[1] == [1, fitted.height // 14, fitted.width // 14]
    half = len(batch["pixel_values"]) // 2
    np.testing.assert_array_equal(batch["pixel_values"][:half], batch["pixel_values"][half:])


@pytest.mark.skipif(not torchvision_available(), reason="torchvision does not work here")
def test_torchvision_and_numpy_processors_agree(tiny_model_dir):
    with_tv = load_processor(tiny_model_dir, use_torchvision=True)
    without = load_processor(tiny_model_dir, use_torchvision=False)
    frames = [_coded_image(84, 56, salt=30 * t) for t in range(5)]
    requests = [
        Request(CHATS[1], images=[_coded_image(700, 500), _coded_image(56, 56)]),
        Request(CHATS[2], videos=[Video(frames, fps=2.0)]),
    ]
    a = model_inputs(with_tv, requests, return_tensors="np")
    b = model_inputs(without, requests, return_tensors="np")
    for key in ("input_ids", "image_grid_thw", "video_grid_thw", "second_per_grid_ts"):
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]))
    for key in ("pixel_values", "pixel_values_videos"):
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-6)
