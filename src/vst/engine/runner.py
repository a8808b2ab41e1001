"""The data-engine runner: scenes -> tasks -> samples -> shards, resumable and deterministic.

``run(config)``:

1. resolves the sources to scene directories (synthetic sources are rendered into
   ``<output>/scenes`` first, resumably), sorted by directory name then path;
2. splits them into work units of ``scenes_per_shard`` scenes; each unit's *input key* hashes
   the options that change samples (:meth:`EngineConfig.output_key`), the unit's scene
   directory names and ``scene.json`` hashes, :data:`GENERATOR_VERSION`, each task's version and
   the shard format; the unit's shard is ``data/shard-{index:05d}-{key[:12]}.parquet``;
3. skips units whose shard exists (a rerun resumes a killed run and gives the same dataset),
   removes shards of the same output that are no longer part of the plan and stale temporaries;
4. runs the other units in-process (``workers: 1``) or on a process pool, one
   :class:`EngineContext` per worker; per scene: load, validate (``scene_problems`` without
   reading pixels; invalid scenes are skipped and reported, or fail the run when ``strict``),
   screen each frame's files from their headers (``screen_frames``: paths, sizes; bad frames
   are dropped and reported, a scene left without frames is skipped; a file a task then finds
   corrupt, e.g. NaN depth, drops its frame and reruns that task), then per task (sorted by
   name): check ``task.needs``, derive the seed, generate, stamp provenance into ``meta`` and
   recompute ids, encode images, write;
5. writes ``report.json`` and ``report.md`` into the output folder.

Seeds: the samples of task ``t`` on scene ``s`` come from ``numpy.random.default_rng(seed)``
with ``seed = derive_seed(run_seed, s, t)`` (a ``SeedSequence`` over sha256-based hashes of the
names, never Python's ``hash()``), recorded as ``meta["seed"]``: they do not depend on the
worker count, the unit split, or the other tasks of the run.

Memory: the main process holds unit summaries only; a worker holds one scene's frame caches and
the encoded rows of one (scene, task) pair plus one Parquet row group.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import multiprocessing as mp
import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    as_completed,
    wait,
)
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from vst.engine.config import EngineConfig
from vst.engine.context import EngineContext
from vst.engine.encode_cache import EncodedImageCache
from vst.engine.registry import Task, get_task
from vst.engine.sample import GENERATOR_VERSION, canonical_json
from vst.engine.writer import (
    SHARD_FORMAT_VERSION,
    SHARD_GLOB,
    TMP_PREFIX,
    ShardWriter,
    parse_shard_name,
    sample_row,
    shard_meta,
    shard_name,
)
from vst.fserrors import exit_code_of, os_error_line
from vst.lock import OutputLockedError, output_lock
from vst.scenes.errors import FrameFileError, SceneError
from vst.scenes.files import read_json
from vst.scenes.io import SCENE_FILE, atomic_write_bytes, find_scene_dirs, load_scene
from vst.scenes.model import Scene
from vst.scenes.validation import drop_frame, scene_problems, screen_frames
from vst.workers import die_with_parent


class EngineError(RuntimeError):
    """The run cannot go on (invalid scene with ``strict``, a task failure with ``strict``, disk
    full); the message names the scene / task / file. ``vst generate`` exits with
    :attr:`exit_code`."""

    exit_code = 1


class EngineInputError(EngineError):
    """The run cannot start or go on because of its input: a source path or scene list, a
    benchmark scene named explicitly, the output folder (not a folder, not writable, held by
    another run). ``vst generate`` exits 2."""

    exit_code = 2


def _os_failure(exc: OSError) -> EngineError:
    """The :class:`EngineError` of a file-system error: one line naming the path; disk full
    and I/O errors fail the run (exit 1), others are bad paths (exit 2)."""
    cls = EngineError if exit_code_of(exc) == 1 else EngineInputError
    return cls(os_error_line(exc))


class StopRun(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raise from an ``on_unit`` hook to stop a run early (tests simulate a kill with it)."""


