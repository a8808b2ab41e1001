"""Stage 3: GRPO in its DAPO form on TRL's ``GRPOTrainer``, with vst's rewards and real online
filtering (dynamic sampling).

:class:`VstGRPOTrainer` keeps TRL's loop, generation (transformers, or vLLM in colocate or
server mode on GPUs), loss (``dapo`` by default: token-mean, clip 0.2 / 0.28), advantages and
logging, and changes:

* **online filtering** (:meth:`VstGRPOTrainer._generate_and_score_completions`): after a rollout
  is scored, prompt groups whose accuracy is all 0 or all 1 are dropped
  (:func:`vst.train.dynamic_sampling.keep_groups`), fresh prompts are drawn and rolled out until
  the batch has as many groups as it started with, up to ``max_rounds`` refill rounds; the kept
  rows of every round become one batch (:func:`~vst.train.dynamic_sampling. gather_rows`: picture
  patches copied once) and ``num_items_in_batch`` is recounted. Refill prompts come from a
  generator seeded by the run seed, the optimizer step, the micro-step, the round and the process
  (:func:`~vst.train.dynamic_sampling.refill_indices`), so a resumed run refills as the original
  did. When the rounds run out, dropped groups fill the rest (their advantage is 0: the batch
  keeps its size and the step's metrics count them). Every process runs the same number of rounds
  with the same number of prompts (TRL gathers rewards across processes), and each prompt's group
  stays on one process (:meth:`vst.train.grpo_config.GrpoConfig. batch_plan`);
* **metrics** (:mod:`vst.train.rl_metrics`): accuracy and format per task and per mode,
  completion lengths, the truncated share and the filter's counts, added to TRL's logs, written
  to ``metrics.jsonl`` and drawn into ``metrics.png``;
* **data order**: TRL's repeat sampler with its permutation seeded by ``seed + epoch``
  (:class:`EpochRepeatSampler`), so every epoch has its own order and a run resumed in a later
  epoch continues with that epoch's order;
* optimizer groups, weight loading on resume and processor files in every checkpoint as in SFT
  (:class:`~vst.train.trainer_common.VstTrainerMixin`).

:func:`run_grpo` does a whole run from a :class:`~vst.train.grpo_config.GrpoConfig`.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate.utils import gather_object
from transformers import PrinterCallback, TrainerCallback
from trl import GRPOConfig, GRPOTrainer
from trl.trainer.utils import RepeatSampler

from vst.models.chat import IMAGE_PAD, VIDEO_PAD, VISION_END, VISION_START
from vst.train.config import ConfigError
from vst.train.data import mix, open_source, source_from_dict
from vst.train.dynamic_sampling import gather_rows, keep_groups, refill_indices
from vst.train.grpo_config import FilterConfig, GrpoConfig
from vst.train.manifest import write_manifest
from vst.train.rl_data import RLPrompts
from vst.train.rl_metrics import GrpoMetricsCallback, RolloutStats
from vst.train.rl_reward import RolloutScorer, Score, score_any
from vst.train.trainer import load_model
from vst.train.trainer_common import VstTrainerMixin, checkpoint_to_resume, run_arguments

__all__ = [
    "EpochRepeatSampler",
    "GrpoResult",
    "VstGRPOTrainer",
    "accept_text_only_rows",
    "build_grpo_trainer",
    "grpo_arguments",
    "load_rl_prompts",
    "run_grpo",
    "vision_token_ids",
]

log = logging.getLogger(__name__)


class EpochRepeatSampler(RepeatSampler):
    """TRL's ``RepeatSampler`` whose permutation comes from ``seed + epoch`` (the Trainer calls
    :meth:`set_epoch`), not from one generator advanced across epochs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Any:
        if self.shuffle:
            self.generator = torch.Generator()
            self.generator.manual_seed(int(self.seed or 0) + self.epoch)
        return super().__iter__()


