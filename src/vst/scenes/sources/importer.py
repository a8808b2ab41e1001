"""Import a dataset into vst scene directories (``vst scenes import``, engine dataset sources).

:func:`import_scenes` lists a reader's scenes, applies the selection (``scenes``, ``limit``) and
the benchmark-leakage guard, then reads and writes each scene to ``<out>/<scene id>/``. It is
resumable: a scene directory already written by the same format, options and reader version is
kept (its ``scene.json`` carries an ``import_key``), a killed import continues where it stopped,
and a scene written with other options is rewritten. Nothing is lost silently: scenes that fail
(unreadable files, validation problems) and every item a reader skipped are in the
:class:`ImportResult`, which is also written to ``<out>/import_report.json``.

The items a reader skipped while reading one scene are stored next to it, in
``<out>/<scene id>/import_record.json`` (with the scene's ``import_key``; written after the
scene), and a kept scene contributes them again: a rerun's or a resumed import's report equals
an uninterrupted import's. A scene without that record is imported again.

An import holds the lock of ``out`` (:func:`vst.lock.output_lock`). When the output cannot be
written (disk full, a read-only folder) the import stops with :class:`ImportWriteError`, after
writing the report of the scenes finished so far.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vst.fserrors import RUN_FAILURE_ERRNOS, os_error_line
from vst.lock import output_lock
from vst.scenes.errors import SceneError
from vst.scenes.files import read_json
from vst.scenes.guard import BenchmarkGuard
from vst.scenes.io import SCENE_FILE, atomic_write_bytes, save_scene
from vst.scenes.sources.base import SceneReader, SceneRef, SkippedItem, SourceReport
from vst.scenes.validation import scene_problems
from vst.workers import die_with_parent

__all__ = [
    "IMPORT_RECORD",
    "IMPORT_REPORT",
    "ImportResult",
    "ImportWriteError",
    "import_key",
    "import_scenes",
    "select_refs",
]

IMPORT_REPORT = "import_report.json"
IMPORT_RECORD = "import_record.json"
"""Per scene directory: its ``import_key`` and the items the reader skipped in that scene."""
IMPORTER_VERSION = 1
"""Bump when a change to the importer or the readers changes the scenes they write."""


@dataclass
class ImportResult:
    """What an import did: scene ids written, kept from an earlier run, excluded by the guard,
    failed (with the reason), and the reader's report of skipped frames / objects / files."""

    format: str
    path: str
    out: str
    written: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    excluded: list[dict[str, Any]] = field(default_factory=list)
    included_benchmark: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    report: SourceReport | None = None

    @property
    def scene_ids(self) -> list[str]:
        """Ids of the scenes now on disk (written or reused), sorted."""
        return sorted(self.written + self.reused)

    def scene_dirs(self) -> list[Path]:
        return [Path(self.out) / s for s in self.scene_ids]

    def summary(self) -> str:
        skipped = len(self.report.skipped) if self.report else 0
        parts = [
            f"{len(self.written)} written",
            f"{len(self.reused)} kept from an earlier run",
            f"{len(self.excluded)} benchmark scene(s) excluded",
            f"{len(self.failed)} failed",
            f"{skipped} item(s) skipped by the reader",
        ]
        if self.included_benchmark:
            parts.append(f"{len(self.included_benchmark)} benchmark scene(s) included by override")
        return f"{self.format} {self.path} -> {self.out}: " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "path": self.path,
            "out": self.out,
            "written": sorted(self.written),
            "reused": sorted(self.reused),
            "excluded_benchmark_scenes": self.excluded,
            "included_benchmark_scenes": self.included_benchmark,
            "failed": self.failed,
            "skipped": self.report.to_dict()["skipped"] if self.report else [],
        }


class ImportWriteError(OSError):
    """The import's output cannot be written (disk full, read-only, not writable): the import
    stopped; ``error`` is the underlying ``OSError`` and the message one line naming the path."""

    def __init__(self, error: OSError):
        super().__init__(os_error_line(error))
        self.error = error

    def __str__(self) -> str:
        return os_error_line(self.error)


