"""Chat text in Qwen2.5-VL's format: a Python renderer and the Jinja template vst checkpoints ship.

Qwen2.5-VL renders a chat as::

    <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n   (only when the chat does not
                                                                   start with a system turn)
    <|im_start|>{role}\\n{content}<|im_end|>\\n                        (each turn)
    <|im_start|>assistant\\n                                          (add_generation_prompt)

where an image item is ``<|vision_start|><|image_pad|><|vision_end|>``, a video item is
``<|vision_start|><|video_pad|><|vision_end|>`` and text items are their text, unstripped and
joined with nothing between them. The processor then repeats each pad token once per merged
patch (:func:`expand_vision_tokens`). :data:`CHAT_TEMPLATE` is vst's own Jinja template for that
format (written for vst, tested to render exactly as :func:`render_chat`); the tiny checkpoint
ships it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vst.models.prompts import PLAIN_SYSTEM_PROMPT
from vst.models.requests import normalize_messages

__all__ = [
    "CHAT_TEMPLATE",
    "IMAGE_PAD",
    "IM_END",
    "IM_START",
    "SPECIAL_TOKENS",
    "VIDEO_PAD",
    "VISION_END",
    "VISION_START",
    "expand_vision_tokens",
    "render_chat",
]

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
IMAGE_PAD = "<|image_pad|>"
VIDEO_PAD = "<|video_pad|>"
ENDOFTEXT = "<|endoftext|>"

SPECIAL_TOKENS = (
    ENDOFTEXT,
    IM_START,
    IM_END,
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    VISION_START,
    VISION_END,
    "<|vision_pad|>",
    IMAGE_PAD,
    VIDEO_PAD,
)
"""Qwen2.5-VL's special tokens, in the order of their ids (151643..151656 in the real model)."""

_ITEM_TEXT = {
    "image": VISION_START + IMAGE_PAD + VISION_END,
    "video": VISION_START + VIDEO_PAD + VISION_END,
}


def render_chat(messages: Sequence[dict[str, Any]], add_generation_prompt: bool = True) -> str:
    """The chat text of ``messages`` (string or item-list contents) in Qwen2.5-VL's format, with
    one pad token per image/video (before :func:`expand_vision_tokens`)."""
    turns = normalize_messages(messages)
    parts: list[str] = []
    if not turns or turns[0]["role"] != "system":
        parts.append(f"{IM_START}system\n{PLAIN_SYSTEM_PROMPT}{IM_END}\n")
    for turn in turns:
        body = "".join(
            item["text"] if item["type"] == "text" else _ITEM_TEXT[item["type"]]
            for item in turn["content"]
        )
        parts.append(f"{IM_START}{turn['role']}\n{body}{IM_END}\n")
    if add_generation_prompt:
        parts.append(f"{IM_START}assistant\n")
    return "".join(parts)


def expand_vision_tokens(
    text: str, image_tokens: Sequence[int], video_tokens: Sequence[int]
) -> str:
    """``text`` with the i-th ``<|image_pad|>`` repeated ``image_tokens[i]`` times and the i-th
    ``<|video_pad|>`` repeated ``video_tokens[i]`` times (tokens per item =
    ``grid_t * grid_h * grid_w / merge_size**2``)."""
    out: list[str] = []
    pos = 0
    counts = {IMAGE_PAD: list(image_tokens), VIDEO_PAD: list(video_tokens)}
    used = {IMAGE_PAD: 0, VIDEO_PAD: 0}
    while True:
        nxt = [(text.find(tok, pos), tok) for tok in (IMAGE_PAD, VIDEO_PAD)]
        nxt = [(i, tok) for i, tok in nxt if i >= 0]
        if not nxt:
            out.append(text[pos:])
            break
        i, tok = min(nxt)
        if used[tok] >= len(counts[tok]):
            raise ValueError(f"text has more {tok} than the {len(counts[tok])} given counts")
        out.append(text[pos:i] + tok * counts[tok][used[tok]])
        used[tok] += 1
        pos = i + len(tok)
    for tok, n in used.items():
        if n != len(counts[tok]):
            raise ValueError(f"text has {n} {tok} but {len(counts[tok])} counts were given")
    return "".join(out)


# vst's template for the format above. Jinja whitespace is explicit: every newline in the output
# is a "\n" literal, so the template's own line breaks (inside {%- -%}) add nothing.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "{{- '<|im_start|>system\\n" + PLAIN_SYSTEM_PROMPT + "<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}"
    "{{- message['content'] -}}"
    "{%- else -%}"
    "{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' or 'image' in item or 'image_url' in item -%}"
    "{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif item['type'] == 'video' or 'video' in item -%}"
    "{{- '<|vision_start|><|video_pad|><|vision_end|>' -}}"
    "{%- elif 'text' in item and item['text'] is not none -%}"
    "{{- item['text'] -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- endif -%}"
)
"""vst's Jinja chat template: renders exactly as :func:`render_chat` (tested)."""
