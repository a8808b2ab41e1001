"""Configuration of a training run (``vst train sft CONFIG``), loaded from YAML.

Example (``configs/train/tiny_cpu_demo.yaml``)::

    stage: sft                     # sft (stage 1) or cot (stage 2, the CoT cold start)
    model: outputs/tiny-model      # a Hugging Face Qwen2.5-VL checkpoint directory
    output_dir: outputs/train-tiny # checkpoints, the final model, metrics.jsonl, metrics.png
    data:                          # data sources (see vst.train.data), mixed by weight
      - {kind: vst, path: outputs/engine-demo, weight: 1.0}
    learning_rate: 1.0e-3          # any preset value can be overridden
    global_batch_size: 8

``stage`` picks the preset (the paper's recipe, Tables 15-17): ``sft``: learning rate 5e-5,
vision-tower (and merger) learning rate 5e-6, warmup ratio 0.03, cosine schedule, 1 epoch,
global batch 128, sequence length 16,384, the plain system prompt; ``cot``: learning rate 1e-5,
vision 1e-6, 2 epochs and the thinking system prompt, the rest as ``sft``. A value given in the
file replaces the preset's.

Batches (the accumulation is derived from the others when not given; they must multiply out
exactly):

* ``packing: true`` (the default, the paper's VeOmni setting): batches count packed rows of
  ``max_length`` tokens, planned over the whole mix before training (:mod:`vst.train.planning`;
  ``plan_window``: plan over windows of that many examples of the mix order instead).
  ``global_batch_size`` rows per optimizer step = ``rows_per_device`` x
  ``gradient_accumulation_steps`` x number of processes (paper: 128 rows of 16,384 tokens).
  ``per_device_batch_size`` is not used (must stay 1).
* ``packing: false``: batches count examples, one per padded row: ``global_batch_size`` =
  ``per_device_batch_size`` x ``gradient_accumulation_steps`` x number of processes
  (``rows_per_device`` must stay 1, ``plan_window`` unset).

Loading is strict (as the data engine's): unknown keys, duplicate keys, non-finite numbers and
bools given for integers are errors; every error names the YAML file and the field
(``configs/x.yaml: learning_rate: Input should be greater than 0``). Relative paths are taken
from the current working directory. Command-line overrides (``key=value``, dotted keys reach
into lists and mappings: ``data.0.weight=2``; values are read as YAML scalars) are applied
before validation.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vst.engine.config import ConfigError, format_errors, load_yaml
from vst.models.vision import PixelLimits

__all__ = [
    "STAGE_PRESETS",
    "ConfigError",
    "TrainConfig",
    "apply_overrides",
    "load_run_config",
    "load_train_config",
    "parse_train_config",
    "validate_preset",
]

STAGE_PRESETS: dict[str, dict[str, Any]] = {
    "sft": {
        "learning_rate": 5e-5,
        "vision_learning_rate": 5e-6,
        "warmup_ratio": 0.03,
        "lr_scheduler": "cosine",
        "epochs": 1.0,
        "global_batch_size": 128,
        "max_length": 16384,
        "system": "plain",
    },
    "cot": {
        "learning_rate": 1e-5,
        "vision_learning_rate": 1e-6,
        "warmup_ratio": 0.03,
        "lr_scheduler": "cosine",
        "epochs": 2.0,
        "global_batch_size": 128,
        "max_length": 16384,
        "system": "think",
    },
}
"""The paper's stage 1 (``sft``) and stage 2 (``cot``) settings; a config's own values win."""

PosInt = Annotated[int, Field(strict=True, gt=0)]
PosFloat = Annotated[float, Field(gt=0)]


class TrainConfig(BaseModel):
    """A validated training run (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    stage: Literal["sft", "cot"]
    model: Path
    output_dir: Path
    data: list[dict[str, Any]] = Field(min_length=1)
    seed: Annotated[int, Field(strict=True, ge=0)] = 0
    # preset values (STAGE_PRESETS fills them in)
    learning_rate: PosFloat
    vision_learning_rate: PosFloat
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)]
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"]
    epochs: PosFloat
    global_batch_size: PosInt
    max_length: PosInt
    system: Literal["plain", "think"]
    # run settings
    max_steps: Annotated[int, Field(strict=True, ge=-1)] = -1
    """Stop after this many optimizer steps (-1: run ``epochs``)."""
    per_device_batch_size: PosInt = 1
    """Examples per device per micro-step (``packing: false`` only)."""
    rows_per_device: PosInt = 1
    """Packed rows per device per micro-step (``packing: true`` only)."""
    plan_window: PosInt | None = None
    """Plan packed rows over consecutive windows of this many examples of the mix (None: the
    whole mix at once)."""
    gradient_accumulation_steps: PosInt | None = None
    packing: bool = True
    bf16: bool = True
    gradient_checkpointing: bool = True
    attn_implementation: Literal["auto", "flash_attention_2", "sdpa", "eager"] = "auto"
    """``auto``: flash-attention 2 when the ``flash_attn`` package is installed, else sdpa."""
    freeze_vision: bool = False
    """Freeze the vision tower's patch embedding and blocks (not the merger)."""
    freeze_merger: bool = False
    freeze_language_model: bool = False
    """Freeze the language model and ``lm_head``."""
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    max_grad_norm: Annotated[float, Field(ge=0)] = 1.0
    save_steps: PosInt = 500
    save_total_limit: PosInt | None = None
    logging_steps: PosInt = 1
    dataloader_num_workers: Annotated[int, Field(strict=True, ge=0)] = 0
    use_cpu: bool = False
    min_pixels: PosInt | None = None
    max_pixels: PosInt | None = None
    video_min_pixels: PosInt | None = None
    video_max_pixels: PosInt | None = None
    """Pixel budgets of images and video frames (:class:`vst.models.vision.PixelLimits`;
    unset = the engine's defaults)."""

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        self.pixel_limits()  # raises ValueError on an inconsistent budget
        if self.packing and self.per_device_batch_size != 1:
            raise ValueError(
                f"per_device_batch_size ({self.per_device_batch_size}) counts examples of "
                "unpacked batches; with packing: true set rows_per_device (packed rows per "
                "device per micro-step) instead"
            )
        if not self.packing and (self.rows_per_device != 1 or self.plan_window is not None):
            raise ValueError(
                "rows_per_device and plan_window are for packing: true; without packing set "
                "per_device_batch_size"
            )
        field, micro = self.micro_batch()
        per_step = micro * (self.gradient_accumulation_steps or 1)
        if self.gradient_accumulation_steps is not None and self.global_batch_size % per_step:
            raise ValueError(
                f"global_batch_size ({self.global_batch_size}) is not a multiple of "
                f"{field} x gradient_accumulation_steps ({per_step})"
            )
        if self.global_batch_size % micro:
            raise ValueError(
                f"global_batch_size ({self.global_batch_size}) is not a multiple of "
                f"{field} ({micro})"
            )
        return self

    def system_text(self) -> str | None:
        """The system prompt put first in examples without a system turn (None: the chat
        template's default)."""
        from vst.models.prompts import system_prompt

        return system_prompt(self.system)

    def micro_batch(self) -> tuple[str, int]:
        """``(field name, value)`` of the per-device micro-batch: ``rows_per_device`` (packed
        rows) with packing, else ``per_device_batch_size`` (examples)."""
        if self.packing:
            return "rows_per_device", self.rows_per_device
        return "per_device_batch_size", self.per_device_batch_size

    def pixel_limits(self) -> PixelLimits:
        """The pixel budgets as :class:`PixelLimits` (unset fields: engine defaults)."""
        given = {
            k: getattr(self, k)
            for k in ("min_pixels", "max_pixels", "video_min_pixels", "video_max_pixels")
            if getattr(self, k) is not None
        }
        return PixelLimits(**given)

    def accumulation(self, world_size: int = 1) -> int:
        """Gradient-accumulation steps for ``world_size`` processes, so that the micro-batch
        (:meth:`micro_batch`: ``rows_per_device`` with packing, else
        ``per_device_batch_size``) x accumulation x ``world_size`` == ``global_batch_size``.
        Raises :class:`ConfigError` naming the fields when they cannot multiply out."""
        field, micro = self.micro_batch()
        per_pass = micro * world_size
        if self.gradient_accumulation_steps is not None:
            if per_pass * self.gradient_accumulation_steps != self.global_batch_size:
                raise ConfigError(
                    f"gradient_accumulation_steps: {micro} per device x "
                    f"{self.gradient_accumulation_steps} x {world_size} process(es) is not "
                    f"global_batch_size {self.global_batch_size} ({field} x "
                    "gradient_accumulation_steps x processes)"
                )
            return self.gradient_accumulation_steps
        if self.global_batch_size % per_pass:
            raise ConfigError(
                f"global_batch_size: {self.global_batch_size} is not a multiple of "
                f"{field} {micro} x {world_size} process(es)"
            )
        return self.global_batch_size // per_pass

    def attention(self) -> str:
        """The attention implementation to load the model with (``auto`` resolved)."""
        if self.attn_implementation != "auto":
            return self.attn_implementation
        return "flash_attention_2" if importlib.util.find_spec("flash_attn") else "sdpa"


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"override {key}: {where}: no such list item")
            index: Any = int(part)
        elif isinstance(node, dict):
            index = part
        else:
            raise ConfigError(f"override {key}: {'.'.join(parts[:i])} is not a mapping or list")
        if last:
            node[index] = value
        else:
            if isinstance(node, dict) and index not in node:
                node[index] = {}
            node = node[index]


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of ``data`` with ``key=value`` overrides applied (dotted keys; values parsed as
    YAML scalars, so ``max_steps=10`` is an int and ``bf16=false`` a bool)."""
    out = copy.deepcopy(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected key=value")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        _set_dotted(out, key.strip(), value)
    return out


def validate_preset(model: type[BaseModel], preset: dict[str, Any], data: Any, where: str) -> Any:
    """``model`` validated from ``data`` over ``preset`` (the file's values win);
    :class:`ConfigError` naming ``where`` and each bad field."""
    try:
        return model.model_validate({**preset, **data})
    except ValidationError as exc:
        text = format_errors(exc).replace("\n", f"\n{where}: ")
        raise ConfigError(f"{where}: {text}") from None


def load_run_config(path: str | Path, overrides: list[str] | None, parse: Any) -> Any:
    """Read a run config (YAML), apply ``key=value`` overrides, validate it with ``parse(data,
    where)``; the model directory must exist and ``output_dir`` must not be a file."""
    p = Path(path)
    data = load_yaml(p)
    where = str(p)
    if overrides:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping of options")
        data = apply_overrides(data, overrides)
        where = f"{p} with overrides"
    config = parse(data, where)
    if not config.model.is_dir():
        raise ConfigError(f"{where}: model: {config.model} is not a directory")
    if config.output_dir.exists() and not config.output_dir.is_dir():
        raise ConfigError(f"{where}: output_dir: {config.output_dir} is a file")
    return config


def parse_train_config(data: Any, where: str = "config") -> TrainConfig:
    """Validate a config mapping with its stage's preset filled in; :class:`ConfigError`
    naming ``where`` and each bad field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of options, got {type(data).__name__}")
    stage = data.get("stage")
    if not isinstance(stage, str) or stage not in STAGE_PRESETS:
        got = "missing" if stage is None else f"got {stage!r}"
        raise ConfigError(f"{where}: stage: must be one of {', '.join(STAGE_PRESETS)} ({got})")
    return validate_preset(TrainConfig, STAGE_PRESETS[stage], data, where)


def load_train_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read, override and validate a training config (see the module docstring). The model
    directory must exist; ``output_dir`` must not be a file."""
    return load_run_config(path, overrides, parse_train_config)
