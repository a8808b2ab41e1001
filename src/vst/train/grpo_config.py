"""Configuration of a GRPO run (``vst train grpo CONFIG``, stage 3), loaded from YAML.

Example (``configs/train/grpo_tiny_cpu.yaml``)::

    stage: grpo
    model: outputs/train-tiny          # the stage 2 checkpoint (a Hugging Face directory)
    output_dir: outputs/grpo-tiny
    data:                               # data sources as in SFT (vst.train.data), mixed by weight
      - {kind: vst, path: outputs/engine-demo, splits: [train]}
      - {kind: vst_release_rl, path: vst_r/rl/}
    global_batch_size: 8                # any preset value can be overridden

The preset (:data:`GRPO_PRESET`) is the paper's stage 3 as the release runs it (VST-RELEASE.md
§3): 5 rollouts per prompt at temperature 1.0 (top-p 1.0), clip range 0.2 / 0.28 (DAPO's
clip-higher), no KL term and so no reference model, AdamW at a constant learning rate of 1e-6
for the whole model, vision tower included (weight decay 0.01, gradient norm 1.0), 128 prompts
per optimizer step, prompt + completion within 8,192 tokens with completions of at most 2,048
tokens, reward ``0.5 * accuracy + 0.5 * format``, the thinking system prompt on every prompt
except 3D detection (``det3d`` mode: no system turn, so the chat template's default applies, as
in the release), and online filtering of prompt groups whose accuracy is all 0 or all 1
(bounds 0.01 / 0.99), on accuracy rather than on the total as the release does.

Batches (TRL's GRPO terms; all counted on every process together):

* ``global_batch_size`` prompts per optimizer step, each with ``num_generations`` completions:
  ``global_batch_size x num_generations`` completions = ``per_device_batch_size``
  (completions per micro-batch) x gradient accumulation x processes;
* ``rollout_batch_size`` prompts per rollout (default ``global_batch_size``: one update per
  rollout, fully on-policy; the release rolls out 256 and updates twice on 128): a multiple of
  ``global_batch_size``, and of the number of processes, so that each prompt's group lives on
  one process (the filter drops whole groups).

``truncated``: what a completion cut at ``max_completion_length`` gets: ``score`` (scored as
written, the release), ``zero`` (reward 0) or ``mask`` (left out of the loss: TRL's
``mask_truncated_completions``). Loading is strict and errors name the file and field, as for
SFT (:mod:`vst.train.config`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vst.engine.config import ConfigError
from vst.models.vision import PixelLimits
from vst.train.config import load_run_config, validate_preset

__all__ = [
    "GRPO_PRESET",
    "FilterConfig",
    "GrpoConfig",
    "load_grpo_config",
    "parse_grpo_config",
]

GRPO_PRESET: dict[str, Any] = {
    "learning_rate": 1e-6,
    "lr_scheduler": "constant",
    "warmup_ratio": 0.0,
    "weight_decay": 0.01,
    "max_grad_norm": 1.0,
    "num_generations": 5,
    "temperature": 1.0,
    "top_p": 1.0,
    "epsilon_low": 0.2,
    "epsilon_high": 0.28,
    "beta": 0.0,
    "global_batch_size": 128,
    "max_length": 8192,
    "max_completion_length": 2048,
    "system": "think",
    "w_acc": 0.5,
    "w_fmt": 0.5,
}
"""The paper's stage 3 (see the module docstring); a config's own values win."""

PosInt = Annotated[int, Field(strict=True, gt=0)]
PosFloat = Annotated[float, Field(gt=0)]
Weight = Annotated[float, Field(ge=0)]


class FilterConfig(BaseModel):
    """Online filtering (dynamic sampling): keep a prompt group when ``low < mean accuracy <
    high``; refill the rollout with fresh prompts up to ``max_rounds`` extra rounds."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    enabled: bool = True
    low: Annotated[float, Field(ge=0, le=1)] = 0.01
    high: Annotated[float, Field(ge=0, le=1)] = 0.99
    max_rounds: Annotated[int, Field(strict=True, ge=0)] = 4
    """Refill rounds after the first rollout; when the batch is still short after them, the
    dropped groups fill it (zero advantage) and the step's metrics say how many."""

    @model_validator(mode="after")
    def _bounds(self) -> FilterConfig:
        if not self.low < self.high:
            raise ValueError(f"filter: low ({self.low}) must be below high ({self.high})")
        return self


