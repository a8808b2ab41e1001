"""Stages 1 and 2 (SFT, CoT cold start): ``transformers.Trainer`` with vst's data, collator,
optimizer groups, loss normalisation, metrics and checkpoint files.

Why ``transformers.Trainer`` and not TRL's ``SFTTrainer``: with vst's own collator nothing of
``SFTTrainer``'s data path is left (vision datasets skip its preparation, and its vision
checks reject packing and padding-free batches, ECOSYSTEM.md A1), while its constructor insists
on a ``datasets.Dataset`` / ``IterableDataset`` (``TypeError`` otherwise): vst's examples are
:class:`~vst.train.examples.TrainExample` objects holding decoded pictures and videos, which
would have to be serialised into Arrow and back for nothing. What ``SFTTrainer`` would add on
top of ``Trainer`` is per-step entropy and token-accuracy logging (another pass over the
logits). So :class:`VstTrainer` subclasses ``Trainer`` directly and keeps everything else of
it: the loop, gradient accumulation, schedulers, mixed precision, gradient checkpointing,
DeepSpeed / FSDP through ``accelerate launch``, checkpointing and resume.

What :class:`VstTrainer` changes:

* **optimizer groups** (:meth:`VstTrainer.create_optimizer`): vision tower and merger at the
  vision learning rate, language model at the main one (:mod:`vst.train.optim`), with the
  optimizer class and betas ``TrainingArguments`` chooses;
* **loss** (:func:`token_mean_loss`, passed as ``compute_loss_func``): the mean cross-entropy
  over every label token of the whole optimizer step. ``Qwen2_5_VLForConditionalGeneration``
  says ``accepts_loss_kwargs = False``, so the default path would average per micro-batch and
  divide by the accumulation steps (inexact when micro-batches hold different numbers of label
  tokens). With a ``compute_loss_func`` transformers 5.25 counts the label tokens of all the
  step's micro-batches (``labels[..., 1:] != -100``, summed over processes) as
  ``num_items_in_batch``; each micro-batch's summed loss is divided by that count, and the
  Trainer multiplies by the number of processes before DDP averages: gradient accumulation
  and data parallelism are exact;
* **``vst_stats``**: the collator's counters are popped before the forward pass and feed the
  metrics (:mod:`vst.train.metrics`);
* **data loader** (:meth:`VstTrainer.get_train_dataloader`), with ``packing: true``: rows of
  ``max_length`` tokens planned over the whole mix (:mod:`vst.train.planning`: token lengths
  measured once, shared out over the processes, and cached in ``output_dir``; first-fit
  decreasing; rows shuffled with
  ``seed + epoch``); one micro-batch = ``rows_per_device`` planned rows, packed by the collator
  exactly as planned; process ``r`` of ``W`` takes rows ``r, r + W, ...`` of each group of
  ``rows_per_device x W``. On resume the sampler starts at the first untrained micro-batch
  without decoding the skipped examples. Without packing: ``Trainer``'s own loader
  (``per_device_batch_size`` examples per micro-batch, padded);
* **checkpoint files** (:meth:`VstTrainer._save`): the source checkpoint's processor,
  tokenizer and chat-template files are copied into every checkpoint and the final model, so
  ``vst.models.load_processor`` and ``AutoModelForImageTextToText`` load them as they are.

The final model folder also gets ``vst_training_data.json``, the run's data sources and the
scenes of their examples (:mod:`vst.train.manifest`).

:func:`run_training` does a whole run from a :class:`~vst.train.config.TrainConfig`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional
from torch.utils.data import DataLoader, Dataset
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import seed_worker

from vst.train.collate import VLMCollator
from vst.train.config import ConfigError, TrainConfig
from vst.train.data import mix, source_from_dict
from vst.train.examples import TrainExample
from vst.train.manifest import write_manifest
from vst.train.metrics import MetricsCallback, StepStats
from vst.train.optim import apply_freezing
from vst.train.planning import (
    LENGTHS_FILE,
    RowBatchSampler,
    RowDataset,
    keep_own_shards,
    measure_lengths,
)
from vst.train.trainer_common import (
    PROCESSOR_FILES,
    VstTrainerMixin,
    checkpoint_to_resume,
    run_arguments,
)

__all__ = [
    "PROCESSOR_FILES",
    "ExampleDataset",
    "RowPlanning",
    "TrainResult",
    "VstTrainer",
    "build_trainer",
    "data_sources",
    "load_examples",
    "load_model",
    "result_fields",
    "run_training",
    "token_mean_loss",
    "training_arguments",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RowPlanning:
    """Packed rows planned over the mix (:mod:`vst.train.planning`): ``rows_per_device`` rows
    per micro-batch, planned over windows of ``window`` examples (None: the whole mix), the
    lengths cached in ``output_dir`` when ``cache``."""

    rows_per_device: int = 1
    window: int | None = None
    cache: bool = True


def data_sources(config: TrainConfig, where: str) -> list[Any]:
    """The config's ``data`` entries as data sources; :class:`ConfigError` naming ``where``
    and the entry's field."""
    out = []
    for i, d in enumerate(config.data):
        try:
            out.append(source_from_dict(d, f"{where}: data.{i}"))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return out


