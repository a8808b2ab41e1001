"""Planning a run: sources -> scene directories -> work units (one shard each).

:func:`resolve_sources` turns the config's sources into scene directories (synthetic sources
are rendered into ``<output>/scenes``, datasets imported, the benchmark-leakage guard applied),
sorted by (directory name, path). :func:`plan_units` splits them into :class:`WorkUnit` s of
``scenes_per_shard`` scenes whose *key* hashes everything that changes their samples, so a
unit's shard name (``data/shard-{index:05d}-{key[:12]}.parquet``) is the same on any machine
and for any executor. Planning never runs units; see :mod:`vst.engine.executors`.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vst.engine.config import EngineConfig
from vst.engine.errors import EngineInputError, os_failure
from vst.engine.registry import Task, get_task
from vst.engine.sample import GENERATOR_VERSION, canonical_json
from vst.engine.writer import SHARD_FORMAT_VERSION, shard_name
from vst.scenes.errors import SceneError
from vst.scenes.files import read_json
from vst.scenes.io import SCENE_FILE, find_scene_dirs
from vst.workers import die_with_parent

__all__ = [
    "SYNTH_CHUNK",
    "SourcesResolved",
    "WorkUnit",
    "plan_units",
    "resolve_sources",
    "task_classes",
]


@dataclass(frozen=True)
class WorkUnit:
    """Scenes whose samples go to one shard."""

    index: int
    scene_dirs: tuple[str, ...]
    key: str

    @property
    def shard(self) -> str:
        return shard_name(self.index, self.key)


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class SourcesResolved:
    """Scene directories of a run's sources, and what the guard and the imports did."""

    dirs: list[Path]
    excluded_benchmark: list[dict[str, Any]] = field(default_factory=list)
    included_benchmark: list[dict[str, Any]] = field(default_factory=list)
    imports: list[dict[str, Any]] = field(default_factory=list)


def _scene_header(scene_dir: Path) -> tuple[str, str, str, tuple[str, ...]]:
    """``(scene id, dataset, native id, benchmarks its reader knew)`` from ``scene.json``."""
    try:
        rec = read_json(scene_dir / SCENE_FILE)
        attrs = rec.get("attributes") or {}
        sid = str(rec.get("id", scene_dir.name))
        known = tuple(str(b) for b in attrs.get("benchmarks") or ())
        return sid, str(rec.get("source", "")), str(attrs.get("native_id", sid)), known
    except (SceneError, AttributeError, TypeError):
        return scene_dir.name, "", scene_dir.name, ()  # unreadable: the unit reports it


def _existing_scene_dirs(src: Any, i: int, guard: Any) -> list[Path]:
    """Scene directories of a ``scenes`` source, filtered by its ``scenes`` list and the
    guard (a path that is one scene directory, or a ``scenes`` list, is an explicit choice)."""
    from vst.scenes.guard import BenchmarkSceneError

    where = f"sources.{i} ({src.path})"
    if not src.path.exists():
        raise EngineInputError(f"sources.{i}: scenes path {src.path} does not exist")
    found = find_scene_dirs(src.path)
    if not found:
        raise EngineInputError(
            f"sources.{i}: no scene directories (folders with {SCENE_FILE}) under {src.path}"
        )
    explicit = src.scenes is not None or (src.path / SCENE_FILE).is_file()
    headers = {d: _scene_header(d) for d in found}
    if src.scenes is not None:
        wanted = set(src.scenes)
        found = [d for d in found if d.name in wanted or headers[d][0] in wanted]
        missing = wanted - {d.name for d in found} - {headers[d][0] for d in found}
        if missing:
            raise EngineInputError(f"{where}: no scene named {', '.join(sorted(missing))}")
    kept = []
    for d in found:
        sid, dataset, native, known = headers[d]
        try:
            if guard.admit(sid, dataset, native, explicit=explicit, source=where, known=known):
                kept.append(d)
        except BenchmarkSceneError as exc:
            raise EngineInputError(str(exc)) from None
    return kept


def _import_dataset(
    config: EngineConfig, src: Any, i: int, guard: Any, on_scene: Callable | None
) -> tuple[list[Path], dict[str, Any]]:
    """Import a dataset source into ``<output>/scenes/<kind>-<i>`` (resumable)."""
    from vst.scenes.guard import BenchmarkSceneError
    from vst.scenes.sources.importer import ImportWriteError, import_scenes

    where = f"sources.{i} ({src.kind} {src.path})"
    try:
        reader = src.reader()
        result = import_scenes(
            reader,
            config.scenes_dir / f"{src.kind}-{i}",
            scenes=src.scenes,
            limit=src.limit,
            guard=guard,
            where=where,
            on_scene=(lambda sid, status: on_scene(Path(sid), status == "failed"))
            if on_scene
            else None,
            workers=config.workers,
        )
    except BenchmarkSceneError as exc:
        raise EngineInputError(str(exc)) from None
    except ImportWriteError as exc:
        raise os_failure(exc.error) from None
    except (FileNotFoundError, ValueError) as exc:
        raise EngineInputError(f"{where}: {exc}") from None
    summary = result.to_dict()
    summary["summary"] = result.summary()
    return result.scene_dirs(), summary