class GrpoConfig(BaseModel):
    """A validated GRPO run (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    stage: Literal["grpo"]
    model: Path
    output_dir: Path
    data: list[dict[str, Any]] = Field(min_length=1)
    seed: Annotated[int, Field(strict=True, ge=0)] = 0
    # preset values (GRPO_PRESET fills them in)
    learning_rate: PosFloat
    vision_learning_rate: PosFloat | None = None
    """Vision tower + merger learning rate (None: ``learning_rate``, the paper's setting)."""
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"]
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)]
    weight_decay: Weight
    max_grad_norm: Weight
    num_generations: Annotated[int, Field(strict=True, ge=2)]
    temperature: PosFloat
    top_p: Annotated[float, Field(gt=0, le=1)]
    epsilon_low: Weight
    epsilon_high: Weight
    beta: Weight
    """KL coefficient (0: no KL term, no reference model)."""
    global_batch_size: PosInt
    max_length: PosInt
    max_completion_length: PosInt
    system: Literal["plain", "think"]
    w_acc: Weight
    w_fmt: Weight
    # run settings
    rollout_batch_size: PosInt | None = None
    per_device_batch_size: PosInt = 4
    """Completions per device per micro-batch."""
    loss_type: Literal["dapo", "grpo", "dr_grpo", "bnpo"] = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    filter: FilterConfig = FilterConfig()
    truncated: Literal["score", "zero", "mask"] = "score"
    epochs: PosFloat = 1.0
    max_steps: Annotated[int, Field(strict=True, ge=-1)] = -1
    log_completions: Annotated[int, Field(strict=True, ge=0)] = 0
    """Completions per rollout round written to ``output_dir/completions.jsonl`` (0: none)."""
    save_steps: PosInt = 10
    save_total_limit: PosInt | None = None
    logging_steps: PosInt = 1
    bf16: bool = True
    gradient_checkpointing: bool = True
    attn_implementation: Literal["auto", "flash_attention_2", "sdpa", "eager"] = "auto"
    freeze_vision: bool = False
    freeze_merger: bool = False
    freeze_language_model: bool = False
    use_cpu: bool = False
    min_pixels: PosInt | None = None
    max_pixels: PosInt | None = None
    # generation with vLLM (GPU only; passed to TRL as is)
    use_vllm: bool = False
    vllm_mode: Literal["colocate", "server"] = "colocate"
    vllm_server_base_url: str | None = None
    vllm_gpu_memory_utilization: Annotated[float, Field(gt=0, le=1)] = 0.3
    vllm_tensor_parallel_size: PosInt = 1

    @model_validator(mode="after")
    def _check(self) -> GrpoConfig:
        self.pixel_limits()
        if self.max_completion_length >= self.max_length:
            raise ValueError(
                f"max_completion_length ({self.max_completion_length}) must be below max_length "
                f"({self.max_length}): prompts get the rest"
            )
        if self.w_acc + self.w_fmt <= 0:
            raise ValueError("w_acc + w_fmt must be > 0")
        rollout = self.rollout()
        if rollout % self.global_batch_size:
            raise ValueError(
                f"rollout_batch_size ({rollout}) must be a multiple of global_batch_size "
                f"({self.global_batch_size})"
            )
        if (self.global_batch_size * self.num_generations) % self.per_device_batch_size:
            raise ValueError(
                f"global_batch_size x num_generations ({self.global_batch_size} x "
                f"{self.num_generations}) is not a multiple of per_device_batch_size "
                f"({self.per_device_batch_size})"
            )
        return self

    def rollout(self) -> int:
        """Prompts per rollout (``rollout_batch_size`` or ``global_batch_size``)."""
        return self.rollout_batch_size or self.global_batch_size

    def batch_plan(self, world_size: int = 1) -> tuple[int, int]:
        """``(gradient_accumulation_steps, steps_per_generation)`` for ``world_size``
        processes; :class:`ConfigError` naming the fields when they do not divide out."""
        per_pass = self.per_device_batch_size * world_size
        step = self.global_batch_size * self.num_generations
        if step % per_pass:
            raise ConfigError(
                f"global_batch_size: {self.global_batch_size} prompts x {self.num_generations} "
                f"completions is not a multiple of per_device_batch_size "
                f"{self.per_device_batch_size} x {world_size} process(es)"
            )
        if self.rollout() % world_size:
            raise ConfigError(
                f"rollout_batch_size: {self.rollout()} prompts do not share out over "
                f"{world_size} processes (each prompt's completions stay on one process)"
            )
        return step // per_pass, self.rollout() * self.num_generations // per_pass

    def pixel_limits(self) -> PixelLimits:
        """Image pixel budgets (unset fields: the engine's defaults)."""
        given = {
            k: getattr(self, k)
            for k in ("min_pixels", "max_pixels")
            if getattr(self, k) is not None
        }
        return PixelLimits(**given)

    def attention(self) -> str:
        """The attention implementation (``auto``: flash-attention 2 when installed, else
        sdpa)."""
        if self.attn_implementation != "auto":
            return self.attn_implementation
        return "flash_attention_2" if importlib.util.find_spec("flash_attn") else "sdpa"

    def max_prompt_length(self) -> int:
        """Longest prompt in tokens: ``max_length - max_completion_length``."""
        return self.max_length - self.max_completion_length


def parse_grpo_config(data: Any, where: str = "config") -> GrpoConfig:
    """Validate a GRPO config mapping with the preset filled in; :class:`ConfigError` naming
    ``where`` and each bad field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of options, got {type(data).__name__}")
    if data.get("stage") != "grpo":
        raise ConfigError(f"{where}: stage: must be grpo (got {data.get('stage')!r})")
    return validate_preset(GrpoConfig, GRPO_PRESET, data, where)


def load_grpo_config(path: str | Path, overrides: list[str] | None = None) -> GrpoConfig:
    """Read, override (``key=value``, dotted keys) and validate a GRPO config. The model
    directory must exist; ``output_dir`` must not be a file."""
    return load_run_config(path, overrides, parse_grpo_config)
