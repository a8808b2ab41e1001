"""What vst's two trainers (SFT/CoT :class:`~vst.train.trainer.VstTrainer` and GRPO
:class:`~vst.train.grpo.VstGRPOTrainer`) change in ``transformers.Trainer`` the same way.

:class:`VstTrainerMixin`, put before the Trainer class in the bases, needs two attributes:
``vision_learning_rate`` (the vision tower's and merger's rate; ``args.learning_rate`` is the
language model's) and ``source_dir`` (the checkpoint whose processor files are copied into
saves, or None). It gives:

* **optimizer groups** (:meth:`create_optimizer`): vision tower and merger at the vision
  learning rate, language model at the main one (:mod:`vst.train.optim`), with the optimizer
  class and betas ``TrainingArguments`` chooses;
* **resume that loads the weights** (:meth:`_load_from_checkpoint`, see its docstring);
* **checkpoint files** (:meth:`_save`): the source checkpoint's processor, tokenizer and
  chat-template files (:data:`PROCESSOR_FILES`) are copied into every checkpoint and the final
  model, so ``vst.models.load_processor`` and ``AutoModelForImageTextToText`` load them as they
  are.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from vst.train.optim import param_groups

__all__ = ["PROCESSOR_FILES", "VstTrainerMixin", "checkpoint_to_resume", "run_arguments"]

PROCESSOR_FILES = (
    "processor_config.json",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
    "chat_template.jinja",
    "chat_template.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
)
"""Files copied from the source checkpoint into every saved checkpoint (those that exist)."""


def checkpoint_to_resume(output_dir: Path, resume: bool, where: str) -> str | None:
    """The last ``checkpoint-N`` in ``output_dir`` to resume from (None: start fresh); a run
    without ``resume`` refuses an ``output_dir`` that holds checkpoints (ConfigError)."""
    from transformers.trainer_utils import get_last_checkpoint

    from vst.train.config import ConfigError

    last = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if last is not None and not resume:
        raise ConfigError(
            f"{where}: output_dir: {output_dir} holds checkpoints ({Path(last).name}); resume "
            "with --resume or choose another output_dir"
        )
    return last


def run_arguments(config: Any, progress: bool = False) -> dict[str, Any]:
    """The ``TrainingArguments`` fields both stages set the same way from their config (output,
    seeds, schedule, length, precision, checkpointing, saving, logging, device): the stage's
    own trainer arguments add batch and algorithm fields."""
    gc = config.gradient_checkpointing
    return {
        "output_dir": str(config.output_dir),
        "seed": config.seed,
        "data_seed": config.seed,
        "learning_rate": config.learning_rate,
        "lr_scheduler_type": config.lr_scheduler,
        "warmup_steps": config.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps,
        "weight_decay": config.weight_decay,
        "max_grad_norm": config.max_grad_norm,
        "bf16": config.bf16,
        "activation_checkpointing": gc,  # transformers 5 name of gradient checkpointing
        "activation_checkpointing_kwargs": {"use_reentrant": False} if gc else None,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "save_total_limit": config.save_total_limit,
        "logging_steps": config.logging_steps,
        "report_to": "none",
        "remove_unused_columns": False,
        "use_cpu": config.use_cpu,
        "disable_tqdm": not progress,
        # a text-only batch leaves the vision tower without gradients
        "ddp_find_unused_parameters": True,
    }


class VstTrainerMixin:
    """Optimizer groups, weight loading on resume and processor files (module docstring)."""

    vision_learning_rate: float
    source_dir: Path | None

    def create_optimizer(self, model: Any = None) -> torch.optim.Optimizer:
        """The optimizer ``TrainingArguments`` names, over :func:`~vst.train.optim.
        param_groups` (built from the model as wrapped at this point)."""
        if self.optimizer is None:
            opt_model = self.model if model is None else model
            cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            groups = param_groups(
                opt_model,
                self.args.learning_rate,
                self.vision_learning_rate,
                self.args.weight_decay,
            )
            self.optimizer_cls_and_kwargs = (cls, {**kwargs, "params": groups})
        return super().create_optimizer(model)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        """Load a checkpoint's weights on resume. transformers 5.25 saves Qwen2.5-VL under the
        original hub key names (``visual.*``, ``model.layers.*``) but ``Trainer`` reads them
        back with a plain non-strict ``load_state_dict``: every key misses and training would
        silently go on from the start weights. So the checkpoint is read with
        ``from_pretrained`` (which maps the names) and copied in strictly. DeepSpeed and FSDP
        keep their own checkpoint formats (the Trainer's own loading)."""
        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        if self.is_deepspeed_enabled or self.is_fsdp_enabled or not hasattr(target, "config"):
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            return
        dtype = next(target.parameters()).dtype
        saved = type(target).from_pretrained(resume_from_checkpoint, dtype=dtype)
        target.load_state_dict(saved.state_dict(), strict=True)
        del saved

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        super()._save(output_dir, state_dict)
        out = Path(output_dir if output_dir is not None else self.args.output_dir)
        if self.args.should_save and self.source_dir is not None:
            for name in PROCESSOR_FILES:
                src = self.source_dir / name
                if src.is_file():
                    shutil.copyfile(src, out / name)