def import_key(reader: SceneReader, ref: SceneRef) -> str:
    """Hash of what makes a scene directory: format, reader options, importer version, scene."""
    payload = {
        "format": reader.format,
        "reader_version": reader.version,
        "options": reader.options.model_dump(mode="json"),
        "version": IMPORTER_VERSION,
        "dataset": ref.dataset,
        "native_id": ref.native_id,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _existing_key(scene_dir: Path) -> str | None:
    try:
        return read_json(scene_dir / SCENE_FILE).get("attributes", {}).get("import_key")
    except (SceneError, AttributeError):
        return None


def _kept_skips(scene_dir: Path, key: str) -> list[SkippedItem] | None:
    """The skipped items stored with a scene imported with ``key``; None when the scene is not
    there, was imported with other options, or has no readable record (import it again)."""
    if _existing_key(scene_dir) != key:
        return None
    try:
        record = read_json(scene_dir / IMPORT_RECORD)
        if record.get("import_key") != key:
            return None
        return [SkippedItem(s["kind"], str(s["item"]), str(s["reason"])) for s in record["skipped"]]
    except (SceneError, AttributeError, KeyError, TypeError):
        return None


def _write_record(dest: Path, key: str, skipped: list[SkippedItem]) -> None:
    record = {"import_key": key, "skipped": [asdict(s) for s in skipped]}
    atomic_write_bytes(dest / IMPORT_RECORD, (json.dumps(record, indent=1) + "\n").encode("utf-8"))


def _is_output_error(exc: OSError, dest: Path) -> bool:
    """True when ``exc`` (raised while writing ``dest``) is about the output, not a source
    file: disk full / I/O errors, or a path inside ``dest``."""
    if exc.errno in RUN_FAILURE_ERRNOS or exc.filename is None:
        return True
    try:
        return Path(exc.filename).resolve().is_relative_to(dest.resolve())
    except (OSError, ValueError):
        return False


def select_refs(refs: list[SceneRef], wanted: list[str] | None, where: str) -> list[SceneRef]:
    """The refs named in ``wanted`` (by vst id or native id), in ``refs`` order; ValueError
    naming ``where`` and the names that match no scene."""
    if wanted is None:
        return refs
    names = {str(w) for w in wanted}
    chosen = [r for r in refs if r.id in names or r.native_id in names]
    found = {r.id for r in chosen} | {r.native_id for r in chosen}
    missing = sorted(names - found)
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise ValueError(f"{where}: no scene named {shown} in the source")
    return chosen


def import_scenes(
    reader: SceneReader,
    out: str | Path,
    *,
    scenes: list[str] | None = None,
    limit: int | None = None,
    guard: BenchmarkGuard | None = None,
    where: str | None = None,
    on_scene: Callable[[str, str], None] | None = None,
    on_plan: Callable[[int], None] | None = None,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
) -> ImportResult:
    """Import the scenes of ``reader`` into ``out`` (see the module docstring).

    ``scenes`` selects scenes by vst or native id (an explicit selection: a benchmark scene in
    it raises :class:`~vst.scenes.guard.BenchmarkSceneError` unless the guard allows it);
    ``limit`` keeps the first N admitted scenes; ``guard`` defaults to the shipped registry;
    ``where`` names the source in messages; ``on_scene(scene_id, status)`` reports progress
    with status ``written`` / ``reused`` / ``failed``; ``on_plan(n)`` gives the number of scenes
    to import once they are listed. ``workers > 1`` reads scenes on that many processes (each
    with its own reader); the scene directories and the report are the same as with one.
    ``executor="ray"`` reads each scene in a Ray task instead (:func:`_import_ray`: a local Ray
    with ``workers`` CPUs, or the cluster at ``address``), with the same directories and report;
    a scene whose task keeps failing (its worker dies) is reported as failed."""
    if executor not in ("local", "ray"):
        raise ValueError(f"unknown executor {executor!r}; choose local or ray")
    if address is not None and executor != "ray":
        raise ValueError("address is only for the ray executor")
    if executor == "ray":
        from vst.distributed import import_ray

        import_ray()  # RayUnavailableError before any work when Ray is missing
    out = Path(out)
    where = where or f"{reader.format} {reader.path}"
    guard = guard if guard is not None else BenchmarkGuard.default()
    report = reader.new_report()
    result = ImportResult(reader.format, str(reader.path), str(out), report=report)
    refs = select_refs(reader.scene_refs(report), scenes, where)
    n_excluded, n_included = len(guard.excluded), len(guard.included)
    admitted = [
        r
        for r in refs
        if guard.admit(
            r.id,
            r.dataset,
            r.native_id,
            explicit=scenes is not None,
            source=where,
            known=r.benchmarks,
        )
    ]
    result.excluded = [e.to_dict() for e in guard.excluded[n_excluded:]]
    result.included_benchmark = [e.to_dict() for e in guard.included[n_included:]]
    if limit is not None:
        admitted = admitted[:limit]

    if on_plan:
        on_plan(len(admitted))
    try:
        with output_lock(out):
            _import_admitted(reader, admitted, out, result, on_scene, workers, executor, address)
    except OSError as exc:
        if isinstance(exc, ImportWriteError):
            raise
        raise ImportWriteError(exc) from None
    return result


def _import_admitted(
    reader: SceneReader,
    admitted: list[SceneRef],
    out: Path,
    result: ImportResult,
    on_scene: Callable[[str, str], None] | None,
    workers: int,
    executor: str = "local",
    address: str | None = None,
) -> None:
    """Import (or keep) the admitted scenes, then write the report; on an output error, write
    the report of the scenes finished so far and raise :class:`ImportWriteError`."""
    todo: list[tuple[int, SceneRef, str]] = []
    outcomes: dict[int, tuple[str, str, dict[str, str] | None, list[SkippedItem]]] = {}
    for index, ref in enumerate(admitted):
        key = import_key(reader, ref)
        kept = _kept_skips(out / ref.id, key)
        if kept is not None:
            outcomes[index] = (ref.id, "reused", None, kept)
            if on_scene:
                on_scene(ref.id, "reused")
        else:
            todo.append((index, ref, key))

    def done(index: int, outcome: tuple) -> None:
        outcomes[index] = outcome
        if on_scene:
            on_scene(outcome[0], outcome[1])

    stopped: OSError | None = None
    try:
        if executor == "ray" and todo:
            _import_ray(reader, todo, out, workers, address, done)
        elif workers <= 1 or len(todo) <= 1:
            for index, ref, key in todo:
                done(index, (ref.id, *_import_one(reader, ref, out / ref.id, key)))
        else:
            _import_pool(reader, todo, out, min(workers, len(todo)), done)
    except OSError as exc:  # the output cannot be written: keep what was done
        stopped = exc
    report = result.report
    assert report is not None
    for index in sorted(outcomes):  # merge in scene order: the same report for any workers
        scene_id, status, failure, skipped = outcomes[index]
        report.skipped.extend(skipped)
        if status in ("written", "reused"):
            (result.written if status == "written" else result.reused).append(scene_id)
            report.scenes_read.append(scene_id)
        elif failure is not None:
            result.failed.append(failure)
    atomic_write_bytes(
        out / IMPORT_REPORT, (json.dumps(result.to_dict(), indent=1) + "\n").encode("utf-8")
    )
    if stopped is not None:
        raise ImportWriteError(stopped)


# -- workers ---------------------------------------------------------------------------------
_WORKER_READER: SceneReader | None = None


def _init_worker(parent_pid: int, fmt: str, path: str, options: dict[str, Any]) -> None:
    """Build the worker's own reader (and let it list the source once, filling its caches);
    the worker ends when ``parent_pid`` dies."""
    global _WORKER_READER
    from vst.scenes.sources.formats import get_reader_class

    die_with_parent(parent_pid)

    _WORKER_READER = get_reader_class(fmt)(path, options)
    _WORKER_READER.scene_refs(_WORKER_READER.new_report())


def _work(ref: SceneRef, dest: str, key: str) -> tuple:
    assert _WORKER_READER is not None
    return (ref.id, *_import_one(_WORKER_READER, ref, Path(dest), key))


def _import_pool(
    reader: SceneReader,
    todo: list[tuple[int, SceneRef, str]],
    out: Path,
    workers: int,
    done: Callable[[int, tuple], None],
) -> None:
    """Import ``todo`` on ``workers`` processes, each with its own reader of the same options
    (an error cancels the scenes not started and is raised once the running ones end)."""
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    options = reader.options.model_dump(mode="python")
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=mp.get_context(method),
        initializer=_init_worker,
        initargs=(os.getpid(), reader.format, str(reader.path), options),
    )
    try:
        futures = {
            pool.submit(_work, ref, str(out / ref.id), key): index for index, ref, key in todo
        }
        for future in as_completed(futures):
            done(futures[future], future.result())
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


