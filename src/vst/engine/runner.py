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
4. hands the other units to an executor (:mod:`vst.engine.executors`): in-process
   (``workers: 1``), a process pool, or Ray tasks; one :class:`EngineContext` per worker; per
   scene: load, validate (``scene_problems`` without reading pixels; invalid scenes are skipped
   and reported, or fail the run when ``strict``), screen each frame's files from their headers
   (``screen_frames``: paths, sizes; bad frames are dropped and reported, a scene left without
   frames is skipped; a file a task then finds corrupt, e.g. NaN depth, drops its frame and
   reruns that task), then per task (sorted by name): check ``task.needs``, derive the seed,
   generate, stamp provenance into ``meta`` and recompute ids, encode images, write;
5. writes ``report.json`` and ``report.md`` into the output folder (:mod:`vst.engine.report`).

Modules: planning (sources, units, shard names) is :mod:`vst.engine.planning`, execution
:mod:`vst.engine.executors`, the report :mod:`vst.engine.report`, errors
:mod:`vst.engine.errors`; this module keeps the per-unit code (:class:`UnitRunner`) and
:func:`run`, and re-exports the names of the others that callers import from here.

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
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
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
from vst.engine.errors import EngineError, EngineInputError, StopRun, os_failure
from vst.engine.executors import Executor, LocalExecutor, UnitFailure
from vst.engine.planning import (
    SYNTH_CHUNK,
    SourcesResolved,
    WorkUnit,
    plan_units,
    resolve_sources,
    task_classes,
)
from vst.engine.registry import Task
from vst.engine.report import Report
from vst.engine.sample import GENERATOR_VERSION
from vst.engine.writer import (
    SHARD_GLOB,
    TMP_PREFIX,
    ShardWriter,
    parse_shard_name,
    sample_row,
    shard_meta,
)
from vst.lock import OutputLockedError, output_lock
from vst.scenes.errors import FrameFileError, SceneError
from vst.scenes.io import load_scene
from vst.scenes.model import Scene
from vst.scenes.validation import drop_frame, scene_problems, screen_frames
from vst.workers import die_with_parent

__all__ = [
    "SYNTH_CHUNK",
    "EngineError",
    "EngineInputError",
    "Executor",
    "LocalExecutor",
    "Report",
    "SourcesResolved",
    "StopRun",
    "UnitFailure",
    "UnitResult",
    "UnitRunner",
    "WorkUnit",
    "answer_bucket",
    "derive_seed",
    "plan_units",
    "resolve_sources",
    "run",
    "scene_budget",
    "stable_hash",
    "task_classes",
]

_os_failure = os_failure  # the name this module used before the split (kept for importers)


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


def run(
    config: EngineConfig,
    *,
    progress: bool = True,
    console: Console | None = None,
    on_unit: Callable[[UnitResult], None] | None = None,
    executor: Executor | None = None,
) -> Report:
    """Run the engine (see the module docstring); return and save the report.

    ``executor`` processes the units (default :class:`LocalExecutor` with ``config.workers``);
    the shards and the report (timings aside) do not depend on it. A unit the executor
    reports as failed (:class:`UnitFailure`, after its retries) writes no shard and is listed
    in ``report.failed_units``; a rerun tries it again.

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
            return _run(
                config,
                progress=progress,
                console=console,
                on_unit=on_unit,
                executor=executor or LocalExecutor(config.workers),
            )
    except OutputLockedError as exc:
        raise EngineInputError(str(exc)) from None
    except OSError as exc:
        raise os_failure(exc) from None


def _run(
    config: EngineConfig,
    *,
    progress: bool,
    console: Console | None,
    on_unit: Callable[[UnitResult], None] | None,
    executor: Executor,
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

        results = executor.run(config, classes, todo)
        try:
            for res in results:
                if isinstance(res, UnitFailure):
                    report.add_failure(res.index, res.shard, res.error, res.attempts)
                    bar.update(unit_bar, advance=1, info=f"{res.shard} failed")
                else:
                    done(res)
        except StopRun:
            report.finish()
            return report
        finally:  # an executor stops its work not finished (pool, Ray tasks)
            close = getattr(results, "close", None)
            if close is not None:
                close()

    report.duplicate_scene_ids = sorted(k for k, v in seen.items() if v > 1)
    report.timings["wall"] = time.perf_counter() - t_start
    report.finish()
    report.save(config.output)
    return report
