"""``vst reason cot`` without a teacher: offline CoT (:mod:`vst.reasoning.offline`) for every
sample of the chosen tasks in an engine run, written as CoT shards (:mod:`vst.reasoning.samples`).

:func:`run_offline_cot` reads the run's shards in order, rebuilds each sample's facts from the
scenes, writes one CoT sample per (sample, kind) it can explain and counts the others with a
reason; a rerun resumes (pairs already in ``<out>/data`` are counted as ``resumed``, nothing is
written twice). The report (:class:`OfflineReport`) is also saved as ``<out>/offline_report.json``.
"""

from __future__ import annotations

import fnmatch
import json
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vst.atomic import atomic_write_bytes
from vst.engine.verify import SceneIndex
from vst.engine.writer import iter_rows, list_shards
from vst.reasoning.facts import sample_facts
from vst.reasoning.offline import OFFLINE_KINDS, OfflineCot, explain_offline_cot
from vst.reasoning.samples import CotShardWriter, cot_sample, prompt_version, row_image_format

__all__ = [
    "DEFAULT_TASKS",
    "OFFLINE_VERSION",
    "OfflineReport",
    "TaskStats",
    "offline_prompt_version",
    "run_offline_cot",
]

DEFAULT_TASKS: tuple[str, ...] = (
    "mi_object_object",
    "mi_camera_object",
    "mi_camera_camera",
    "mi_camera_motion",
)
"""The paper's VST-R CoT tasks (multi-image object-object, camera-object, camera-camera and
camera motion)."""

OFFLINE_VERSION = "offline-cot-2"
"""Bumped when the offline texts change (part of the prompt version in the provenance)."""


def offline_prompt_version(kind: str) -> str:
    """The 12-hex ``prompt_version`` of offline CoT of ``kind``."""
    return prompt_version("vst.reasoning.offline", OFFLINE_VERSION, kind)


@dataclass
class TaskStats:
    """One task's counts: source samples ``seen``, CoT ``kept`` per kind, ``skipped`` per
    reason, ``resumed`` (already on disk) and the kept reasonings' lengths in words."""

    seen: int = 0
    kept: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    resumed: int = 0
    words: list[int] = field(default_factory=list)
    example: dict[str, str] | None = None

    def length_stats(self) -> dict[str, float] | None:
        """``{"min", "median", "mean", "max"}`` words of the kept reasonings (None if none)."""
        if not self.words:
            return None
        return {
            "min": min(self.words),
            "median": float(statistics.median(self.words)),
            "mean": round(statistics.fmean(self.words), 1),
            "max": max(self.words),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "kept": dict(sorted(self.kept.items())),
            "skipped": dict(self.skipped.most_common()),
            "resumed": self.resumed,
            "words": self.length_stats(),
            "example": self.example,
        }


@dataclass
class OfflineReport:
    """Per-task :class:`TaskStats` of a run, the shards written and where."""

    out_dir: Path
    kinds: tuple[str, ...]
    tasks: dict[str, TaskStats] = field(default_factory=dict)
    shards: list[Path] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return sum(sum(t.kept.values()) for t in self.tasks.values())

    @property
    def skipped(self) -> int:
        return sum(sum(t.skipped.values()) for t in self.tasks.values())

    @property
    def resumed(self) -> int:
        return sum(t.resumed for t in self.tasks.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "kinds": list(self.kinds),
            "kept": self.kept,
            "skipped": self.skipped,
            "resumed": self.resumed,
            "shards": [p.name for p in self.shards],
            "tasks": {k: v.to_dict() for k, v in sorted(self.tasks.items())},
        }

    def lines(self) -> list[str]:
        """The report as printable lines: totals, then one line per task (kept per kind,
        skips with reasons, reasoning length in words)."""
        out = [
            f"offline CoT ({', '.join(self.kinds)}) -> {self.out_dir / 'data'}: kept {self.kept}, "
            f"skipped {self.skipped}, resumed {self.resumed}, {len(self.shards)} new shard(s)"
        ]
        for name, t in sorted(self.tasks.items()):
            kept = ", ".join(f"{k} {n}" for k, n in sorted(t.kept.items())) or "none"
            ls = t.length_stats()
            words = f"; words min {ls['min']} median {ls['median']:g} max {ls['max']}" if ls else ""
            out.append(f"  {name}: {t.seen} samples; kept {kept}; resumed {t.resumed}{words}")
            for reason, n in t.skipped.most_common():
                out.append(f"    skipped {n}: {reason}")
        return out