_RAY_READERS: dict[str, SceneReader] = {}
"""A Ray worker's reader of the current source (listed once per worker, as in the pool)."""


def _ray_scene(shared: tuple[str, str, dict[str, Any]], ref: SceneRef, dest: str, key: str):
    """The body of one scene's Ray task (runs in a Ray worker)."""
    from vst.scenes.sources.formats import get_reader_class

    fmt, path, options = shared
    cache_key = json.dumps([fmt, path, options], sort_keys=True, default=str)
    reader = _RAY_READERS.get(cache_key)
    if reader is None:
        _RAY_READERS.clear()
        reader = get_reader_class(fmt)(path, options)
        reader.scene_refs(reader.new_report())
        _RAY_READERS[cache_key] = reader
    return (ref.id, *_import_one(reader, ref, Path(dest), key))


def _import_ray(
    reader: SceneReader,
    todo: list[tuple[int, SceneRef, str]],
    out: Path,
    workers: int,
    address: str | None,
    done: Callable[[int, tuple], None],
) -> None:
    """Import ``todo`` as Ray tasks (:func:`vst.distributed.ray_map`), one per scene, each
    worker with its own reader of the same options. An output error (``OSError``) stops the
    import as in the pool; a scene whose task fails on every attempt is a failed scene."""
    from vst.distributed import TaskFailure, ray_map, ray_session

    shared = (reader.format, str(reader.path), reader.options.model_dump(mode="python"))
    items = [(ref, str(out / ref.id), key) for _, ref, key in todo]
    with ray_session(address, workers if address is None else None):
        for i, outcome in ray_map(
            _ray_scene,
            items,
            shared=shared,
            tags=[f"scene-{ref.id}" for _, ref, _ in todo],
            fatal=(OSError,),
        ):
            index, ref, _ = todo[i]
            if isinstance(outcome, TaskFailure):
                reason = f"failed {outcome.attempts} time(s): {outcome.error}"
                outcome = (ref.id, "failed", {"scene_id": ref.id, "reason": reason}, [])
            done(index, outcome)


