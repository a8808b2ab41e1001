"""``vst vla train CONFIG``: fine-tune a Qwen2.5-VL checkpoint on action tokens through vst's SFT
trainer (:func:`vst.train.trainer.build_trainer`: packing, optimizer groups, accelerate,
checkpoints, resume).

What the VLA stage adds before the trainer is built:

* **the split**: each data folder's episodes are split (``held_out`` of them, seeded, whole
  episodes) into training rows and held-out rows; the held-out episodes are recorded in
  ``vla.json``;
* **the action vocabulary**: "added" (the release): the 256 tokens ``<|action_b|>`` are added
  to the tokenizer, and the embeddings (and ``lm_head``) grow only when the tokenizer outgrows
  them (Qwen2.5-VL-3B/7B have 151,936 rows, enough for 151,665 + 256: the release's case, unused
  rows are reused); new rows start at the mean of the old ones (transformers' mean resizing,
  seeded). The processor with the tokens is saved to ``OUTPUT/processor`` and copied into
  every checkpoint, so :class:`vst.vla.policy.VLAPolicy` finds them. "last" (OpenVLA): the
  targets' placeholder ids are swapped for the last 256 ids of the base vocabulary after
  tokenisation (:class:`ActionCollator`); the checkpoint keeps its own tokenizer files;
* **scoring** (:mod:`vst.vla.train_eval`): action-token accuracy and L1 on the held-out split and
  on as many training samples, every ``eval_steps`` and at the end;
* **files for the policy**: ``norm_stats.json`` (copied from the data) and ``vla.json``
  (vocabulary, bins, action dimension, the action ids, the data and split) in the final model
  folder, which ``VLAPolicy(checkpoint)`` reads by default.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

from vst.train.collate import VLMCollator
from vst.train.config import ConfigError
from vst.train.data import mix
from vst.train.encode import Encoded
from vst.train.sources.base import ItemError
from vst.train.trainer import TrainResult, build_trainer, load_model, result_fields
from vst.train.trainer_common import checkpoint_to_resume
from vst.vla.action_tokens import ActionTokenizer
from vst.vla.norm_stats import load_norm_stats
from vst.vla.train_config import VlaTrainConfig
from vst.vla.train_data import LiberoParquetSource, SubsetSource, split_episodes
from vst.vla.train_eval import ActionEvalCallback

__all__ = [
    "VLA_FILE",
    "ActionCollator",
    "VlaTrainResult",
    "action_vocabulary",
    "run_vla_training",
]

VLA_FILE = "vla.json"
"""The policy settings a VLA checkpoint carries (vocabulary, bins, action dimension)."""


class ActionCollator(VLMCollator):
    """:class:`VLMCollator` whose encoded ids and labels have ``remap``'s keys replaced by its
    values (the "last" vocabulary: placeholder action ids -> the last ids of the vocabulary)."""

    def __init__(self, processor: Any, *, remap: dict[int, int] | None = None, **kw: Any):
        super().__init__(processor, **kw)
        self.remap = remap or {}
        if self.remap:
            self._keys = torch.tensor(sorted(self.remap), dtype=torch.long)
            self._values = torch.tensor([self.remap[k] for k in sorted(self.remap)])

    def _swap(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.searchsorted(self._keys, ids).clamp(max=len(self._keys) - 1)
        hit = self._keys[pos] == ids
        return torch.where(hit, self._values[pos], ids)

    def encode(self, example: Any) -> Encoded:
        enc = super().encode(example)
        if not self.remap:
            return enc
        return replace(enc, input_ids=self._swap(enc.input_ids), labels=self._swap(enc.labels))


def action_vocabulary(
    processor: Any, vocabulary: str, bins: int
) -> tuple[ActionTokenizer, dict[int, int]]:
    """The action tokenizer of the run's model and the id remap of its targets. Adds the
    ``<|action_b|>`` tokens to ``processor.tokenizer`` in both cases (the targets are written with
    them); for "last" the remap sends each to ``vocab_size - 1 - b``."""
    tokenizer = processor.tokenizer
    placeholders = ActionTokenizer(tokenizer, bins=bins, vocabulary="added")
    if vocabulary == "added":
        return placeholders, {}
    last = ActionTokenizer(tokenizer, bins=bins, vocabulary="last")
    remap = dict(zip(placeholders.allowed_ids(), last.allowed_ids(), strict=True))
    return last, remap


def _grow_embeddings(model: Any, size: int, seed: int) -> int:
    """Resize the input and output embeddings to ``size`` rows when they hold fewer; returns
    the rows after. Mean resizing draws from the old rows' distribution: seeded."""
    rows = int(model.get_input_embeddings().weight.shape[0])
    if size <= rows:
        return rows
    torch.manual_seed(seed)
    model.resize_token_embeddings(size)
    return int(model.get_input_embeddings().weight.shape[0])