class VstGRPOTrainer(VstTrainerMixin, GRPOTrainer):
    """TRL's ``GRPOTrainer`` with online filtering and vst's metrics (module docstring).

    ``scorer``: the reward function (its per-completion accuracies drive the filter);
    ``prompts``: the :class:`~vst.train.rl_data.RLPrompts` behind ``train_dataset`` (refill
    rows are built from it); ``filter_config``: the filter's bounds and rounds."""

    def __init__(
        self,
        model: Any,
        args: GRPOConfig,
        train_dataset: Any,
        processing_class: Any,
        *,
        scorer: RolloutScorer,
        prompts: RLPrompts,
        filter_config: FilterConfig,
        vision_learning_rate: float,
        completions_per_round: int = 0,
        source_dir: str | Path | None = None,
        callbacks: Sequence[TrainerCallback] = (),
    ) -> None:
        self.vision_learning_rate = vision_learning_rate
        self.source_dir = Path(source_dir) if source_dir is not None else None
        self.scorer = scorer
        self.prompts = prompts
        self.filter_config = filter_config
        self.completions_per_round = completions_per_round
        self.rollout_stats = RolloutStats()
        self._skips_reported = 0
        super().__init__(
            model=model,
            reward_funcs=[scorer],
            args=args,
            train_dataset=train_dataset,
            processing_class=processing_class,
            callbacks=list(callbacks),
        )
        pad = self._tokenizer.pad_token_id
        scorer.end_ids = {int(i) for i in self.eos_token_ids} | (
            {int(pad)} if pad is not None else set()
        )
        self.remove_callback(PrinterCallback)  # metrics.jsonl has every logged step
        self.metrics = GrpoMetricsCallback(args.output_dir)
        self.add_callback(self.metrics)

    # -- data order ------------------------------------------------------------------------
    def _get_train_sampler(self, dataset: Any = None) -> Any:
        return EpochRepeatSampler(
            data_source=self.train_dataset if dataset is None else dataset,
            mini_repeat_count=self.num_generations,
            batch_size=self.args.generation_batch_size // self.num_generations,
            repeat_count=self.num_iterations * self.args.steps_per_generation,
            shuffle=self.shuffle_dataset,
            seed=self.args.seed,
        )

    # -- text-only rows -----------------------------------------------------------------------
    def _get_per_token_logps_and_entropies(
        self,
        model: Any,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        logits_to_keep: int,
        batch_size: int | None = None,
        compute_entropy: bool = False,
        compute_aux_loss: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """TRL's forward over chunks of ``batch_size`` rows, except that a chunk whose prompts
        have no picture (text-only data beside spatial samples) goes without image tensors:
        Qwen2.5-VL's vision tower fails on an empty image grid, which TRL would pass it."""
        n = input_ids.size(0)
        size = batch_size or n
        num_images = kwargs.get("num_images")
        grid, pixels = kwargs.get("image_grid_thw"), kwargs.get("pixel_values")
        per_row = ("mm_token_type_ids", "token_type_ids")
        others = [
            k
            for k, v in kwargs.items()
            if v is not None and k not in (*per_row, "num_images", "image_grid_thw", "pixel_values")
        ]
        if (
            num_images is None
            or grid is None
            or pixels is None
            or others
            or all(sum(num_images[i : i + size]) for i in range(0, n, size))
        ):
            return super()._get_per_token_logps_and_entropies(
                model,
                input_ids,
                attention_mask,
                logits_to_keep,
                batch_size=batch_size,
                compute_entropy=compute_entropy,
                compute_aux_loss=compute_aux_loss,
                **kwargs,
            )
        first_image = np.concatenate([[0], np.cumsum(num_images)]).astype(int)
        first_patch = np.concatenate([[0], np.cumsum(grid.prod(-1).tolist())]).astype(int)
        logps, entropies, aux = [], [], []
        for start in range(0, n, size):
            end = min(start + size, n)
            chunk = {k: kwargs[k][start:end] for k in per_row if kwargs.get(k) is not None}
            i0, i1 = int(first_image[start]), int(first_image[end])
            if i1 > i0:
                chunk["num_images"] = list(num_images[start:end])
                chunk["image_grid_thw"] = grid[i0:i1]
                chunk["pixel_values"] = pixels[int(first_patch[i0]) : int(first_patch[i1])]
            lp, ent, ax = super()._get_per_token_logps_and_entropies(
                model,
                input_ids[start:end],
                attention_mask[start:end],
                logits_to_keep,
                batch_size=end - start,
                compute_entropy=compute_entropy,
                compute_aux_loss=compute_aux_loss,
                **chunk,
            )
            logps.append(lp)
            if ent is not None:
                entropies.append(ent)
            if ax is not None:
                aux.append(ax)
        return (
            torch.cat(logps, dim=0),
            torch.cat(entropies, dim=0) if entropies else None,
            torch.stack(aux).mean() if aux else None,
        )

    # -- online filtering ------------------------------------------------------------------
    def _max_over_processes(self, values: Sequence[float]) -> list[float]:
        """Element-wise max of ``values`` over all processes."""
        t = torch.tensor([float(v) for v in values], device=self.accelerator.device)
        if self.accelerator.num_processes > 1:
            t = self.accelerator.gather(t.unsqueeze(0)).max(dim=0).values
        return [float(v) for v in t.cpu()]

    def _write_completions(self, keep: np.ndarray | None) -> None:
        """The first ``completions_per_round`` completions of the round (process 0) as JSON lines:
        step, sample id, task, mode, the text, accuracy, format, truncation and whether the
        filter kept its group."""
        if not self.completions_per_round or not self.accelerator.is_main_process:
            return
        path = Path(self.args.output_dir) / "completions.jsonl"
        G = self.num_generations
        with path.open("a", encoding="utf-8") as f:
            for k, s in enumerate(self.scorer.last[: self.completions_per_round]):
                record = {
                    "step": self.state.global_step + 1,
                    "id": s.id,
                    "task": s.task,
                    "mode": s.mode,
                    "completion": s.text,
                    "accuracy": s.accuracy,
                    "format": s.format,
                    "truncated": s.truncated,
                    "kept": None if keep is None else bool(keep[k // G]),
                }
                f.write(json.dumps(record, ensure_ascii=False) + "\n")

    def _merge_round(self, keep: np.ndarray | None) -> None:
        self._write_completions(keep)
        f = self.filter_config
        summary = self.rollout_stats.round_summary(
            self.scorer.last, self.num_generations, keep, f.low, f.high
        )
        for part in gather_object([summary]):
            self.rollout_stats.merge(part)

    def _refill(self, groups: int, round_: int, exclude: Sequence[int]) -> list[dict[str, Any]]:
        """``groups`` fresh prompts, each repeated ``num_generations`` times (seeded draw)."""
        accumulation = max(1, self.args.gradient_accumulation_steps)
        key = (
            self.state.global_step,
            self._step % accumulation,
            round_,
            self.accelerator.process_index,
        )
        indices = refill_indices(
            len(self.prompts), groups, seed=self.args.seed, key=key, exclude=exclude
        )
        rows = self.prompts.rows(indices)
        return [dict(row) for row in rows for _ in range(self.num_generations)]

    def _loss_tokens(self, batch: dict[str, Any]) -> torch.Tensor:
        mask = batch["completion_mask"]
        if batch.get("tool_mask") is not None:
            mask = mask * batch["tool_mask"]
        return self.accelerator.gather(mask.sum()).sum()

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        if not self.model.training:
            return super()._generate_and_score_completions(inputs)
        f = self.filter_config
        G = self.num_generations
        if not f.enabled:
            out = super()._generate_and_score_completions(inputs)
            self._merge_round(None)
            self._count_skips()
            return out
        if len(inputs) % G:
            raise ValueError(
                f"online filtering needs whole prompt groups on each process: {len(inputs)} "
                f"rows is not a multiple of num_generations {G}"
            )
        target = len(inputs) // G
        kept_parts: list[tuple[dict[str, Any], list[int]]] = []
        spare_parts: list[tuple[dict[str, Any], list[int]]] = []
        kept = drawn = 0
        seen = [int(row["index"]) for row in inputs[::G]]
        batch, round_ = inputs, 0
        while True:
            out = super()._generate_and_score_completions(batch)
            accuracy = [s.accuracy for s in self.scorer.last]
            keep = keep_groups(accuracy, G, f.low, f.high)
            self._merge_round(keep)
            groups = np.flatnonzero(keep)[: target - kept]
            if len(groups):
                kept_parts.append((out, _rows_of(groups, G)))
            dropped = np.flatnonzero(~keep)
            if len(dropped):
                spare_parts.append((out, _rows_of(dropped, G)))
            kept += len(groups)
            drawn += len(keep)
            need, kept_all, drawn_all = self._max_over_processes([target - kept, kept, drawn])
            if need <= 0 or round_ >= f.max_rounds:
                break
            round_ += 1
            rate = max(kept_all / drawn_all, 0.125) if drawn_all else 1.0
            size = int(min(target, max(need, math.ceil(need / rate))))
            batch = self._refill(size, round_, seen)
            seen += [int(row["index"]) for row in batch[::G]]
        self.rollout_stats.add_count("refill_rounds", round_)
        short = target - kept
        parts = list(kept_parts)
        fill = short * G  # the rounds ran out: dropped groups (advantage 0) keep the size
        for out, rows in spare_parts:
            if fill <= 0:
                break
            parts.append((out, rows[:fill]))
            fill -= len(rows[:fill])
        self._count_short(short)
        merged = gather_rows(parts, self._tokenizer.pad_token_id)
        merged["num_items_in_batch"] = self._loss_tokens(merged)
        self._count_skips()
        return merged

    def _count_short(self, short: int) -> None:
        total = short
        if self.accelerator.num_processes > 1:
            t = torch.tensor([float(short)], device=self.accelerator.device)
            total = int(self.accelerator.gather(t).sum().item())
        self.rollout_stats.add_count("underfilled_groups", total)

    def _count_skips(self) -> None:
        n = len(self.prompts.skipped)
        if n > self._skips_reported:
            self.rollout_stats.add_count("skipped_prompts", n - self._skips_reported)
            for sid, reason in self.prompts.skipped[self._skips_reported :]:
                log.warning("RL prompt %s skipped: %s", sid, reason)
            self._skips_reported = n

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.model.training and "loss" in logs:
            logs.update(self.rollout_stats.flush())
        super().log(logs, start_time)


def _rows_of(groups: Sequence[int] | np.ndarray, num_generations: int) -> list[int]:
    return [int(g) * num_generations + j for g in groups for j in range(num_generations)]


# -- building a run -------------------------------------------------------------------------
def accept_text_only_rows(processor: Any) -> Any:
    """Let ``processor`` take a batch in which some prompts have no picture.

    TRL passes the processor one image list per prompt, ``None`` for a text-only prompt
    (general reasoning data beside spatial samples), and Qwen2.5-VL's processor refuses a
    ``None`` entry. Its pictures are read in the order their tokens appear in the texts, so
    the lists can simply be flattened. The processor's class is swapped for a subclass with
    that ``__call__`` (TRL checks ``isinstance(processor, ProcessorMixin)``, so a wrapper
    object would not do); everything else is unchanged."""
    base = type(processor)
    if getattr(base, "_vst_flat_images", False):
        return processor

    def call(self: Any, images: Any = None, text: Any = None, **kwargs: Any) -> Any:
        if isinstance(images, list) and any(x is None or isinstance(x, list) for x in images):
            flat = [
                im
                for entry in images
                if entry is not None
                for im in (entry if isinstance(entry, list) else [entry])
            ]
            images = flat or None
        return base.__call__(self, images=images, text=text, **kwargs)

    members = {"__call__": call, "_vst_flat_images": True}
    processor.__class__ = type(base.__name__, (base,), members)
    return processor


def vision_token_ids(tokenizer: Any) -> list[int]:
    """Ids of Qwen2.5-VL's vision tokens (image / video pads, vision start / end / pad) in
    ``tokenizer``: a completion must never contain one (the model's 3D position ids count
    ``<|vision_start|>`` to place images, so one sampled would break the loss forward)."""
    ids = []
    for token in (VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD, "<|vision_pad|>"):
        i = tokenizer.convert_tokens_to_ids(token)
        if isinstance(i, int) and i != tokenizer.unk_token_id:
            ids.append(i)
    return ids


def grpo_arguments(
    config: GrpoConfig,
    world_size: int | None = None,
    progress: bool = False,
    suppress_ids: Sequence[int] = (),
) -> GRPOConfig:
    """TRL's ``GRPOConfig`` of a run (``world_size`` default: ``$WORLD_SIZE`` or 1).
    ``suppress_ids``: token ids generation never samples (:func:`vision_token_ids`; the
    transformers path: vLLM takes its own sampling parameters)."""
    if world_size is None:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
    accumulation, per_generation = config.batch_plan(world_size)
    extra: dict[str, Any] = {}
    if config.use_vllm:
        extra = {
            "use_vllm": True,
            "vllm_mode": config.vllm_mode,
            "vllm_gpu_memory_utilization": config.vllm_gpu_memory_utilization,
            "vllm_tensor_parallel_size": config.vllm_tensor_parallel_size,
            "vllm_max_model_length": config.max_length,
        }
        if config.vllm_server_base_url:
            extra["vllm_server_base_url"] = config.vllm_server_base_url
    elif suppress_ids:
        extra["generation_kwargs"] = {"suppress_tokens": sorted(int(i) for i in suppress_ids)}
    return GRPOConfig(
        per_device_train_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=accumulation,
        steps_per_generation=per_generation,
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        top_p=config.top_p,
        beta=config.beta,
        epsilon=config.epsilon_low,
        epsilon_high=config.epsilon_high,
        loss_type=config.loss_type,
        scale_rewards=config.scale_rewards,
        mask_truncated_completions=config.truncated == "mask",
        log_completions=False,
        **run_arguments(config, progress),
        **extra,
    )


def load_rl_prompts(config: GrpoConfig, where: str, tokenizer: Any = None) -> tuple[RLPrompts, Any]:
    """The run's RL prompts over the weighted mix of its sources (opened for RL) and the mix
    report; :class:`ConfigError` naming ``where`` and the source on bad data."""
    sources, systems = [], {}
    for i, d in enumerate(config.data):
        try:
            cfg = source_from_dict(d, f"{where}: data.{i}")
            source = open_source(cfg, rl=True)
        except ValueError as exc:
            raise ConfigError(
                str(exc) if str(exc).startswith(where) else f"{where}: data.{i}: {exc}"
            ) from None
        sources.append((cfg, source))
        systems[source.name] = cfg.system
    try:
        examples, report = mix([s for _, s in sources], [c.weight for c, _ in sources], config.seed)
        prompts = RLPrompts(
            examples,
            system=config.system,
            systems=systems,
            limits=config.pixel_limits(),
            tokenizer=tokenizer,
            max_prompt_length=config.max_prompt_length(),
        )
    except ValueError as exc:
        raise ConfigError(f"{where}: data: {exc}") from None
    return prompts, report


def build_grpo_trainer(
    config: GrpoConfig,
    where: str = "config",
    *,
    score: Score | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    progress: bool = False,
) -> tuple[VstGRPOTrainer, Any]:
    """The trainer of a run and the data mix report. ``score`` replaces
    :func:`vst.rewards.compute_reward` inside the run's
    :class:`~vst.train.rl_reward.RolloutScorer` (tests script accuracies with it)."""
    from vst.models.processor import load_processor

    processor = load_processor(config.model)
    # TRL left-pads prompt ids itself and takes mm_token_type_ids from the processor, which pads
    # on the tokenizer's side: both must be left or the image tokens of shorter prompts shift
    processor.tokenizer.padding_side = "left"
    accept_text_only_rows(processor)
    prompts, report = load_rl_prompts(config, where, processor.tokenizer)
    model = load_model(config)
    scorer = RolloutScorer(config.w_acc, config.w_fmt, config.truncated, score or score_any)
    trainer = VstGRPOTrainer(
        model,
        grpo_arguments(
            config, progress=progress, suppress_ids=vision_token_ids(processor.tokenizer)
        ),
        prompts.dataset(),
        processor,
        scorer=scorer,
        prompts=prompts,
        filter_config=config.filter,
        completions_per_round=config.log_completions,
        vision_learning_rate=config.vision_learning_rate or config.learning_rate,
        source_dir=config.model,
        callbacks=callbacks,
    )
    return trainer, report


@dataclass(frozen=True)
class GrpoResult:
    """What a run made: the final checkpoint directory, optimizer steps done, the metrics and
    plot files, the mix report, the checkpoint it resumed from (or None) and the prompts
    skipped as ``(id, reason)``."""

    output_dir: Path
    steps: int
    metrics: Path
    plot: Path | None
    mix_report: Any
    resumed_from: Path | None
    skipped: list[tuple[str, str]]


def run_grpo(
    config: GrpoConfig,
    *,
    resume: bool = False,
    where: str = "config",
    callbacks: Sequence[TrainerCallback] = (),
    progress: bool = False,
    score: Score | None = None,
) -> GrpoResult:
    """Train (resuming from the last ``checkpoint-N`` in ``output_dir`` when ``resume``; a run
    without ``resume`` refuses an ``output_dir`` holding checkpoints) and save the final model
    into ``output_dir``. ``score``: see :func:`build_grpo_trainer`."""
    out = config.output_dir
    last = checkpoint_to_resume(out, resume, where)
    trainer, report = build_grpo_trainer(
        config, where, score=score, callbacks=callbacks, progress=progress
    )
    trainer.train(resume_from_checkpoint=last)
    trainer.save_model(str(out))
    main = trainer.is_world_process_zero()
    if main:
        sources = [source_from_dict(d, f"{where}: data.{i}") for i, d in enumerate(config.data)]
        write_manifest(out, sources)
    png = trainer.metrics.png
    return GrpoResult(
        output_dir=out,
        steps=trainer.state.global_step,
        metrics=trainer.metrics.jsonl,
        plot=png if main and png.is_file() else None,
        mix_report=report,
        resumed_from=Path(last) if last else None,
        skipped=list(trainer.prompts.skipped),
    )
