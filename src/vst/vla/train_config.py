"""Configuration of a VLA fine-tuning run (``vst vla train CONFIG``): the SFT run config
(:class:`vst.train.config.TrainConfig`: batches, packing, freezing, saving, overrides) with the
VLA preset and fields of its own.

Example (``configs/vla/tiny_cpu.yaml``)::

    stage: vla
    model: outputs/tiny-model
    output_dir: outputs/vla/train-tiny
    data:                                   # folders written by `vst vla convert`
      - {path: outputs/vla/libero_spatial}  # optional: name, weight
    vocabulary: added                       # added (the release) | last (OpenVLA)
    held_out: 0.1                           # share of episodes kept out of training
    max_steps: 20

The preset is the release's recommended LIBERO run (VST-RELEASE.md §4, assets/vla.md):
learning rate 5e-5, vision tower 5e-6, warmup ratio 0.1, cosine, 200 epochs, rows of 1,024
tokens packed, 16 rows per device, 128 per optimizer step, fp32 (the release trains without
mixed precision), saves every 500 steps, no system turn (the chat template's default).

``norm_stats`` (default: the first data folder's ``norm_stats.json`` when it exists) turns the
held-out L1 into the environment's units as well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vst.engine.config import ConfigError
from vst.train.config import TrainConfig, load_run_config, validate_preset

__all__ = ["VLA_PRESET", "VlaData", "VlaTrainConfig", "load_vla_config", "parse_vla_config"]

VLA_PRESET: dict[str, Any] = {
    "learning_rate": 5e-5,
    "vision_learning_rate": 5e-6,
    "warmup_ratio": 0.1,
    "lr_scheduler": "cosine",
    "epochs": 200.0,
    "global_batch_size": 128,
    "rows_per_device": 16,
    "max_length": 1024,
    "bf16": False,
    "save_steps": 500,
    "system": "none",
}
"""The release's recommended VLA settings; a config's own values win."""

PosInt = Annotated[int, Field(strict=True, gt=0)]


class VlaData(BaseModel):
    """One data folder (or parquet file) of LIBERO parquet shards."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path
    kind: Literal["vla_libero"] = "vla_libero"
    name: str | None = Field(None, min_length=1)
    weight: float = Field(1.0, ge=0, allow_inf_nan=False)

    @property
    def label(self) -> str:
        return self.name or f"vla:{self.path}"


class VlaTrainConfig(TrainConfig):
    """A validated VLA run (see the module docstring)."""

    stage: Literal["vla"]  # type: ignore[assignment]
    system: Literal["none"]  # type: ignore[assignment]
    vocabulary: Literal["added", "last"] = "added"
    bins: Annotated[int, Field(strict=True, ge=2)] = 256
    action_dim: PosInt = 7
    held_out: Annotated[float, Field(ge=0, lt=1)] = 0.05
    """Share of episodes kept out of training and scored (whole episodes, seeded)."""
    eval_steps: PosInt | None = None
    """Score the action tokens every this many optimizer steps (None: at each save) and at the
    end."""
    eval_samples: PosInt = 256
    """Held-out (and training) samples scored each time, a fixed seeded subset."""
    eval_batch_size: PosInt = 8
    norm_stats: Path | None = None

    def system_text(self) -> str | None:
        """None: no system turn (the chat template's default), as the release trains."""
        return None

    def data_sources(self, where: str = "config") -> list[VlaData]:
        """The ``data`` entries validated; :class:`ConfigError` naming the entry and field."""
        out = []
        for i, d in enumerate(self.data):
            try:
                out.append(VlaData.model_validate(d))
            except ValidationError as exc:
                err = exc.errors()[0]
                loc = ".".join(str(p) for p in err["loc"]) or "source"
                raise ConfigError(f"{where}: data.{i}.{loc}: {err['msg']}") from None
        return out

    def stats_path(self) -> Path | None:
        """``norm_stats``, else the first data folder's ``norm_stats.json`` if it exists."""
        if self.norm_stats is not None:
            return self.norm_stats
        first = Path(self.data[0].get("path", ""))
        candidate = (first if first.is_dir() else first.parent) / "norm_stats.json"
        return candidate if candidate.is_file() else None

    @property
    def eval_every(self) -> int:
        return self.eval_steps if self.eval_steps is not None else self.save_steps


def parse_vla_config(data: Any, where: str = "config") -> VlaTrainConfig:
    """Validate a VLA config mapping over :data:`VLA_PRESET`; :class:`ConfigError` naming
    ``where`` and each bad field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of options, got {type(data).__name__}")
    if data.get("stage", "vla") != "vla":
        raise ConfigError(f"{where}: stage: must be vla (got {data.get('stage')!r})")
    config = validate_preset(VlaTrainConfig, VLA_PRESET, {"stage": "vla", **data}, where)
    config.data_sources(where)
    if config.norm_stats is not None and not config.norm_stats.is_file():
        raise ConfigError(f"{where}: norm_stats: {config.norm_stats} is not a file")
    return config


def load_vla_config(path: str | Path, overrides: list[str] | None = None) -> VlaTrainConfig:
    """Read, override and validate a VLA config (the model directory must exist)."""
    return load_run_config(path, overrides, parse_vla_config)
