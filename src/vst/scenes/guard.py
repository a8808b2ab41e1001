"""The benchmark-leakage guard: keeps evaluation scenes out of training data.

Every scene a run would use is looked up in a :class:`~vst.scenes.splits.BenchmarkRegistry` by
``(dataset, native id)``. A benchmark scene found by scanning a source (a dataset folder, a folder
of scene directories) is excluded and recorded; a benchmark scene the user named explicitly (a
source's ``scenes:`` list, or a scenes path that is itself one scene directory) is an error that
names the scene and the benchmark, because silently dropping what the user asked for would hide
the leak. ``allow=True`` (config ``benchmark_guard.allow_benchmark_scenes``, CLI
``--allow-benchmark-scenes``) includes benchmark scenes anyway and records them as included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vst.scenes.splits import BenchmarkRegistry

__all__ = ["READER_BENCHMARK_PREFIXES", "BenchmarkGuard", "BenchmarkSceneError", "GuardEntry"]

READER_BENCHMARK_PREFIXES = ("omni3d-",)
"""Benchmark names that readers assign themselves (not from a shipped list): Omni3D images of an
evaluation split file (``SUNRGBD_test.json`` -> ``omni3d-sunrgbd-test``)."""


class BenchmarkSceneError(ValueError):
    """A configuration explicitly names a scene that an evaluation benchmark uses."""


@dataclass(frozen=True)
class GuardEntry:
    """One benchmark scene met by the guard (excluded, or included by override)."""

    scene_id: str
    dataset: str
    native_id: str
    benchmarks: tuple[str, ...]
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "scene_id": self.scene_id,
            "dataset": self.dataset,
            "native_id": self.native_id,
            "benchmarks": list(self.benchmarks),
            "source": self.source,
        }


@dataclass
class BenchmarkGuard:
    """Decides, scene by scene, whether a benchmark scene may be used (see the module docstring).

    ``excluded`` and ``included`` collect the benchmark scenes met, for the run report."""

    registry: BenchmarkRegistry
    allow: bool = False
    only: frozenset[str] | None = None
    """When set, only these benchmarks count (registry entries and reader-known ones)."""
    excluded: list[GuardEntry] = field(default_factory=list)
    included: list[GuardEntry] = field(default_factory=list)

    @classmethod
    def default(
        cls,
        allow: bool = False,
        benchmarks: list[str] | None = None,
        extra_lists: list[str | Path] = (),
    ) -> BenchmarkGuard:
        """The guard over the shipped registry, restricted to ``benchmarks`` when given (shipped
        list names, or ``omni3d-*`` names of evaluation splits Omni3D readers recognise), plus
        user lists (text or JSON files, see :meth:`BenchmarkRegistry.load_user_list`; ValueError
        naming the file when one cannot be read or parsed)."""
        only = None
        if benchmarks is None:
            registry = BenchmarkRegistry.load_default()
        else:
            only = frozenset(benchmarks)
            shipped = [b for b in benchmarks if not b.startswith(READER_BENCHMARK_PREFIXES)]
            registry = BenchmarkRegistry.load_default(benchmarks=shipped)
        for path in extra_lists:
            name = f"user list {Path(path).name}"
            try:
                registry.load_user_list(path, benchmark=name)
            except UnicodeDecodeError:
                raise ValueError(f"cannot read scene list {path}: not UTF-8 text") from None
            except RecursionError:
                raise ValueError(f"cannot read scene list {path}: nested too deeply") from None
            if only is not None:
                only = only | {name}
        return cls(registry, allow, only=only)

    def admit(
        self,
        scene_id: str,
        dataset: str,
        native_id: str,
        *,
        explicit: bool,
        source: str,
        known: tuple[str, ...] = (),
    ) -> bool:
        """True if the scene may be used. A benchmark scene (in the registry, or ``known`` to be
        one by its reader) is excluded (False) when met by a scan, included (True) with
        ``allow``; named explicitly without ``allow`` it raises :class:`BenchmarkSceneError`
        naming the scene, dataset, benchmark(s) and ``source``."""
        benchmarks = set(self.registry.lookup(native_id, dataset)) | set(known)
        if native_id != scene_id:
            benchmarks |= set(self.registry.lookup(scene_id, dataset))
        if self.only is not None:
            benchmarks &= self.only
        if not benchmarks:
            return True
        entry = GuardEntry(scene_id, dataset, native_id, tuple(sorted(benchmarks)), source)
        if self.allow:
            self.included.append(entry)
            return True
        if explicit:
            raise BenchmarkSceneError(
                f"{source}: scene {native_id!r} of {dataset} is an evaluation scene of "
                f"{', '.join(entry.benchmarks)}; training data must not contain it. Remove it, "
                "or set benchmark_guard.allow_benchmark_scenes: true (CLI: "
                "--allow-benchmark-scenes) to include it anyway."
            )
        self.excluded.append(entry)
        return False

    def summary(self) -> str:
        """One line for logs: how many benchmark scenes were excluded / included."""
        per: dict[str, int] = {}
        for e in self.excluded:
            for b in e.benchmarks:
                per[b] = per.get(b, 0) + 1
        detail = ", ".join(f"{b}: {n}" for b, n in sorted(per.items()))
        text = f"{len(self.excluded)} benchmark scene(s) excluded" + (
            f" ({detail})" if detail else ""
        )
        if self.included:
            text += f"; {len(self.included)} included by override"
        return text