def load_examples(config: TrainConfig, where: str) -> tuple[Sequence[TrainExample], Any]:
    """The run's mixed examples (a sequence, deterministic from ``config.seed``; the data
    module may decode each example only when it is drawn) and the mix report."""
    sources = data_sources(config, where)
    try:
        examples, report = mix(sources, [s.weight for s in sources], config.seed)
    except ValueError as exc:  # a source that cannot be read, or has no usable example
        raise ConfigError(f"{where}: data: {exc}") from None
    return examples, report


class ExampleDataset(Dataset):
    """A sequence of :class:`TrainExample` as a map-style dataset (not copied: a lazy mix
    stays lazy; the collator encodes)."""

    def __init__(self, examples: Sequence[TrainExample]) -> None:
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> TrainExample:
        return self.examples[i]


def token_mean_loss(
    outputs: Any, labels: torch.Tensor, num_items_in_batch: torch.Tensor | int | None = None
) -> torch.Tensor:
    """Summed next-token cross-entropy of the micro-batch (labels shifted by one, ``-100``
    ignored, float32) divided by ``num_items_in_batch`` (the step's label tokens), or by this
    micro-batch's own count when None. A micro-batch without label tokens (every example
    skipped as too long) adds zero loss and zero gradient; its forward still runs, so
    data-parallel ranks stay in step."""
    logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:].to(shift_logits.device)
    total = functional.cross_entropy(
        shift_logits.reshape(-1, shift_logits.shape[-1]),
        shift_labels.reshape(-1),
        ignore_index=-100,
        reduction="sum",
    )
    count = num_items_in_batch if num_items_in_batch is not None else shift_labels.ne(-100).sum()
    if torch.is_tensor(count):
        return total / count.to(total.device).clamp(min=1)
    return total / max(int(count), 1)