# -- seeds -----------------------------------------------------------------------------------
def stable_hash(text: str) -> int:
    """A 64-bit integer hash of ``text`` that is the same in every process and Python run."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def derive_seed(run_seed: int, scene_id: str, task: str, purpose: str = "generate") -> int:
    """Seed (63-bit int) of one (scene, task) stream: ``SeedSequence`` over the run seed and
    stable hashes of the scene id, task name and purpose."""
    ss = np.random.SeedSequence(
        [int(run_seed), stable_hash(scene_id), stable_hash(task), stable_hash(purpose)]
    )
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def scene_budget(config: EngineConfig, scene_id: str, task: str) -> int:
    """Samples asked of ``task`` on ``scene_id``: its ``per_scene``, or its share of
    ``samples_per_scene`` rounded down or up by a seeded draw (expected value = the share)."""
    expected = config.task_budgets()[task]
    base = math.floor(expected)
    frac = expected - base
    if frac <= 1e-12:
        return int(base)
    u = np.random.default_rng(derive_seed(config.seed, scene_id, task, "budget")).random()
    return int(base + (u < frac))


# -- planning --------------------------------------------------------------------------------
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
        raise _os_failure(exc.error) from None
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


# -- one unit --------------------------------------------------------------------------------
@dataclass
class UnitResult:
    """Summary of one unit (stored in its shard's metadata, minus timings)."""

    index: int
    shard: str
    rows: int = 0
    bytes: int = 0
    reused: bool = False
    scene_ids: list[str] = field(default_factory=list)
    skipped_scenes: list[dict[str, Any]] = field(default_factory=list)
    skipped_frames: list[dict[str, Any]] = field(default_factory=list)
    task_skips: list[dict[str, Any]] = field(default_factory=list)
    task_errors: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    scenarios: dict[str, str] = field(default_factory=dict)
    answers: dict[str, dict[str, int]] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    _STORED = (
        "duplicates",
        "index",
        "scene_ids",
        "skipped_scenes",
        "skipped_frames",
        "task_skips",
        "task_errors",
        "counts",
        "scenarios",
        "answers",
    )

    def stored(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._STORED}

    @classmethod
    def from_shard(cls, path: Path) -> UnitResult:
        meta = shard_meta(path)
        unit = meta.get("unit", {})
        fields = {k: unit[k] for k in cls._STORED if k in unit}
        fields.setdefault("index", parse_shard_name(path.name)[0])
        res = cls(shard=path.name, reused=True, **fields)
        res.rows = sum(res.counts.values())
        res.bytes = path.stat().st_size
        return res


_NUMERIC_EDGES = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def answer_bucket(mode: str, ground_truth: Any, answer: str) -> str:
    """The bucket of an answer in the answer-distribution table: the letter (mcq), the name
    (exact), a value range (numeric), the sequence (order), a box count (det3d), a length
    range in words (caption)."""
    if mode in ("mcq", "exact"):
        if isinstance(ground_truth, dict):  # e.g. {"label": ..., "bbox_2d": ...}
            return str(ground_truth.get("label", ground_truth.get("answer", "structured")))
        return str(ground_truth)
    if mode == "numeric":
        try:
            v = float(ground_truth)
        except (TypeError, ValueError):
            return "unparsable"
        if v < 0:
            return "<0"
        lo = 0.0
        for edge in _NUMERIC_EDGES:
            if v < edge:
                return f"{lo:g}-{edge:g}"
            lo = edge
        return f">={lo:g}"
    if mode == "order":
        items = ground_truth if isinstance(ground_truth, list) else [answer]
        if all(isinstance(x, str) and len(x) <= 16 for x in items):
            return ",".join(items)
        return f"{len(items)} items"
    if mode == "det3d":
        n = len(ground_truth) if isinstance(ground_truth, list) else 0
        return f"{n} box" if n == 1 else f"{n} boxes"
    if mode == "caption":
        words = len(str(answer).split())
        lo = 0
        for edge in (25, 50, 100, 200, 400):
            if words < edge:
                return f"{lo}-{edge} words"
            lo = edge
        return f">={lo} words"
    return "other"


class UnitRunner:
    """Runs work units with one :class:`EngineContext` (one per worker process) and one
    :class:`EncodedImageCache` (cleared per scene: a picture the samples of a scene share is
    encoded once; ``cache_images = False`` encodes every picture of every sample, same bytes)."""

    cache_images: bool = True

    def __init__(self, config: EngineConfig, classes: list[type[Task]]):
        self.config = config
        self.tasks = [c() for c in classes]
        self.ctx = EngineContext(settings=config.settings())
        self.out_dir = config.data_dir
        self.images = EncodedImageCache() if self.cache_images else None

    def run_unit(self, unit: WorkUnit) -> UnitResult:
        """Samples of ``unit``'s scenes into its shard. An ``OSError`` of the shard's writer
        (disk full, a read-only folder) is raised with the shard's path as its file name."""
        # what was alive before the unit (modules, caches) is set aside while the unit runs,
        # so the per-scene gc.collect() only walks the objects the unit made
        freeze = gc.get_freeze_count() == 0
        if freeze:
            gc.freeze()
        try:
            return self._run_unit(unit)
        except OSError as exc:
            if exc.filename is not None:
                raise
            raise OSError(
                exc.errno, exc.strerror or str(exc), str(self.out_dir / unit.shard)
            ) from exc
        finally:
            if freeze:
                gc.unfreeze()

    def _run_unit(self, unit: WorkUnit) -> UnitResult:
        res = UnitResult(index=unit.index, shard=unit.shard)
        t_load = t_enc = t_gc = 0.0
        t_gen: Counter[str] = Counter()
        writer = ShardWriter(self.out_dir / unit.shard)
        with writer:
            for d in unit.scene_dirs:
                t0 = time.perf_counter()
                scene = self._load(Path(d), res)
                t_load += time.perf_counter() - t0
                if scene is None:
                    continue
                res.scene_ids.append(scene.id)
                self.ctx.reset()
                if self.images is not None:
                    self.images.clear()
                for task in self.tasks:
                    rows, tg, te = self._scene_task(scene, task, res)
                    t_gen[task.name] += tg
                    t_enc += te
                    for row in rows:
                        writer.write(row)
                self.ctx.reset()
                # frame views and task caches form reference cycles holding full-frame
                # arrays; collect them now so memory stays flat in the number of scenes
                t0 = time.perf_counter()
                gc.collect()
                t_gc += time.perf_counter() - t0
            t0 = time.perf_counter()
            info = writer.close({"unit": res.stored()})
            t_write = time.perf_counter() - t0
        res.rows, res.bytes = info.rows, info.bytes
        res.timings = {
            "load": t_load,
            "encode": t_enc,
            "write_close": t_write,
            "gc": t_gc,
            **{f"generate:{k}": v for k, v in sorted(t_gen.items())},
        }
        return res

    def _load(self, d: Path, res: UnitResult) -> Scene | None:
        try:
            scene = load_scene(d, allow_outside_root=self.config.allow_outside_root)
        except SceneError as exc:
            problems, sid = [str(exc)], None
        else:
            sid = scene.id
            problems = scene_problems(scene, check_files=False)
            frame_skips = [] if problems else screen_frames(scene, deep=False)  # drops bad ones
            if frame_skips and (self.config.strict or not scene.frames):
                problems = frame_skips
            elif frame_skips:
                res.skipped_frames.append({"dir": str(d), "scene_id": sid, "reasons": frame_skips})
        if not problems:
            return scene
        if self.config.strict:
            shown = "\n".join(f"  - {p}" for p in problems[:20])
            raise EngineError(f"{d}: invalid scene (strict mode):\n{shown}")
        res.skipped_scenes.append({"dir": str(d), "scene_id": sid, "reasons": problems})
        return None

    def _scene_task(
        self, scene: Scene, task: Task, res: UnitResult
    ) -> tuple[list[dict[str, Any]], float, float]:
        """Rows of one (scene, task) pair; all-or-nothing (a failing task drops its rows)."""
        cfg = self.config
        missing = task.needs.missing(scene)
        if missing:
            res.task_skips.append({"scene_id": scene.id, "task": task.name, "reasons": missing})
            return [], 0.0, 0.0
        budget = scene_budget(cfg, scene.id, task.name)
        if budget <= 0:
            return [], 0.0, 0.0
        seed = derive_seed(cfg.seed, scene.id, task.name)
        rng = np.random.default_rng(seed)
        provenance = {
            "source": scene.source,
            "scene_id": scene.id,
            "split": scene.split,
            "seed": seed,
            "run_seed": cfg.seed,
            "generator_version": GENERATOR_VERSION,
            "task_version": task.version,
        }
        rows: list[dict[str, Any]] = []
        answers: Counter[str] = Counter()
        seen_ids: set[str] = set()
        dups = 0
        t_gen = t_enc = 0.0
        t0 = time.perf_counter()
        try:
            for sample in islice(task.generate(scene, rng, budget, self.ctx), budget):
                t1 = time.perf_counter()
                t_gen += t1 - t0
                if sample.task != task.name or sample.scenario != task.scenario:
                    raise EngineError(
                        f"task {task.name!r} yielded a sample labelled "
                        f"{sample.task!r}/{sample.scenario!r}"
                    )
                sample.meta.update(provenance)
                sample.id = sample.content_id()
                if sample.id in seen_ids:  # the same question twice: keep the first
                    dups += 1
                    t0 = time.perf_counter()
                    continue
                seen_ids.add(sample.id)
                rows.append(sample_row(sample, cfg.image_format, cfg.jpeg_quality, self.images))
                mode = sample.reward.get("mode", "")
                answers[answer_bucket(mode, sample.reward.get("ground_truth"), sample.answer)] += 1
                t0 = time.perf_counter()
                t_enc += t0 - t1
            t_gen += time.perf_counter() - t0
        except Exception as exc:  # reported per (scene, task), or fatal if strict
            if isinstance(exc, FrameFileError) and not cfg.strict and drop_frame(scene, exc):
                res.skipped_frames.append(
                    {"dir": str(scene.root), "scene_id": scene.id, "reasons": [str(exc)]}
                )
                self.ctx.reset()  # views and memos may hold the dropped frame
                return self._scene_task(scene, task, res)  # again, without that frame
            msg = f"{type(exc).__name__}: {exc}"
            if cfg.strict:
                raise EngineError(
                    f"task {task.name!r} failed on scene {scene.id!r} ({scene.root}): {msg}"
                ) from exc
            res.task_errors.append({"scene_id": scene.id, "task": task.name, "error": msg})
            return [], t_gen, t_enc
        if dups:
            res.duplicates[task.name] = res.duplicates.get(task.name, 0) + dups
        if rows:
            res.counts[task.name] = res.counts.get(task.name, 0) + len(rows)
            res.scenarios[task.name] = task.scenario
            dist = res.answers.setdefault(task.name, {})
            for k, v in sorted(answers.items()):
                dist[k] = dist.get(k, 0) + v
        return rows, t_gen, t_enc


_WORKER: UnitRunner | None = None


def _init_worker(parent_pid: int, config: EngineConfig, classes: list[type[Task]]) -> None:
    global _WORKER
    die_with_parent(parent_pid)
    _WORKER = UnitRunner(config, classes)


def _run_in_worker(unit: WorkUnit) -> UnitResult:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.run_unit(unit)


# -- report ----------------------------------------------------------------------------------
@dataclass
class Report:
    """What a run did: samples and answer distributions per task, skipped scenes and tasks,
    shards written and reused, timings. Saved as ``report.json`` and ``report.md``."""

    output: str
    config: dict[str, Any]
    scenes_total: int = 0
    scenes_used: int = 0
    units_total: int = 0
    shards_written: int = 0
    shards_reused: int = 0
    stale_removed: list[str] = field(default_factory=list)
    samples_total: int = 0
    bytes_total: int = 0
    samples_per_task: dict[str, int] = field(default_factory=dict)
    scenario_of_task: dict[str, str] = field(default_factory=dict)
    answers_per_task: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped_scenes: list[dict[str, Any]] = field(default_factory=list)
    skipped_frames: list[dict[str, Any]] = field(default_factory=list)
    task_skips: dict[str, dict[str, int]] = field(default_factory=dict)
    task_errors: list[dict[str, Any]] = field(default_factory=list)
    duplicates_dropped: dict[str, int] = field(default_factory=dict)
    duplicate_scene_ids: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    shards: list[dict[str, Any]] = field(default_factory=list)
    excluded_benchmark_scenes: list[dict[str, Any]] = field(default_factory=list)
    included_benchmark_scenes: list[dict[str, Any]] = field(default_factory=list)
    imports: list[dict[str, Any]] = field(default_factory=list)

    def add(self, res: UnitResult) -> None:
        self.shards_reused += res.reused
        self.shards_written += not res.reused
        self.samples_total += res.rows
        self.bytes_total += res.bytes
        self.shards.append(
            {"shard": res.shard, "rows": res.rows, "bytes": res.bytes, "reused": res.reused}
        )
        self.scenes_used += len(res.scene_ids)
        for k, v in res.counts.items():
            self.samples_per_task[k] = self.samples_per_task.get(k, 0) + v
        self.scenario_of_task.update(res.scenarios)
        for task, dist in res.answers.items():
            mine = self.answers_per_task.setdefault(task, {})
            for k, v in dist.items():
                mine[k] = mine.get(k, 0) + v
        self.skipped_scenes.extend(res.skipped_scenes)
        self.skipped_frames.extend(res.skipped_frames)
        for s in res.task_skips:
            per = self.task_skips.setdefault(s["task"], {})
            for reason in s["reasons"]:
                per[reason] = per.get(reason, 0) + 1
        self.task_errors.extend(res.task_errors)
        for k, v in res.duplicates.items():
            self.duplicates_dropped[k] = self.duplicates_dropped.get(k, 0) + v
        for k, v in res.timings.items():
            self.timings[k] = self.timings.get(k, 0.0) + v

    def finish(self) -> None:
        """Sort lists and dicts so the report reads the same for the same run."""
        self.shards.sort(key=lambda s: s["shard"])
        self.skipped_scenes.sort(key=lambda s: s["dir"])
        self.skipped_frames.sort(key=lambda s: s["dir"])
        self.task_errors.sort(key=lambda e: (e["scene_id"], e["task"]))
        self.samples_per_task = dict(sorted(self.samples_per_task.items()))
        self.answers_per_task = {
            t: dict(sorted(d.items())) for t, d in sorted(self.answers_per_task.items())
        }
        self.task_skips = {t: dict(sorted(d.items())) for t, d in sorted(self.task_skips.items())}
        self.duplicates_dropped = dict(sorted(self.duplicates_dropped.items()))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=False, default=str) + "\n"

    def to_markdown(self) -> str:
        lines = [
            "# Data engine report",
            "",
            f"- output: `{self.output}`",
            f"- scenes: {self.scenes_used} used of {self.scenes_total} "
            f"({len(self.skipped_scenes)} skipped)",
            f"- shards: {self.units_total} ({self.shards_written} written, "
            f"{self.shards_reused} reused from an earlier run"
            + (f", {len(self.stale_removed)} stale removed" if self.stale_removed else "")
            + ")",
            f"- samples: {self.samples_total} ({self.bytes_total / 1e6:.1f} MB)",
            f"- benchmark scenes excluded (leakage guard): {len(self.excluded_benchmark_scenes)}"
            + (
                f"; included by override: {len(self.included_benchmark_scenes)}"
                if self.included_benchmark_scenes
                else ""
            ),
        ]
        if "wall" in self.timings:
            lines.append(f"- wall time: {self.timings['wall']:.1f} s")
        lines += ["", "## Samples per task", "", "| task | scenario | samples |"]
        lines.append("| --- | --- | ---: |")
        for t, n in self.samples_per_task.items():
            lines.append(f"| {t} | {self.scenario_of_task.get(t, '')} | {n} |")
        lines += ["", "## Answer distribution per task", ""]
        for t, dist in self.answers_per_task.items():
            total = sum(dist.values()) or 1
            top = sorted(dist.items(), key=lambda kv: (-kv[1], kv[0]))
            shown = ", ".join(f"{k}: {v} ({100 * v / total:.0f}%)" for k, v in top[:12])
            more = f", ... {len(top) - 12} more values" if len(top) > 12 else ""
            lines.append(f"- **{t}**: {shown}{more}")
        for title, entries in (
            ("Benchmark scenes excluded (leakage guard)", self.excluded_benchmark_scenes),
            ("Benchmark scenes included (override)", self.included_benchmark_scenes),
        ):
            if entries:
                lines += ["", f"## {title}", ""]
                for e in entries[:200]:
                    lines.append(
                        f"- {e['dataset']} `{e['native_id']}`: {', '.join(e['benchmarks'])}"
                        f" ({e['source']})"
                    )
                if len(entries) > 200:
                    lines.append(f"- ... and {len(entries) - 200} more (see report.json)")
        for imp in self.imports:
            lines += ["", f"## Import of sources.{imp['source']} ({imp['format']})", ""]
            lines.append(f"- {imp['summary']}")
            for f in imp["failed"][:50]:
                lines.append(f"- failed: `{f['scene_id']}`: {f['reason']}")
            for sk in imp["skipped"][:50]:
                lines.append(f"- skipped {sk['kind']}: {sk['item']}: {sk['reason']}")
            more = len(imp["skipped"]) - 50
            if more > 0:
                lines.append(f"- ... and {more} more skipped items (see import_report.json)")
        if self.skipped_scenes:
            lines += ["", "## Skipped scenes", ""]
            for s in self.skipped_scenes:
                lines.append(f"- `{s['dir']}` ({s.get('scene_id') or 'unreadable'}):")
                lines.extend(f"  - {r}" for r in s["reasons"][:10])
        if self.skipped_frames:
            lines += ["", "## Skipped frames (bad files; the rest of the scene was used)", ""]
            for s in self.skipped_frames:
                lines.append(f"- `{s['dir']}` ({s['scene_id']}):")
                lines.extend(f"  - {r}" for r in s["reasons"][:10])
        if self.task_skips:
            lines += ["", "## Tasks a scene could not serve", ""]
            for t, reasons in self.task_skips.items():
                for r, n in reasons.items():
                    lines.append(f"- {t}: {r} ({n} scene(s))")
        if self.task_errors:
            lines += ["", "## Task errors (samples of these pairs were dropped)", ""]
            for e in self.task_errors:
                lines.append(f"- {e['task']} on {e['scene_id']}: {e['error']}")
        if self.duplicates_dropped:
            lines += ["", "## Repeated samples dropped (same id within a scene and task)", ""]
            lines.extend(f"- {t}: {n}" for t, n in self.duplicates_dropped.items())
        if self.duplicate_scene_ids:
            lines += ["", "## Duplicate scene ids", "", ", ".join(self.duplicate_scene_ids)]
        if self.timings:
            lines += ["", "## Timings (seconds, summed over workers)", ""]
            lines.append("| stage | seconds |")
            lines.append("| --- | ---: |")
            for k, v in self.timings.items():
                lines.append(f"| {k} | {v:.2f} |")
        return "\n".join(lines) + "\n"

    def save(self, output: Path) -> tuple[Path, Path]:
        """Write ``report.json`` and ``report.md`` into ``output`` (atomically)."""
        j, m = output / "report.json", output / "report.md"
        atomic_write_bytes(j, self.to_json().encode("utf-8"))
        atomic_write_bytes(m, self.to_markdown().encode("utf-8"))
        return j, m


