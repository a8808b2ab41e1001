"""A fine-tuned Qwen2.5-VL as a robot policy: (image, instruction) -> one 7-D action.

What :meth:`VLAPolicy.act_batch` does, in order (the training sample's form, VST-RELEASE.md §4):

1. the image (``(H, W, 3)`` uint8 RGB array or PIL image, as the environment renders it) is
   rotated 180° (:func:`vst.vla.convert.rotate_180`) when ``rotate`` is set, then fitted to the
   model size by :func:`vst.models.vision.fit_image` (Qwen2.5-VL smart resize: 256 x 256 ->
   252 x 252 with the default :class:`~vst.models.vision.PixelLimits`);
2. the chat is one user turn ``[image, prompt_for(instruction)]`` with no system turn (the chat
   template then adds the default system text, as the release's training does);
3. greedy decoding of exactly D new tokens (D = the norm stats' dimension, 7 for LIBERO), every
   step constrained to the action ids (:class:`~vst.vla.action_tokens.ActionLogitsProcessor`),
   batched with left padding;
4. ids -> bin centres in [-1, 1] -> :func:`~vst.vla.norm_stats.unnormalize` with the dataset's
   statistics; the gripper dim (``stats.gripper_dim``) is the decoded unit gripper (-1 open,
   +1 close) snapped to -1/+1 (0 counts as close) and mapped to the environment's convention
   (:func:`~vst.vla.norm_stats.to_env_gripper`, LIBERO: -1 open / +1 close). Statistics without
   a ``gripper_dim`` get no gripper mapping (load them with ``gripper_dim=6`` to state it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from vst.models.requests import Request
from vst.models.vision import PixelLimits
from vst.vla.action_tokens import ActionTokenizer, action_token
from vst.vla.convert import prompt_for, rotate_180
from vst.vla.norm_stats import (
    LIBERO_ENV_GRIPPER,
    GripperConvention,
    NormStats,
    load_norm_stats,
    to_env_gripper,
    unnormalize,
)

__all__ = ["VLAPolicy", "as_rgb_array"]

ImageLike = np.ndarray | Image.Image


def as_rgb_array(image: Any, where: str = "image") -> np.ndarray:
    """``image`` as an ``(H, W, 3)`` uint8 array (a PIL image is converted to RGB); anything
    else is a ValueError naming ``where``."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if (
        not isinstance(image, np.ndarray)
        or image.ndim != 3
        or image.shape[2] != 3
        or image.dtype != np.uint8
        or 0 in image.shape
    ):
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise ValueError(f"{where}: expected an (H, W, 3) uint8 array, got {shape} {dtype}")
    return image


def _added_ids(tokenizer: Any, bins: int, checkpoint: Path) -> None:
    """Raise unless all ``bins`` added action tokens are already in ``tokenizer``."""
    vocab = tokenizer.get_vocab()
    missing = [action_token(b) for b in range(bins) if action_token(b) not in vocab]
    if missing:
        raise ValueError(
            f"{checkpoint}: the tokenizer lacks {len(missing)} of the {bins} action tokens "
            f"(first {missing[0]}); train with vocabulary 'added' or use vocabulary 'last'"
        )


def _vla_settings(checkpoint: Path) -> dict[str, Any]:
    """The ``vla.json`` a ``vst vla train`` run leaves in its checkpoint ({} without one)."""
    path = checkpoint / "vla.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not readable JSON ({exc})") from None
    return data if isinstance(data, dict) else {}