def _subset(examples: Any, n: int, seed: int) -> list[Any]:
    """At most ``n`` examples of a source, a seeded choice in index order."""
    size = len(examples)
    pick = sorted(np.random.default_rng(seed).permutation(size)[: min(n, size)].tolist())
    out = []
    for i in pick:
        try:
            out.append(examples.load(i))
        except ItemError as exc:  # unusable rows are reported by the mix; not scored
            examples.skip(exc.id, exc.reason)
    return out


@dataclass(frozen=True)
class VlaTrainResult(TrainResult):
    """A VLA run: :class:`TrainResult` plus the held-out examples, the last scores per split
    and the eval file."""

    held_out: int = 0
    scores: dict[str, dict[str, Any]] | None = None
    eval_file: Path | None = None


def run_vla_training(
    config: VlaTrainConfig,
    *,
    resume: bool = False,
    where: str = "config",
    callbacks: list[TrainerCallback] | tuple[TrainerCallback, ...] = (),
    progress: bool = False,
) -> VlaTrainResult:
    """Fine-tune on the config's LIBERO parquet (module docstring); the final model, its
    processor, ``norm_stats.json`` and ``vla.json`` go into ``output_dir``."""
    from vst.models.processor import load_processor

    out = config.output_dir
    last = checkpoint_to_resume(out, resume, where)
    train_sources, held_sources, held_episodes = [], [], {}
    for i, entry in enumerate(config.data_sources(where)):
        if not entry.path.exists():
            raise ConfigError(f"{where}: data.{i}.path: {entry.path} does not exist")
        try:
            source = LiberoParquetSource(entry.label, entry.path, config.bins, config.action_dim)
            split = split_episodes(source.episodes(), config.held_out, config.seed + i)
        except ValueError as exc:
            raise ConfigError(f"{where}: data.{i}: {exc}") from None
        train_sources.append((SubsetSource(entry.label, source, split.train), entry.weight))
        held_sources.append(SubsetSource(f"{entry.label} (held out)", source, split.held_out))
        held_episodes[entry.label] = split.held_out_episodes
    try:
        examples, report = mix(
            [s for s, _ in train_sources], [w for _, w in train_sources], config.seed
        )
    except ValueError as exc:
        raise ConfigError(f"{where}: data: {exc}") from None

    stats_path = config.stats_path()
    stats = load_norm_stats(stats_path) if stats_path is not None else None
    processor = load_processor(config.model)
    tokens, remap = action_vocabulary(processor, config.vocabulary, config.bins)
    model = load_model(config)
    rows = _grow_embeddings(model, len(processor.tokenizer), config.seed)
    if max(tokens.allowed_ids()) >= rows:
        raise ConfigError(f"{where}: model: {rows} embedding rows cannot hold the action ids")
    processor_dir = config.model
    if config.vocabulary == "added":
        processor_dir = out / "processor"
        processor_dir.mkdir(parents=True, exist_ok=True)
        processor.save_pretrained(str(processor_dir))

    n = config.eval_samples
    held = [e for s in held_sources if len(s) for e in _subset(s, n, config.seed)][:n]
    seen = [e for s, _ in train_sources for e in _subset(s, n, config.seed + 1)][:n]
    scorer = ActionCollator(
        processor,
        remap=remap,
        max_length=config.max_length,
        packing=False,
        system=None,
        limits=config.pixel_limits(),
        rope_index=model.model.get_rope_index,
    )
    evaluator = ActionEvalCallback(
        out,
        {"held_out": held, "train": seen},
        scorer,
        tokens,
        stats,
        config.eval_every,
        config.eval_batch_size,
    )
    trainer = build_trainer(
        config,
        examples,
        callbacks=[evaluator, *callbacks],
        progress=progress,
        model=model,
        processor=processor,
        processor_dir=processor_dir,
        collator_class=partial(ActionCollator, remap=remap),
    )
    trainer.train(resume_from_checkpoint=last)
    trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        if stats_path is not None:
            shutil.copyfile(stats_path, out / "norm_stats.json")
        info = {
            "vocabulary": config.vocabulary,
            "bins": config.bins,
            "action_dim": config.action_dim,
            "action_ids": tokens.allowed_ids(),
            "data": [str(e.path) for e in config.data_sources(where)],
            "held_out_episodes": held_episodes,
            "seed": config.seed,
        }
        (out / VLA_FILE).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return VlaTrainResult(
        **result_fields(trainer, out, report, last, len(examples)),
        held_out=sum(len(s) for s in held_sources),
        scores=dict(evaluator.last),
        eval_file=evaluator.jsonl,
    )