# -- the run ---------------------------------------------------------------------------------
def _sweep(data_dir: Path, planned: set[str]) -> list[str]:
    """Delete leftover temporaries and shards that are not part of the plan."""
    removed = []
    for p in sorted(data_dir.glob(f"{TMP_PREFIX}*")):
        p.unlink(missing_ok=True)
    for p in sorted(data_dir.glob(SHARD_GLOB)):
        if parse_shard_name(p.name) and p.name not in planned:
            p.unlink(missing_ok=True)
            removed.append(p.name)
    return removed


def _check_strict(res: UnitResult, path: Path) -> None:
    """A reused shard made without ``strict`` may hold skipped scenes or task errors: a strict
    run fails on them as a fresh one would."""
    for s in res.skipped_scenes:
        shown = "\n".join(f"  - {p}" for p in s["reasons"][:20])
        raise EngineError(f"{s['dir']}: invalid scene (strict mode; shard {path.name}):\n{shown}")
    for e in res.task_errors:
        raise EngineError(
            f"task {e['task']!r} failed on scene {e['scene_id']!r} (strict mode; shard "
            f"{path.name}): {e['error']}"
        )


def _mp_context() -> mp.context.BaseContext:
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


def run(
    config: EngineConfig,
    *,
    progress: bool = True,
    console: Console | None = None,
    on_unit: Callable[[UnitResult], None] | None = None,
) -> Report:
    """Run the engine (see the module docstring); return and save the report.

    ``on_unit(result)`` is called in the main process after each unit that was processed in
    this run (not for reused shards); raising :class:`StopRun` from it stops the run there.

    The run holds the lock of its output folder (:func:`vst.lock.output_lock`): a second run
    on the same output fails at once with :class:`EngineInputError` ("another run holds
    <output>"). File-system errors become one-line :class:`EngineError` s naming the path
    (:class:`EngineInputError` unless the disk is full or failing).
    """
    out = config.output
    if out.exists() and not out.is_dir():
        raise EngineInputError(f"output: {out} is a file, not a folder")
    try:
        with output_lock(out):
            return _run(config, progress=progress, console=console, on_unit=on_unit)
    except OutputLockedError as exc:
        raise EngineInputError(str(exc)) from None
    except OSError as exc:
        raise _os_failure(exc) from None


