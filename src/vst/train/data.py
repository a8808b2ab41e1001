"""Training data: source configs, the sources they open, and a deterministic weighted mix.

A config's ``data:`` section is a list of source dicts (:class:`DataSource`, unknown fields
refused)::

    data:
      - {kind: vst, path: runs/paper/data, tasks: ["si_*", "video_*"], weight: 1.0}
      - {kind: llava, path: llava/data.json, images: llava/images, weight: 0.5}
      - {kind: hf_parquet, path: general/, weight: 1.0}
      - {kind: vst_release, path: vst_500k/si_distance/}
      - {kind: vst, path: runs/cot/data, system: think}        # CoT data
      - {kind: vst_release_rl, path: vst_r_rl/}                 # RL rows (GRPO)

Kinds (readers in :mod:`vst.train.sources`): ``vst`` (vst shards, optional ``tasks`` filter and
``splits`` filter on the scene split, ``meta["split"]``, e.g. ``[train]``),
``llava`` (LLaVA JSON/JSONL + ``images`` folder), ``hf_parquet`` (``messages`` + ``images``),
``vst_release`` (the release's parquet), ``vst_release_rl`` (the release's RL parquet, or
``vst data export --format verl``: ``[user, assistant]`` examples with ``meta["reward"]``, no
system turn). ``system: plain|think`` puts that system prompt on every example of the source
(``think`` also requires ``<think>...</think> answer`` targets; not for ``vst_release_rl``,
whose prompt the RL run adds).

Mixing (:func:`mix`), exactly:

* without ``total``, source *i* with *n_i* usable examples and weight *w_i* contributes
  ``floor(w_i * n_i + 0.5)`` draws: weight 1 = every example once per epoch, 0.5 = a seeded half,
  2 = every example twice (weights scale each source's own size);
* with ``total``, the draws are split in proportion to the weights (``total * w_i / sum(w)``,
  largest remainders, ties to the earlier source): weights are relative shares of the mix;
* a source's draws walk seeded permutations of its examples, a fresh one per pass, so repeats
  only start once every example was drawn; all draws are then shuffled together with the seed.
  Every choice comes from ``seed`` and the source names (never from Python's ``hash``), so the
  same configs and seed give the same order and ids.

Only indices are held; each example is decoded when it is asked for (:class:`MixedExamples`).
An example that fails to decode is recorded in the report and replaced by the next usable
example of the same source (in index order), so per-source counts stay as planned.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from vst.train.examples import TrainExample
from vst.train.sources import (
    HfParquet,
    ItemError,
    LlavaJson,
    ReleaseParquet,
    ReleaseRLParquet,
    Skip,
    Source,
    VstShards,
)

__all__ = [
    "DataSource",
    "MixReport",
    "MixedExamples",
    "SourceReport",
    "load_source",
    "mix",
    "open_source",
    "source_from_dict",
]

Kind = Literal["vst", "llava", "hf_parquet", "vst_release", "vst_release_rl"]
KINDS: tuple[str, ...] = Kind.__args__

_ONLY_FOR: dict[str, tuple[str, ...]] = {
    "tasks": ("vst",),
    "splits": ("vst",),
    "modes": ("vst",),
    "images": ("llava",),
    "video_fps": ("llava", "hf_parquet", "vst_release"),
    "max_frames": ("llava", "vst_release"),
    "system": ("vst", "llava", "hf_parquet", "vst_release"),
}
"""Fields that apply to some kinds only."""


class DataSource(BaseModel):
    """One training data source (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    path: Path
    name: str | None = Field(None, min_length=1, description="report key (default kind:path)")
    weight: float = Field(1.0, ge=0, allow_inf_nan=False)
    system: Literal["plain", "think"] | None = None
    tasks: list[str] | None = Field(None, min_length=1, description="vst: task names or globs")
    splits: list[str] | None = Field(
        None, min_length=1, description='vst: only samples of these scene splits (meta["split"])'
    )
    modes: list[str] | None = Field(
        None, min_length=1, description="vst: only samples whose reward mode is one of these"
    )
    images: Path | None = Field(None, description="llava: the image folder (default: beside)")
    video_fps: float = Field(2.0, gt=0, allow_inf_nan=False)
    max_frames: int = Field(64, ge=1)

    @field_validator("modes")
    @classmethod
    def _known_modes(cls, modes: list[str] | None) -> list[str] | None:
        from vst.rewards import MODES

        unknown = [m for m in modes or [] if m not in MODES]
        if unknown:
            raise ValueError(f"unknown reward mode(s) {unknown}; expected some of {list(MODES)}")
        return modes

    @model_validator(mode="after")
    def _fields_of_kind(self) -> DataSource:
        for name, kinds in _ONLY_FOR.items():
            if name in self.model_fields_set and self.kind not in kinds:
                raise ValueError(f"field {name!r} applies to kind {' / '.join(kinds)} only")
        return self

    @property
    def label(self) -> str:
        """The source's name in reports and in :attr:`TrainExample.source`."""
        return self.name or f"{self.kind}:{self.path}"


def source_from_dict(d: Any, where: str, base: Path | None = None) -> DataSource:
    """A :class:`DataSource` from a config dict; relative paths are taken under ``base`` when
    given. ``ValueError`` ``"<where>: <field>: <problem>"`` on anything wrong."""
    if not isinstance(d, Mapping):
        raise ValueError(f"{where}: a data source must be a mapping, got {type(d).__name__}")
    kind = d.get("kind")
    for name, kinds in _ONLY_FOR.items():
        if name in d and kind in KINDS and kind not in kinds:
            raise ValueError(f"{where}: {name}: applies to kind {' / '.join(kinds)} only")
    try:
        cfg = DataSource.model_validate(dict(d))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "source"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown field (allowed: {', '.join(DataSource.model_fields)})"
        raise ValueError(f"{where}: {loc}: {msg}") from None
    if base is not None:
        updates: dict[str, Any] = {}
        for name in ("path", "images"):
            value = getattr(cfg, name)
            if value is not None and not value.is_absolute():
                updates[name] = base / value
        cfg = cfg.model_copy(update=updates)
    return cfg


def open_source(cfg: DataSource, rl: bool = False) -> Source:
    """The indexed source of ``cfg``; ``ValueError`` naming the source when it cannot be read.
    ``rl=True`` opens it for the GRPO stage: vst shards keep only rule-checkable image samples
    (:class:`~vst.train.sources.VstShards`), and no source applies its ``system`` (the RL
    prompt builder does, :mod:`vst.train.rl_data`)."""
    if not cfg.path.exists():
        raise ValueError(f"data source {cfg.label}: {cfg.path} does not exist")
    if rl:
        cfg = cfg.model_copy(update={"system": None})
    try:
        if cfg.kind == "vst":
            return VstShards(
                cfg.label, cfg.path, cfg.tasks, cfg.system, cfg.splits, cfg.modes, rl=rl
            )
        if cfg.kind == "llava":
            return LlavaJson(
                cfg.label, cfg.path, cfg.images, cfg.system, cfg.video_fps, cfg.max_frames
            )
        if cfg.kind == "hf_parquet":
            return HfParquet(cfg.label, cfg.path, cfg.system, cfg.video_fps)
        if cfg.kind == "vst_release_rl":
            return ReleaseRLParquet(cfg.label, cfg.path)
        return ReleaseParquet(cfg.label, cfg.path, cfg.system, cfg.video_fps, cfg.max_frames)
    except (ValueError, OSError) as exc:
        raise ValueError(f"data source {cfg.label}: {exc}") from None


def load_source(cfg: DataSource) -> Iterator[TrainExample]:
    """Every usable example of ``cfg`` in its own order (pictures decoded one example at a
    time); unusable ones are skipped (see :attr:`Source.skipped` via :func:`open_source`)."""
    yield from open_source(cfg).examples()


# -- report ----------------------------------------------------------------------------------
@dataclass
class SourceReport:
    """One source in a mix: ``available`` usable examples (after skips found while indexing),
    ``drawn`` draws planned, ``unique`` distinct examples among them, ``skipped`` (found while
    indexing and, as they are met, while loading)."""

    name: str
    kind: str
    weight: float
    available: int
    drawn: int
    unique: int
    skipped: list[Skip] = field(default_factory=list)


@dataclass
class MixReport:
    """What a mix draws from each source (see :class:`SourceReport`)."""

    seed: int
    total: int
    sources: list[SourceReport]

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "total": self.total,
            "sources": [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "weight": s.weight,
                    "available": s.available,
                    "drawn": s.drawn,
                    "unique": s.unique,
                    "skipped": len(s.skipped),
                    "skip_reasons": [f"{k.id}: {k.reason}" for k in s.skipped],
                }
                for s in self.sources
            ],
        }

    def to_markdown(self, reasons: int = 5) -> str:
        """A table per source (weight, available, drawn, share, unique, skipped), then up to
        ``reasons`` skip reasons per source."""
        lines = [
            f"Mix of {self.total} examples (seed {self.seed})",
            "",
            "| source | kind | weight | available | drawn | share | unique | skipped |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for s in self.sources:
            share = s.drawn / self.total if self.total else 0.0
            lines.append(
                f"| {s.name} | {s.kind} | {s.weight:g} | {s.available} | {s.drawn} | "
                f"{share:.1%} | {s.unique} | {len(s.skipped)} |"
            )
        for s in self.sources:
            if s.skipped:
                lines += ["", f"Skipped from {s.name}:"]
                lines += [f"- {k.id}: {k.reason}" for k in s.skipped[:reasons]]
                if len(s.skipped) > reasons:
                    lines.append(f"- ... and {len(s.skipped) - reasons} more")
        return "\n".join(lines) + "\n"


# -- mixing ----------------------------------------------------------------------------------
def _stable(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def _counts(available: list[int], weights: list[float], total: int | None) -> list[int]:
    if total is None:
        return [math.floor(w * n + 0.5) for w, n in zip(weights, available, strict=True)]
    s = sum(weights)
    if s <= 0:
        raise ValueError("mix: the weights sum to zero")
    exact = [total * w / s for w in weights]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


class MixedExamples(Sequence[TrainExample]):
    """The mixed examples in order: ``len``, indexing and iteration decode lazily (a map-style
    dataset). Decoding failures are reported and replaced (see the module docstring)."""

    def __init__(self, sources: list[Source], src: np.ndarray, item: np.ndarray):
        self.sources = sources
        self.src = src
        self.item = item
        self._bad: list[set[int]] = [set() for _ in sources]

    def __len__(self) -> int:
        return len(self.src)

    def plan(self) -> list[tuple[str, int]]:
        """``(source name, index in the source)`` of every draw, in order."""
        return [(self.sources[s].name, int(k)) for s, k in zip(self.src, self.item, strict=True)]

    def __getitem__(self, i: int) -> TrainExample:  # type: ignore[override]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        s, k = int(self.src[i]), int(self.item[i])
        source = self.sources[s]
        n = len(source)
        for step in range(n):
            j = (k + step) % n
            if j in self._bad[s]:
                continue
            try:
                return source.load(j)
            except ItemError as exc:
                self._bad[s].add(j)
                source.skip(exc.id, exc.reason)
        raise RuntimeError(f"data source {source.name}: no example can be loaded")

    def __iter__(self) -> Iterator[TrainExample]:
        for i in range(len(self)):
            yield self[i]

    def check(self) -> int:
        """Load every distinct drawn example once (reports every decoding failure up front);
        returns how many failed."""
        before = sum(len(b) for b in self._bad)
        for s, source in enumerate(self.sources):
            for k in sorted(set(self.item[self.src == s].tolist())):
                if k in self._bad[s]:
                    continue
                try:
                    source.load(k)
                except ItemError as exc:
                    self._bad[s].add(k)
                    source.skip(exc.id, exc.reason)
        return sum(len(b) for b in self._bad) - before


def mix(
    sources: Sequence[DataSource | Source],
    weights: Sequence[float] | None = None,
    seed: int = 0,
    total: int | None = None,
) -> tuple[MixedExamples, MixReport]:
    """The deterministic weighted mix of ``sources`` (configs or opened sources) and its
    report. ``weights`` default to the configs' ``weight`` (1 for opened sources)."""
    if not sources:
        raise ValueError("mix: no data sources")
    opened = [open_source(s) if isinstance(s, DataSource) else s for s in sources]
    if weights is None:
        weights = [s.weight if isinstance(s, DataSource) else 1.0 for s in sources]
    weights = [float(w) for w in weights]
    if len(weights) != len(opened):
        raise ValueError(f"mix: {len(weights)} weights for {len(opened)} sources")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ValueError(f"mix: weights must be finite and >= 0, got {weights}")
    if total is not None and total < 0:
        raise ValueError(f"mix: total must be >= 0, got {total}")
    names = [s.name for s in opened]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"mix: source names must be unique ({', '.join(dupes)}); set 'name'")
    available = [len(s) for s in opened]
    counts = _counts(available, weights, total)
    for s, n, w in zip(opened, available, weights, strict=True):
        if w > 0 and not n:
            first = f" (first: {s.skipped[0].id}: {s.skipped[0].reason})" if s.skipped else ""
            raise ValueError(
                f"data source {s.name}: no usable examples, {len(s.skipped)} skipped{first}"
            )
    src_parts, item_parts, reports = [], [], []
    for i, (s, n, c, w) in enumerate(zip(opened, available, counts, weights, strict=True)):
        rng = np.random.default_rng([seed & 0xFFFFFFFF, _stable(s.name)])
        passes = [rng.permutation(n) for _ in range(-(-c // n))] if c else []
        items = np.concatenate(passes)[:c] if passes else np.zeros(0, dtype=np.int64)
        src_parts.append(np.full(c, i, dtype=np.int32))
        item_parts.append(items.astype(np.int64))
        reports.append(SourceReport(s.name, s.kind, w, n, c, len(np.unique(items)), s.skipped))
    src = np.concatenate(src_parts)
    item = np.concatenate(item_parts)
    order = np.random.default_rng([seed & 0xFFFFFFFF, _stable("mix")]).permutation(len(src))
    mixed = MixedExamples(opened, src[order], item[order])
    return mixed, MixReport(seed, len(src), reports)