class VstTrainer(VstTrainerMixin, Trainer):
    """``transformers.Trainer`` for vst (see the module docstring). ``vision_learning_rate``
    is the vision tower's and merger's rate (``args.learning_rate`` the language model's);
    ``source_dir`` is the checkpoint whose processor files are copied into saves;
    ``row_planning``: micro-batches of rows planned over the mix (the collator must be a
    packing :class:`~vst.train.collate.VLMCollator`), None: ``Trainer``'s loader."""

    def __init__(
        self,
        model: Any,
        args: TrainingArguments,
        train_dataset: Dataset,
        data_collator: Any,
        *,
        vision_learning_rate: float,
        source_dir: str | Path | None = None,
        callbacks: Sequence[TrainerCallback] = (),
        row_planning: RowPlanning | None = None,
    ) -> None:
        self.vision_learning_rate = vision_learning_rate
        self.source_dir = Path(source_dir) if source_dir is not None else None
        self.row_planning = row_planning
        self.row_sampler: RowBatchSampler | None = None
        self.example_lengths: list[int] | None = None
        self.step_stats = StepStats()
        super().__init__(
            model=model,
            args=args,
            train_dataset=train_dataset,
            data_collator=data_collator,
            compute_loss_func=token_mean_loss,
            callbacks=list(callbacks),
        )
        self.remove_callback(PrinterCallback)  # the metrics file has every step
        self.metrics = MetricsCallback(args.output_dir, self.collect_step)
        self.add_callback(self.metrics)

    def _examples(self) -> Sequence[TrainExample]:
        return getattr(self.train_dataset, "examples", self.train_dataset)

    def measure_lengths(self) -> list[int]:
        """Token lengths of the training examples (measured once; with ``row_planning.cache``
        read from / written to ``output_dir``/``row_lengths.json`` by process 0; with several
        processes each measures its share, :func:`vst.train.planning.measure_lengths`)."""
        if self.example_lengths is None:
            plan = self.row_planning or RowPlanning()
            collator = self.data_collator
            cache = Path(self.args.output_dir) / LENGTHS_FILE if plan.cache else None
            self.example_lengths = measure_lengths(
                self._examples(),
                collator.processor,
                system=collator.system,
                limits=collator.limits,
                max_length=collator.max_length,
                cache=cache,
                workers=self.args.dataloader_num_workers,
                distributed=True,
            )
        return self.example_lengths

    def get_train_dataloader(self) -> DataLoader:
        """With ``row_planning``: a loader of planned rows (module docstring), else
        ``Trainer``'s."""
        if self.row_planning is None:
            return super().get_train_dataloader()
        lengths = self.measure_lengths()
        collator = self.data_collator
        try:
            sampler = RowBatchSampler(
                lengths,
                collator.max_length,
                self.row_planning.rows_per_device,
                self.args.seed,
                window=self.row_planning.window,
                world_size=self.accelerator.num_processes,
                rank=self.accelerator.process_index,
            )
        except ValueError as exc:  # no example fits
            raise ConfigError(f"max_length: {exc} (the {len(lengths)} examples)") from None
        if sampler.skipped:
            examples = self._examples()
            first = ", ".join(repr(examples[i].id) for i in sampler.skipped[:5])
            log.warning(
                "%d example(s) longer than max_length %d left out of the packed rows (%s%s)",
                len(sampler.skipped),
                collator.max_length,
                first,
                ", ..." if len(sampler.skipped) > 5 else "",
            )
        workers = self.args.dataloader_num_workers
        loader = DataLoader(
            RowDataset(self._examples()),
            batch_sampler=sampler,
            collate_fn=collator.collate_rows,
            num_workers=workers,
            pin_memory=self.args.dataloader_pin_memory,
            persistent_workers=self.args.dataloader_persistent_workers,
            prefetch_factor=self.args.dataloader_prefetch_factor,
            worker_init_fn=partial(seed_worker, num_workers=workers, rank=self.args.process_index),
        )
        self.row_sampler = sampler
        return keep_own_shards(self.accelerator.prepare(loader), sampler)

    def get_resumed_dataloader(self, dataloader: DataLoader, num_batches: int) -> DataLoader:
        """Resuming mid-epoch with planned rows: the sampler starts at micro-batch
        ``num_batches`` of the epoch (the Trainer then sets the epoch on it); the skipped
        rows' examples are never read."""
        if self.row_sampler is None:
            return super().get_resumed_dataloader(dataloader, num_batches)
        self.row_sampler.skip_next(num_batches)
        return dataloader

    def training_step(
        self,
        model: Any,
        inputs: dict[str, Any],
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        stats = inputs.pop("vst_stats", None)
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.step_stats.add(stats, float(loss))
        return loss

    def collect_step(self) -> list[float]:
        """The step's ``[loss, *counts]`` summed over processes (loss: the token mean), then
        reset. Called on every process."""
        values = torch.tensor(
            self.step_stats.values(), dtype=torch.float64, device=self.args.device
        )
        self.step_stats.reset()
        n = self.accelerator.num_processes
        if n > 1:
            values = self.accelerator.reduce(values, reduction="sum")
            values[0] = values[0] / n  # each process's loss carries the Trainer's x n
        return [float(v) for v in values.cpu()]


def training_arguments(
    config: TrainConfig, world_size: int | None = None, progress: bool = False
) -> TrainingArguments:
    """``TrainingArguments`` of a run (``world_size`` default: ``$WORLD_SIZE`` or 1)."""
    if world_size is None:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
    return TrainingArguments(
        per_device_train_batch_size=config.micro_batch()[1],  # rows with packing
        gradient_accumulation_steps=config.accumulation(world_size),
        dataloader_num_workers=config.dataloader_num_workers,
        **run_arguments(config, progress),
    )


def load_model(config: Any) -> Any:
    """The config's checkpoint (``config.model``) in fp32 with its attention implementation
    (``config.attention()``) and frozen parts (``freeze_vision`` / ``freeze_merger`` /
    ``freeze_language_model``); :class:`ConfigError` when it cannot be loaded. Any stage's
    config (SFT/CoT or GRPO) has those fields."""
    from transformers import AutoModelForImageTextToText

    try:
        model = AutoModelForImageTextToText.from_pretrained(
            str(config.model), attn_implementation=config.attention(), dtype=torch.float32
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model: cannot load {config.model}: {exc}") from None
    apply_freezing(
        model,
        vision=config.freeze_vision,
        merger=config.freeze_merger,
        language_model=config.freeze_language_model,
    )
    return model


def build_trainer(
    config: TrainConfig,
    examples: Sequence[TrainExample],
    *,
    callbacks: Sequence[TrainerCallback] = (),
    progress: bool = False,
    model: Any = None,
    processor: Any = None,
    processor_dir: str | Path | None = None,
    collator_class: Callable[..., VLMCollator] = VLMCollator,
) -> VstTrainer:
    """The trainer of a run over ``examples``: the model (fp32 master weights; ``bf16`` trains
    under autocast), freezing, the collator (``rope_index = model.model.get_rope_index``).

    A stage that changes the model or its tokenizer first (the VLA stage adds action tokens)
    passes them in: ``model`` (default: :func:`load_model`), ``processor`` (default: the
    checkpoint's), ``processor_dir`` (the folder whose processor files every save copies;
    default ``config.model``: give the folder the changed processor was saved to), and
    ``collator_class`` (a :class:`VLMCollator` subclass or a factory of one). The system
    prompt is ``config.system_text()``."""
    from vst.models.processor import load_processor

    if not examples:
        raise ConfigError("data: the sources gave no examples")
    model = load_model(config) if model is None else model
    processor = load_processor(config.model) if processor is None else processor
    collator = collator_class(
        processor,
        max_length=config.max_length,
        packing=config.packing,
        system=config.system_text(),
        limits=config.pixel_limits(),
        rope_index=model.model.get_rope_index,
    )
    return VstTrainer(
        model,
        training_arguments(config, progress=progress),
        ExampleDataset(examples),
        collator,
        vision_learning_rate=config.vision_learning_rate,
        source_dir=config.model if processor_dir is None else processor_dir,
        callbacks=callbacks,
        row_planning=(
            RowPlanning(config.rows_per_device, config.plan_window) if config.packing else None
        ),
    )


@dataclass(frozen=True)
class TrainResult:
    """What a run made: the final checkpoint directory, the optimizer steps done, the metrics
    and plot files, the mix report and the checkpoint it resumed from (or None)."""

    output_dir: Path
    steps: int
    metrics: Path
    plot: Path | None
    mix_report: Any
    resumed_from: Path | None
    examples: int


def run_training(
    config: TrainConfig,
    *,
    resume: bool = False,
    where: str = "config",
    callbacks: Sequence[TrainerCallback] = (),
    progress: bool = False,
) -> TrainResult:
    """Train (resuming from the last ``checkpoint-N`` in ``output_dir`` when ``resume``; a
    run without ``resume`` refuses an ``output_dir`` holding checkpoints) and save the final
    model into ``output_dir``."""
    out = config.output_dir
    last = checkpoint_to_resume(out, resume, where)
    examples, report = load_examples(config, where)
    trainer = build_trainer(config, examples, callbacks=callbacks, progress=progress)
    trainer.train(resume_from_checkpoint=last)
    trainer.save_model(str(out))
    if trainer.is_world_process_zero():  # the sources and their scenes (vst.train.manifest)
        write_manifest(out, data_sources(config, where))
    return TrainResult(**result_fields(trainer, out, report, last, len(examples)))


def result_fields(
    trainer: VstTrainer, out: Path, report: Any, last: str | None, examples: int
) -> dict[str, Any]:
    """The :class:`TrainResult` fields of a finished run (the plot only on process 0, where the
    metrics callback drew it)."""
    png = trainer.metrics.png
    return {
        "output_dir": out,
        "steps": trainer.state.global_step,
        "metrics": trainer.metrics.jsonl,
        "plot": png if trainer.is_world_process_zero() and png.is_file() else None,
        "mix_report": report,
        "resumed_from": Path(last) if last else None,
        "examples": examples,
    }