class VLAPolicy:
    """A Qwen2.5-VL checkpoint fine-tuned on action tokens, as a policy (see the module
    docstring). ``norm_stats``: a :class:`NormStats` or a ``norm_stats.json`` path (default:
    the checkpoint's ``norm_stats.json``); ``vocabulary``: "added" (``<|action_b|>`` tokens,
    which the checkpoint's tokenizer must already hold) or "last" (the last 256 ids of the base
    vocabulary); ``vocabulary`` and ``bins`` default to the checkpoint's ``vla.json`` (written
    by ``vst vla train``), else "added" and 256; ``dtype`` of the weights
    (float32 by default; bfloat16 on a GPU). Not thread-safe."""

    def __init__(
        self,
        checkpoint: str | Path,
        norm_stats: NormStats | str | Path | None = None,
        vocabulary: Literal["added", "last"] | None = None,
        rotate: bool = True,
        env_gripper: GripperConvention = LIBERO_ENV_GRIPPER,
        device: str = "cpu",
        limits: PixelLimits | None = None,
        bins: int | None = None,
        dtype: Literal["float32", "bfloat16", "float16"] = "float32",
    ) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        from transformers import AutoModelForImageTextToText
        from transformers.utils import logging as hf_logging

        from vst.models.backends.base import BackendError
        from vst.models.processor import load_processor

        self.checkpoint = Path(checkpoint)
        if not (self.checkpoint / "config.json").is_file():
            raise ValueError(f"{self.checkpoint}: no config.json (not a model directory)")
        saved = _vla_settings(self.checkpoint)
        vocabulary = vocabulary or saved.get("vocabulary", "added")
        bins = bins or int(saved.get("bins", 256))
        if norm_stats is None:
            norm_stats = self.checkpoint / "norm_stats.json"
            if not norm_stats.is_file():
                raise ValueError(f"{self.checkpoint}: no norm_stats.json; give norm_stats")
        if vocabulary not in ("added", "last"):
            raise ValueError(f"vocabulary must be 'added' or 'last', not {vocabulary!r}")
        dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
        if dtype not in dtypes:
            raise ValueError(f"dtype must be one of {sorted(dtypes)}, not {dtype!r}")
        self.dtype = dtypes[dtype]
        self.stats = (
            norm_stats if isinstance(norm_stats, NormStats) else load_norm_stats(norm_stats)
        )
        self.rotate = rotate
        self.env_gripper = env_gripper
        self.device = device
        self.limits = limits or PixelLimits()
        self.vocabulary = vocabulary
        hf_logging.disable_progress_bar()
        try:
            self.processor = load_processor(self.checkpoint)
        except BackendError as exc:
            raise ValueError(str(exc)) from None
        tokenizer = self.processor.tokenizer
        if vocabulary == "added":
            _added_ids(tokenizer, bins, self.checkpoint)
        self.action_tokenizer = ActionTokenizer(tokenizer, bins=bins, vocabulary=vocabulary)
        try:
            model = AutoModelForImageTextToText.from_pretrained(
                str(self.checkpoint), dtype=self.dtype
            )
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self.checkpoint}: cannot load the model ({exc})") from None
        self.model = model.to(device).eval()
        rows = int(self.model.get_output_embeddings().weight.shape[0])
        top = max(self.action_tokenizer.allowed_ids())
        if top >= rows:
            raise ValueError(
                f"{self.checkpoint}: action id {top} is beyond the model's {rows} output rows"
            )
        self.model_id = self.checkpoint.resolve().name

    @property
    def action_dim(self) -> int:
        """D, the number of tokens per action (the statistics' dimension)."""
        return self.stats.dim

    def requests(self, images: Sequence[ImageLike], instructions: Sequence[str]) -> list[Request]:
        """The chats the model is asked: each image checked, rotated (when ``rotate``), as PIL;
        user turn ``[image, prompt_for(instruction)]``, no system turn."""
        if len(images) != len(instructions):
            raise ValueError(f"{len(images)} images for {len(instructions)} instructions")
        out = []
        for i, (image, instruction) in enumerate(zip(images, instructions, strict=True)):
            if not isinstance(instruction, str) or not instruction.strip():
                raise ValueError(f"instructions[{i}]: expected a non-empty string")
            arr = as_rgb_array(image, f"images[{i}]")
            if self.rotate:
                arr = rotate_180(arr)
            messages = [
                {
                    "role": "user",
                    "content": [
                        {"type": "image"},
                        {"type": "text", "text": prompt_for(instruction)},
                    ],
                }
            ]
            out.append(Request(messages, (Image.fromarray(arr),)))
        return out

    def generate_ids(self, images: Sequence[ImageLike], instructions: Sequence[str]) -> np.ndarray:
        """The generated token ids ``(N, D)`` (int64), constrained to action ids."""
        import torch
        from transformers import LogitsProcessorList

        from vst.models.processor import model_inputs

        if len(images) == 0:
            return np.zeros((0, self.action_dim), dtype=np.int64)
        batch = model_inputs(self.processor, self.requests(images, instructions), self.limits)
        batch = batch.to(self.device)
        if "pixel_values" in batch:
            batch["pixel_values"] = batch["pixel_values"].to(self.dtype)
        tok = self.processor.tokenizer
        with torch.inference_mode():
            out = self.model.generate(
                **batch,
                max_new_tokens=self.action_dim,
                min_new_tokens=self.action_dim,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                num_beams=1,
                repetition_penalty=1.0,  # plain greedy, whatever the generation config says
                no_repeat_ngram_size=0,
                pad_token_id=tok.pad_token_id,
                logits_processor=LogitsProcessorList([self.action_tokenizer.logits_processor()]),
            )
        ids = out[:, batch["input_ids"].shape[1] :].cpu().numpy().astype(np.int64)
        if ids.shape != (len(images), self.action_dim):
            raise RuntimeError(f"generation returned ids of shape {ids.shape}")
        return ids

    def actions_from_ids(self, ids: Any) -> np.ndarray:
        """Action ids ``(N, D)`` -> environment actions ``(N, D)`` float64 (step 4 of the
        module docstring)."""
        unit = self.action_tokenizer.decode_batch(ids)
        actions = np.atleast_2d(unnormalize(unit, self.stats))
        g = self.stats.gripper_dim
        if g is not None:
            actions[:, g] = to_env_gripper(unit[:, g], self.env_gripper, binarize=True)
        return actions

    def act_batch(self, images: Sequence[ImageLike], instructions: Sequence[str]) -> np.ndarray:
        """Actions ``(N, D)`` for N (image, instruction) pairs, one batched generation."""
        return self.actions_from_ids(self.generate_ids(images, instructions))

    def act(self, image: ImageLike, instruction: str) -> np.ndarray:
        """One action ``(D,)`` (7 for LIBERO: 6-D end-effector delta + gripper -1/+1)."""
        return self.act_batch([image], [instruction])[0]

    def __repr__(self) -> str:
        return f"VLAPolicy({str(self.checkpoint)!r}, vocabulary={self.vocabulary!r})"