def _import_one(
    reader: SceneReader, ref: SceneRef, dest: Path, key: str
) -> tuple[str, dict[str, str] | None, list[SkippedItem]]:
    """Read, check and write one scene: ``(status, failure record or None, skipped items)``."""
    local = reader.new_report()

    def failed(reason: str) -> tuple[str, dict[str, str], list[SkippedItem]]:
        return "failed", {"scene_id": ref.id, "reason": reason}, local.skipped

    try:
        scene = reader.read_scene(ref, local)
    except (SceneError, OSError, ValueError, KeyError) as exc:
        return failed(f"{type(exc).__name__}: {exc}")
    if scene is None:
        reasons = [s.reason for s in local.skipped if s.kind == "scene"]
        return failed(reasons[-1] if reasons else "nothing usable")
    scene.id = ref.id
    scene.attributes = {
        **scene.attributes,
        "format": reader.format,
        "native_id": ref.native_id,
        "import_key": key,
    }
    if ref.benchmarks:
        scene.attributes["benchmarks"] = sorted(ref.benchmarks)
    problems = scene_problems(scene, check_files=False)
    if problems:
        shown = "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else "")
        return failed(f"invalid scene: {shown}")
    if dest.exists():  # written by other options or a killed run: start clean
        shutil.rmtree(dest)
    try:
        save_scene(scene, dest)
        _write_record(dest, key, local.skipped)
    except OSError as exc:
        shutil.rmtree(dest, ignore_errors=True)
        if _is_output_error(exc, dest):
            raise  # disk full, read-only output: the import cannot go on
        return failed(f"cannot write: {exc}")
    except SceneError as exc:
        shutil.rmtree(dest, ignore_errors=True)
        return failed(f"cannot write: {exc}")
    return "written", None, local.skipped