def resolve_sources(
    config: EngineConfig, on_scene: Callable[[Path, bool], None] | None = None
) -> SourcesResolved:
    """Scene directories of every source (synthesising synthetic ones, importing datasets),
    benchmark scenes excluded by the guard, deduplicated and sorted by (directory name, path)."""
    try:
        guard = config.benchmark_guard.guard()
    except ValueError as exc:  # an extra_lists file that cannot be read
        raise EngineInputError(f"benchmark_guard.extra_lists: {exc}") from None
    dirs: list[Path] = []
    imports = []
    synthetic = [s for s in config.sources if s.kind == "synthetic"]
    for i, src in enumerate(config.sources):
        if src.kind == "synthetic":
            out = config.scenes_dir if len(synthetic) == 1 else config.scenes_dir / f"source-{i}"
            dirs.extend(_synthesise(src.synth_config(config.seed), out, config.workers, on_scene))
        elif src.kind == "scenes":
            dirs.extend(_existing_scene_dirs(src, i, guard))
        else:
            found, summary = _import_dataset(config, src, i, guard, on_scene)
            dirs.extend(found)
            imports.append({"source": i, **summary})
    unique = {str(d.resolve()): d for d in dirs}
    return SourcesResolved(
        dirs=sorted(unique.values(), key=lambda d: (d.name, str(d.resolve()))),
        excluded_benchmark=[e.to_dict() for e in guard.excluded],
        included_benchmark=[e.to_dict() for e in guard.included],
        imports=imports,
    )


SYNTH_CHUNK = 4
"""Synthetic scenes per pool job when ``workers > 1``."""


def _synth_chunk(cfg: Any, out: Path) -> list[Path]:
    from vst.scenes.sources.synthetic import write_scenes

    return write_scenes(cfg, out)


def _synthesise(
    cfg: Any, out: Path, workers: int, on_scene: Callable[[Path, bool], None] | None
) -> list[Path]:
    """Render (or find, when already there) the scenes of a synthetic source; with several
    workers, chunks of scene indices run on a process pool. Scene ``k`` is the same either way
    (each scene's randomness comes from ``(seed, k)``)."""
    from vst.scenes.sources.synthetic import write_scenes

    if workers <= 1 or cfg.num_scenes <= SYNTH_CHUNK:
        return write_scenes(cfg, out, on_scene=on_scene)
    chunks = [
        cfg.model_copy(update={"start_index": k, "num_scenes": min(SYNTH_CHUNK, end - k)})
        for end in [cfg.start_index + cfg.num_scenes]
        for k in range(cfg.start_index, end, SYNTH_CHUNK)
    ]
    results: dict[int, list[Path]] = {}
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=mp.get_context("spawn"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    ) as ex:
        futures = {ex.submit(_synth_chunk, c, out): i for i, c in enumerate(chunks)}
        for f in as_completed(futures):
            results[futures[f]] = f.result()
            if on_scene is not None:
                for p in results[futures[f]]:
                    on_scene(p, False)
    return [p for i in range(len(chunks)) for p in results[i]]


def task_classes(config: EngineConfig) -> list[type[Task]]:
    """The run's task classes, sorted by name."""
    return [type(get_task(n)) for n in config.task_names]


def plan_units(config: EngineConfig, scene_dirs: list[Path]) -> list[WorkUnit]:
    """Split ``scene_dirs`` into units of ``scenes_per_shard`` and compute their keys."""
    base = {
        "format": SHARD_FORMAT_VERSION,
        "generator": GENERATOR_VERSION,
        "config": config.output_key(),
        "tasks": {c.name: c.version for c in task_classes(config)},
    }
    units = []
    n = config.scenes_per_shard
    for index, start in enumerate(range(0, len(scene_dirs), n)):
        chunk = scene_dirs[start : start + n]
        scenes = [[d.name, _file_hash(d / SCENE_FILE)] for d in chunk]
        key = hashlib.sha256(canonical_json({**base, "scenes": scenes}).encode()).hexdigest()
        units.append(WorkUnit(index, tuple(str(d) for d in chunk), key))
    return units
