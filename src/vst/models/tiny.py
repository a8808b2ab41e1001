"""A tiny, randomly initialised Qwen2.5-VL checkpoint built offline (``vst models tiny``).

Tests, the demo and CPU smokes need a real Qwen2.5-VL (same classes, same processor, same chat
format, same special tokens) that loads in a second and needs no download. This builds one:

* a byte-level BPE tokenizer (Qwen2's pre-tokenizer) trained on vst's own prompt text: every
  string constant of the data engine's modules (question phrasings, instructions, option
  words), the system prompts, numbers and the 3D-box answer syntax; then Qwen2.5-VL's special
  tokens (:data:`vst.models.chat.SPECIAL_TOKENS`), ``<|im_end|>`` as end of sequence and
  ``<|endoftext|>`` as padding, and vst's chat template (renders exactly as Qwen2.5-VL's);
* a ``Qwen2_5_VLConfig`` with a 2-layer, 64-wide language model and a 2-block, 32-wide vision
  tower (the real patch 14, merge 2, temporal patch 2, mRoPE), a few hundred thousand
  parameters, float32 weights from ``torch.manual_seed(seed)``;
* processor files under the real class names (``Qwen2_5_VLProcessor``,
  ``Qwen2VLImageProcessor``, ``Qwen2VLVideoProcessor``), so ``AutoProcessor`` loads it where
  torchvision works and :func:`vst.models.processor.load_processor` everywhere; pixel limits are
  the engine's.

Same arguments, same bytes: the corpus is sorted, BPE training and weight initialisation are
seeded, and every JSON file is written with sorted keys.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vst.atomic import file_mode
from vst.engine.imaging import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS
from vst.models.chat import CHAT_TEMPLATE, ENDOFTEXT, IM_END, SPECIAL_TOKENS
from vst.models.processor import CLIP_MEAN, CLIP_STD
from vst.models.prompts import PLAIN_SYSTEM_PROMPT, THINK_SYSTEM_PROMPT

__all__ = ["TinyCheckpoint", "build_tiny", "prompt_corpus"]

VOCAB_SIZE = 1024
"""Target vocabulary of the trained BPE (special tokens come on top)."""


def _strings(value: Any, depth: int = 0) -> Iterator[str]:
    if depth > 4:
        return
    if isinstance(value, str):
        if value.strip():
            yield value
    elif isinstance(value, list | tuple | frozenset | set):
        for item in value:
            yield from _strings(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, depth + 1)
            yield from _strings(item, depth + 1)


def _engine_strings() -> set[str]:
    """Every string constant of ``vst.engine``'s modules and of the classes they define."""
    import vst.engine as engine

    found: set[str] = set()
    names = sorted(m.name for m in pkgutil.walk_packages(engine.__path__, "vst.engine."))
    for name in names:
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if attr.startswith("__"):
                continue
            if isinstance(value, type) and value.__module__ == name:
                for cattr, cvalue in vars(value).items():
                    if not cattr.startswith("__"):
                        found.update(_strings(cvalue))
            else:
                found.update(_strings(value))
    return found


def prompt_corpus() -> list[str]:
    """The tokenizer's training text: vst's prompt strings, system prompts, numbers and box
    answers, sorted (deterministic)."""
    texts = _engine_strings()
    texts.update((PLAIN_SYSTEM_PROMPT, THINK_SYSTEM_PROMPT))
    texts.update(f"{i}" for i in range(100))
    texts.update(f"{i / 100:.2f}" for i in range(-100, 1000, 7))
    texts.add(
        '```json\n[\n\t{"bbox_3d": [0.12, -0.3, 2.45, 0.5, 0.9, 0.48, 0.0, -0.25, 0.0], '
        '"label": "chair"}\n]\n```'
    )
    texts.add("<think> The chair is closer than the table. </think> B. chair")
    return sorted(texts)


@dataclass(frozen=True)
class TinyCheckpoint:
    """What :func:`build_tiny` made: the folder, parameter counts and vocabulary size."""

    path: Path
    parameters: int
    vision_parameters: int
    vocab_size: int


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _processor_files(out: Path, min_pixels: int, max_pixels: int) -> None:
    layout = {
        "patch_size": 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "image_mean": list(CLIP_MEAN),
        "image_std": list(CLIP_STD),
        "rescale_factor": 1 / 255,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "resample": 3,
        "size": {"shortest_edge": min_pixels, "longest_edge": max_pixels},
    }
    _write_json(
        out / "processor_config.json",
        {
            "processor_class": "Qwen2_5_VLProcessor",
            "image_processor": {**layout, "image_processor_type": "Qwen2VLImageProcessor"},
            "video_processor": {
                **layout,
                "video_processor_type": "Qwen2VLVideoProcessor",
                "do_sample_frames": False,
                "min_frames": 4,
                "max_frames": 768,
            },
        },
    )
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE, encoding="utf-8")


def _tokenizer(corpus: Iterable[str], vocab_size: int) -> Any:
    from transformers import Qwen2Tokenizer

    tok = Qwen2Tokenizer().train_new_from_iterator(
        list(corpus), vocab_size=vocab_size, show_progress=False
    )
    tok.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS[1:])})
    tok.eos_token = IM_END
    tok.pad_token = ENDOFTEXT
    tok.model_max_length = 32768
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build_tiny(
    out: str | Path,
    seed: int = 0,
    vocab_size: int = VOCAB_SIZE,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> TinyCheckpoint:
    """Write the tiny checkpoint into ``out`` (created; its files are replaced one by one, each
    whole: the checkpoint is built in a temporary sibling folder first)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        info = _build_into(stage, seed, vocab_size, min_pixels, max_pixels)
        out.mkdir(exist_ok=True)
        mode = file_mode()
        for path in sorted(stage.iterdir()):  # each file lands whole (os.replace)
            os.chmod(path, mode)
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return TinyCheckpoint(out, *info)


def _build_into(
    out: Path, seed: int, vocab_size: int, min_pixels: int, max_pixels: int
) -> tuple[int, int, int]:
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # vst reports what it built; no per-shard bars
    tok = _tokenizer(prompt_corpus(), vocab_size)
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    hidden = 64
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tok),
            "hidden_size": hidden,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 32768,
            # mRoPE sections (time, height, width) must sum to head_dim / 2 = 8
            "rope_parameters": {
                "rope_type": "default",
                "mrope_section": [2, 3, 3],
                "rope_theta": 1000000.0,
            },
            "bos_token_id": ids[ENDOFTEXT],
            "eos_token_id": ids[IM_END],
            "pad_token_id": ids[ENDOFTEXT],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 4,
            "out_hidden_size": hidden,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "fullatt_block_indexes": [1],
            "tokens_per_second": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).float().eval()
    model.generation_config.eos_token_id = ids[IM_END]
    model.generation_config.pad_token_id = ids[ENDOFTEXT]
    model.generation_config.do_sample = False
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    # the tokenizer records the processor it belongs to: the real class, not a local subclass
    tok_cfg_path = out / "tokenizer_config.json"
    tok_cfg = json.loads(tok_cfg_path.read_text(encoding="utf-8"))
    tok_cfg["processor_class"] = "Qwen2_5_VLProcessor"
    _write_json(tok_cfg_path, tok_cfg)
    _processor_files(out, min_pixels, max_pixels)
    n = sum(p.numel() for p in model.parameters())
    nv = sum(p.numel() for name, p in model.named_parameters() if ".visual." in f".{name}")
    return n, nv, len(tok)
