"""One training example as model tensors: token ids, loss labels, pictures and mRoPE positions.

:func:`encode_example` renders the example's chat with the checkpoint's own chat template
(:func:`vst.models.processor.model_inputs`, no generation prompt, no padding), pictures fitted to
their model size once (:func:`vst.models.vision.fit_request`), and returns an :class:`Encoded`.

Loss mask (:func:`assistant_labels`): a token is trained (its label is its id) when it lies in an
assistant turn, after the turn's ``<|im_start|>assistant\\n`` header, up to and including the
turn's closing ``<|im_end|>`` (the model must learn to stop); every other token is ``-100``:
system and user turns, the header, the ``\\n`` after ``<|im_end|>``, and image / video pad tokens
anywhere. Every assistant turn of a multi-turn chat is trained. Turns are found from the token
ids (``<|im_start|>`` ... ``<|im_end|>``; the role is the decoded text up to the first newline),
never by tokenising pieces of the chat again. Should the byte-level BPE merge the header's
newline with the first characters of the content into one token, that token is trained (it
carries content).

This differs from the VST release, whose labels also cover the ``<|im_start|>assistant\\n``
header of each assistant turn (VST-RELEASE.md §2): the header is always given at inference (the
generation prompt), so vst does not spend loss on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from vst.engine.imaging import PATCH_FACTOR, smart_resize
from vst.models.chat import IM_END, IM_START, IMAGE_PAD, VIDEO_PAD
from vst.models.processor import model_inputs
from vst.models.prompts import with_system
from vst.models.requests import Request
from vst.models.vision import PixelLimits
from vst.train.examples import TrainExample

__all__ = [
    "IGNORE_INDEX",
    "VISION_KEYS",
    "Encoded",
    "assistant_labels",
    "encode_example",
    "encoded_length",
]

IGNORE_INDEX = -100
"""Label of a token that is not trained (PyTorch's cross-entropy ``ignore_index``)."""

VISION_KEYS = (
    "pixel_values",
    "image_grid_thw",
    "pixel_values_videos",
    "video_grid_thw",
    "second_per_grid_ts",
)
"""The processor outputs that belong to an example's pictures (concatenated along dim 0 when
examples are batched)."""

RopeIndex = Callable[..., tuple[torch.Tensor, torch.Tensor]]
"""``model.model.get_rope_index`` of a Qwen2.5-VL model: ``(input_ids, mm_token_type_ids,
image_grid_thw, video_grid_thw, second_per_grid_ts, attention_mask) -> (positions [3, B, L],
deltas)``."""


@dataclass(frozen=True)
class Encoded:
    """One encoded example: ``input_ids``, ``labels`` and ``mm_token_type_ids`` (``[L]``,
    int64; type 0 text, 1 image pad, 2 video pad), ``rope_positions`` (``[3, L]`` mRoPE
    (time, height, width) positions, or None when no ``rope_index`` was given), ``vision``
    (the example's :data:`VISION_KEYS` tensors that exist) and its ``id`` / ``source``."""

    id: str
    source: str
    input_ids: torch.Tensor
    labels: torch.Tensor
    mm_token_type_ids: torch.Tensor
    rope_positions: torch.Tensor | None = None
    vision: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def length(self) -> int:
        """Number of tokens."""
        return int(self.input_ids.shape[0])

    @property
    def text_positions(self) -> torch.Tensor:
        """The 1-D text positions ``0 .. L-1`` (``[L]``, int64); packing restarts them per
        example."""
        return torch.arange(self.length, dtype=torch.long)


def _token_id(tokenizer: Any, token: str) -> int:
    tid = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(tid, int) or tid == getattr(tokenizer, "unk_token_id", None):
        raise ValueError(f"the tokenizer has no {token} token (not a Qwen2.5-VL tokenizer?)")
    return tid


def assistant_labels(ids: Sequence[int], tokenizer: Any) -> list[int]:
    """Labels for token ``ids`` of a rendered chat (see the module docstring): the id on every
    assistant content token and closing ``<|im_end|>``, :data:`IGNORE_INDEX` elsewhere. Raises
    ``ValueError`` when a turn has no closing ``<|im_end|>`` or no newline after its role."""
    ids = [int(i) for i in ids]
    start, end = _token_id(tokenizer, IM_START), _token_id(tokenizer, IM_END)
    pads = {_token_id(tokenizer, IMAGE_PAD), _token_id(tokenizer, VIDEO_PAD)}
    labels = [IGNORE_INDEX] * len(ids)
    i = 0
    while i < len(ids):
        if ids[i] != start:
            i += 1
            continue
        try:
            close = ids.index(end, i + 1)
        except ValueError:
            raise ValueError(f"turn at token {i} has no closing {IM_END}") from None
        # the header: tokens after <|im_start|> up to the one that completes "role\n"
        k = i + 1
        while k < close and "\n" not in tokenizer.decode(ids[i + 1 : k + 1]):
            k += 1
        if k == close:
            raise ValueError(f"turn at token {i} has no newline after its role")
        header = tokenizer.decode(ids[i + 1 : k + 1])
        role, _, rest = header.partition("\n")
        if role == "assistant":
            first = k if rest else k + 1  # a token carrying content past the newline is trained
            for j in range(first, close + 1):
                if ids[j] not in pads:
                    labels[j] = ids[j]
        i = close + 1
    return labels


def encode_example(
    processor: Any,
    example: TrainExample,
    *,
    system: str | None = None,
    limits: PixelLimits | None = None,
    rope_index: RopeIndex | None = None,
) -> Encoded:
    """``example`` encoded for training: its chat (``system`` put first when it has no system
    turn; with neither, the chat template's default system prompt) rendered by the
    checkpoint's template, pictures fitted to ``limits`` (engine defaults), labels per
    :func:`assistant_labels`, and its mRoPE positions from ``rope_index``
    (``model.model.get_rope_index``) when given."""
    request = Request(
        with_system(example.messages, system), example.images, example.videos, id=example.id
    )
    batch = model_inputs(
        processor,
        [request],
        limits,
        add_generation_prompt=False,
        padding_side="right",
        return_tensors="pt",
    )
    input_ids = batch["input_ids"][0].long()
    mm_types = batch.get("mm_token_type_ids")
    if mm_types is None:
        raise ValueError("the processor returns no mm_token_type_ids (transformers >= 5 needed)")
    mm_types = mm_types[0].long()
    labels = torch.tensor(assistant_labels(input_ids.tolist(), processor.tokenizer))
    vision = {k: torch.as_tensor(batch[k]) for k in VISION_KEYS if batch.get(k) is not None}
    rope = None
    if rope_index is not None:
        with torch.no_grad():
            positions, _ = rope_index(
                input_ids=input_ids[None],
                mm_token_type_ids=mm_types[None],
                image_grid_thw=vision.get("image_grid_thw"),
                video_grid_thw=vision.get("video_grid_thw"),
                second_per_grid_ts=vision.get("second_per_grid_ts"),
                attention_mask=None,
            )
        rope = positions[:, 0].long()
    return Encoded(example.id, example.source, input_ids, labels, mm_types, rope, vision)


def encoded_length(
    processor: Any,
    example: TrainExample,
    *,
    system: str | None = None,
    limits: PixelLimits | None = None,
) -> int:
    """The number of tokens :func:`encode_example` gives ``example`` (same template, same
    system rule, same picture sizes), computed from the picture sizes alone: no pixels are
    resized or cut into patches. For planning packed rows before encoding."""
    limits = limits or PixelLimits()
    messages = with_system(example.messages, system)
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    tokens = len(processor.tokenizer(text, add_special_tokens=False)["input_ids"])
    vision = processor.image_processor
    per_token = (vision.patch_size * vision.merge_size) ** 2  # pixels per merged token
    counts = []
    for image in example.images:
        h, w = smart_resize(
            image.height, image.width, PATCH_FACTOR, limits.min_pixels, limits.max_pixels
        )
        counts.append(h * w // per_token)
    steps = processor.video_processor.temporal_patch_size
    for video in example.videos:
        first = video.frames[0]
        h, w = smart_resize(
            first.height,
            first.width,
            PATCH_FACTOR,
            limits.video_min_pixels,
            limits.video_max_pixels,
        )
        counts.append(-(-len(video.frames) // steps) * (h * w // per_token))
    return tokens + sum(c - 1 for c in counts)  # each item's one pad token becomes c tokens