def run_offline_cot(
    run_dir: str | Path,
    scenes_dir: str | Path,
    out_dir: str | Path,
    kinds: Sequence[str] = ("num", "rt"),
    tasks: Sequence[str] = DEFAULT_TASKS,
    limit: int | None = None,
    *,
    shard_size: int = 256,
    image_format: str | None = None,
) -> OfflineReport:
    """Offline CoT of ``kinds`` for the samples of ``tasks`` (names or globs) in the engine run
    ``run_dir`` (its shards), whose scenes are under ``scenes_dir``; at most ``limit`` source
    samples per task (in shard order). Shards go to ``<out_dir>/data`` (``image_format``: as
    the source pictures when None). Resumable (module docstring)."""
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in OFFLINE_KINDS]
    if bad or not kinds:
        raise ValueError(f"offline CoT kinds must be some of {OFFLINE_KINDS}, got {list(kinds)}")
    shards = list_shards(run_dir)
    if not shards:
        raise ValueError(f"{run_dir}: no shards to take samples from")
    out = Path(out_dir)
    scenes = SceneIndex(Path(scenes_dir))
    report = OfflineReport(out, kinds)
    writer: CotShardWriter | None = None
    try:
        for shard in shards:
            for row in iter_rows(shard):
                task = str(row.get("task") or "")
                if not any(fnmatch.fnmatchcase(task, pat) for pat in tasks):
                    continue
                stats = report.tasks.setdefault(task, TaskStats())
                if limit is not None and stats.seen >= limit:
                    continue
                stats.seen += 1
                if writer is None:
                    fmt = image_format or row_image_format(row)
                    writer = CotShardWriter(out, shard_size=shard_size, image_format=fmt)
                _one_row(row, scenes, kinds, writer, stats)
    finally:
        if writer is not None:
            report.shards = [i.path for i in writer.close()]
    out.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(report.to_dict(), indent=2, sort_keys=True).encode()
    atomic_write_bytes(out / "offline_report.json", payload)
    return report


def _one_row(row, scenes, kinds, writer: CotShardWriter, stats: TaskStats) -> None:
    sid = str(row.get("id") or "?")
    todo = [k for k in kinds if not writer.is_done(sid, k)]
    stats.resumed += len(kinds) - len(todo)
    if not todo:
        return
    try:
        facts = sample_facts(row, scenes)
    except (ValueError, KeyError, TypeError, OSError) as exc:
        reason = str(exc).removeprefix(f"sample {sid}: ")
        stats.skipped[f"no scene facts: {reason}"] += len(todo)
        return
    for kind in todo:
        cot = explain_offline_cot(facts, kind)
        if not isinstance(cot, OfflineCot):
            stats.skipped[cot] += 1
            continue
        provenance = {
            "source": "offline",
            "kind": kind,
            "teacher": None,
            "prompt_version": offline_prompt_version(kind),
            "attempts": 1,
            "tokens": {"prompt": 0, "completion": 0},
        }
        try:
            sample = cot_sample(row, cot.reasoning, cot.answer, provenance)
        except (ValueError, KeyError, TypeError) as exc:
            stats.skipped[f"rejected: {str(exc).removeprefix(f'sample {sid}: ')}"] += 1
            continue
        writer.add(sample)
        stats.kept[kind] += 1
        stats.words.append(len(cot.reasoning.split()))
        if stats.example is None:
            stats.example = {
                "id": sid,
                "kind": kind,
                "reasoning": cot.reasoning,
                "answer": cot.answer,
            }