def _run(
    config: EngineConfig,
    *,
    progress: bool,
    console: Console | None,
    on_unit: Callable[[UnitResult], None] | None,
) -> Report:
    console = console or Console(stderr=True)
    t_start = time.perf_counter()
    report = Report(output=str(config.output), config=config.model_dump(mode="json"))
    classes = task_classes(config)

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not progress,
        transient=False,
    ) as bar:
        synth_total = sum(s.num_scenes for s in config.sources if s.kind == "synthetic")
        scene_bar = bar.add_task(
            "scenes", total=synth_total or None, info="", visible=bool(synth_total)
        )

        def on_scene(path: Path, skipped: bool) -> None:
            bar.advance(scene_bar)

        t0 = time.perf_counter()
        resolved = resolve_sources(config, on_scene=on_scene)
        scene_dirs = resolved.dirs
        report.excluded_benchmark_scenes = resolved.excluded_benchmark
        report.included_benchmark_scenes = resolved.included_benchmark
        report.imports = resolved.imports
        report.timings["sources"] = time.perf_counter() - t0
        units = plan_units(config, scene_dirs)
        report.scenes_total, report.units_total = len(scene_dirs), len(units)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        report.stale_removed = _sweep(config.data_dir, {u.shard for u in units})

        seen: Counter[str] = Counter()
        todo: list[WorkUnit] = []
        for u in units:
            path = config.data_dir / u.shard
            if path.is_file():
                res = UnitResult.from_shard(path)
                if config.strict:
                    _check_strict(res, path)
                report.add(res)
                seen.update(res.scene_ids)
            else:
                todo.append(u)
        unit_bar = bar.add_task(
            "shards", total=len(units), completed=len(units) - len(todo), info=""
        )

        def done(res: UnitResult) -> None:
            report.add(res)
            seen.update(res.scene_ids)
            bar.update(unit_bar, advance=1, info=f"{report.samples_total} samples")
            if on_unit is not None:
                on_unit(res)

        try:
            if config.workers <= 1 or len(todo) <= 1:
                runner = UnitRunner(config, classes)
                for u in todo:
                    done(runner.run_unit(u))
            else:
                _run_pool(config, classes, todo, done)
        except StopRun:
            report.finish()
            return report

    report.duplicate_scene_ids = sorted(k for k, v in seen.items() if v > 1)
    report.timings["wall"] = time.perf_counter() - t_start
    report.finish()
    report.save(config.output)
    return report


def _run_pool(
    config: EngineConfig,
    classes: list[type[Task]],
    todo: list[WorkUnit],
    done: Callable[[UnitResult], None],
) -> None:
    """Run ``todo`` on ``config.workers`` processes, at most two units in flight per worker."""
    workers = min(config.workers, len(todo))
    ex = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_mp_context(),
        initializer=_init_worker,
        initargs=(os.getpid(), config, classes),
    )
    pending: set[Future] = set()
    queue = list(reversed(todo))
    try:
        while queue or pending:
            while queue and len(pending) < 2 * workers:
                pending.add(ex.submit(_run_in_worker, queue.pop()))
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                done(f.result())
    except BaseException:
        ex.shutdown(wait=False, cancel_futures=True)
        raise
    ex.shutdown(wait=True)
