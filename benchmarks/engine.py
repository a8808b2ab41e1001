"""Data-engine speed and memory: samples per second per core for every registered task, and
peak RSS of whole runs against the number of scenes.

Run: ``.venv/bin/python benchmarks/engine.py [--num-scenes 4] [--budget 48] [--memory-n 4]``
(``--scenes DIR`` reuses rendered scenes; otherwise they are synthesised once into a temporary
folder: 640x480, 4 single views, a 2-view set and a 16-frame video each).

The process pins itself to one core (``os.sched_setaffinity``, one BLAS/OpenMP/numba thread), so
"per core" = samples / CPU seconds (``time.process_time``). For each task, on the same loaded
scenes (``Scene`` objects; pixels load lazily through the frame views):

* ``loaded`` (the budgeted figure: "template tasks from loaded scenes"): the scenes' pixels
  (image, depth, mask) are decoded into the frame views before the clock starts; everything a
  task derives from them (visible objects, 2D boxes, inner pixels, the resized model image,
  FoV-unified images, marks, text) is timed. Fresh contexts, image encoding off;
* ``generate``: what the runner does, image encoding off: one :class:`EngineContext` per
  scene (``ctx.reset()`` between scenes), ``task.generate(scene, rng, budget, ctx)``; the
  frames' PNG/npz reads and decodes are included (once per frame per scene);
* ``warm``: the same pass again with the frame caches already filled (template work only);
* baseline ``no cache``: a fresh ``EngineContext`` per sample (``budget = 1``), i.e. every
  sample re-reads and re-derives its frame (what a generator without shared views pays);
* ``encode``: image encoding + row building of those samples alone (JPEG q95,
  :func:`vst.engine.writer.sample_row`), measured apart;
* ``end to end``: generate + encode, ``1 / (1/generate + 1/encode)``.

End to end (``--only-e2e`` runs only this section): whole ``run(config)`` runs of the
``configs/demo.yaml`` task mix over the scenes (``--e2e-per-scene`` asked per scene and task,
48 by default), one worker; the baseline (no encoded-image cache, the format-2 Parquet options)
and the new path alternate ``--e2e-reps`` times after a small warm-up run; samples per CPU
second (decode, templates, encoding, rows, Parquet), medians and their ratio, and whether the
new path wrote identical shards every time. Budget: >= 300 samples/s per core (median).

Memory: ``run(config)`` in a fresh subprocess per size, on N and 10N scenes (the 10N are the N
rendered scenes repeated under new ids, pixels shared on disk), every registered single-image
task, in-process (one worker); peak RSS from ``VmHWM`` (``resource.getrusage`` off Linux).

The runner shares one context per scene across all tasks, so each frame's derived work is paid
once for every task; the last row times exactly that: every task in turn on the same loaded
scenes. Image work stays aside there as the budget says: the per-frame image preparation (the
bicubic resizes to the model size and to the FoV-unified size, ~15 ms per 640x480 frame) is
timed apart and printed, like encoding.

Budgets: template tasks >= 1,000 samples/s per core, image encoding aside: every task's
``warm`` figure (template work per sample) and the all-tasks ``loaded`` figure (what the
runner does per loaded scene, derived per-frame work included) must reach it;
peak RSS < 2 GB per worker and flat in the number of scenes (10N within 15% + 64 MB of N).
Prints PASS/FAIL and exits 1 on FAIL.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

RATE_BUDGET = 1000.0
"""Required samples per second per core for template tasks (image encoding aside)."""
RSS_BUDGET_MB = 2048.0
"""Peak RSS allowed per worker."""
FLAT_REL, FLAT_ABS_MB = 0.15, 64.0
"""Peak RSS on 10N scenes may exceed that on N by at most 15% + 64 MB."""


def _pin() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def _cpu(fn) -> tuple[float, object]:
    c0 = time.process_time()
    out = fn()
    return time.process_time() - c0, out


def make_scenes(folder: Path, n: int, seed: int = 7) -> list[Path]:
    from vst.scenes.sources.synthetic import SynthConfig, write_scenes

    cfg = SynthConfig(
        num_scenes=n,
        seed=seed,
        width=640,
        height=480,
        single_views=4,
        multiview_sets=1,
        views_per_set=2,
        video_frames=16,
    )
    return write_scenes(cfg, folder)


def replicate(scene_dirs: list[Path], count: int, folder: Path) -> Path:
    """``count`` scene directories cycling through ``scene_dirs`` under new ids; pixel files
    are referenced by absolute path (nothing copied)."""
    for i in range(count):
        src = scene_dirs[i % len(scene_dirs)]
        rec = json.loads((src / "scene.json").read_text())
        rec["id"] = f"{rec['id']}_r{i:04d}"
        for fr in rec["frames"]:
            for kind in ("image", "depth", "mask"):
                if fr.get(kind):
                    fr[kind] = str((src / fr[kind]).resolve())
        out = folder / rec["id"]
        out.mkdir(parents=True, exist_ok=True)
        (out / "scene.json").write_text(json.dumps(rec))
    return folder


# -- speed ---------------------------------------------------------------------------------
def bench_task(name: str, scenes: list, budget: int, n_encode: int, n_base: int) -> dict:
    import numpy as np

    from vst.engine.context import EngineContext
    from vst.engine.registry import get_task
    from vst.engine.runner import derive_seed
    from vst.engine.writer import sample_row

    task = get_task(name)
    ctxs = []

    def stream(samples, keep: list | None = None) -> int:
        """Consume samples as the runner does (one at a time, nothing held), keeping the first
        ``n_encode`` in ``keep`` for the encoding measurement."""
        made = 0
        for sample in samples:
            if keep is not None and len(keep) < n_encode:
                keep.append(sample)
            made += 1
        return made

    def generate(rep: int, fresh: bool, keep: list | None = None) -> int:
        made = 0
        for i, scene in enumerate(scenes):
            if fresh:
                ctx = EngineContext()
                ctxs.append(ctx)
            else:
                ctx = ctxs[i]
            rng = np.random.default_rng(derive_seed(rep, scene.id, name))
            made += stream(task.generate(scene, rng, budget, ctx), keep)
        return made

    loaded = []
    for scene in scenes:  # decode pixels outside the clock
        ctx = EngineContext()
        for frame in scene.frames:
            view = ctx.view(scene, frame)
            _ = (view.image, view.depth, view.mask)
        loaded.append(ctx)

    def generate_loaded() -> int:
        made = 0
        for scene, ctx in zip(scenes, loaded, strict=True):
            rng = np.random.default_rng(derive_seed(0, scene.id, name))
            made += stream(task.generate(scene, rng, budget, ctx))
        return made

    loaded_s, loaded_n = _cpu(generate_loaded)
    for c in loaded:
        c.reset()
    subset: list = []
    cold_s, cold_n = _cpu(lambda: generate(0, True, subset))
    # same seed as the cold pass: the same frames, caches filled -> template work only
    warm_s, warm_n = _cpu(lambda: generate(0, False))
    for c in ctxs:
        c.reset()

    enc_s, _ = _cpu(lambda: [sample_row(s, "JPEG", 95) for s in subset])

    def baseline() -> int:
        made = 0
        for k in range(n_base):
            scene = scenes[k % len(scenes)]
            rng = np.random.default_rng(derive_seed(2, scene.id, f"{name}:{k}"))
            made += sum(1 for _ in task.generate(scene, rng, 1, EngineContext()))
        return made

    base_s, base_n = _cpu(baseline)
    rate = cold_n / cold_s if cold_s else float("inf")
    enc_rate = len(subset) / enc_s if enc_s else float("inf")
    return {
        "task": name,
        "samples": cold_n,
        "loaded": loaded_n / loaded_s if loaded_s else float("inf"),
        "generate": rate,
        "warm": warm_n / warm_s if warm_s else float("inf"),
        "no_cache": base_n / base_s if base_s else float("inf"),
        "encode": enc_rate,
        "end_to_end": 1.0 / (1.0 / rate + 1.0 / enc_rate),
    }


def prepare_images(ctx, scene) -> None:
    """The per-frame image preparation the tasks share: the model-size image (Qwen2.5-VL smart
    size) and the FoV-unified image, both bicubic resizes of the decoded frame."""
    from vst.engine.fov import unified_view

    for frame in scene.frames:
        view = ctx.view(scene, frame)
        _ = view.shared_model_image()
        _ = unified_view(view).image


def bench_all_tasks(names: list[str], scenes: list, budget: int) -> tuple[float, int, float]:
    """Samples/s of every task in turn on the same loaded scenes, one shared context per scene,
    pixels decoded and frame images prepared (resized) beforehand: the runner's pattern with
    image work aside. Also returns the image preparation time per frame (ms), timed apart."""
    import numpy as np

    from vst.engine.context import EngineContext
    from vst.engine.registry import get_task
    from vst.engine.runner import derive_seed

    tasks = [get_task(n) for n in names]
    ctxs = []
    for scene in scenes:
        ctx = EngineContext()
        for frame in scene.frames:
            view = ctx.view(scene, frame)
            _ = (view.image, view.depth, view.mask)
        ctxs.append(ctx)
    prep_s, _ = _cpu(lambda: [prepare_images(c, s) for c, s in zip(ctxs, scenes, strict=True)])
    n_frames = sum(len(s.frames) for s in scenes)

    def run_all() -> int:
        made = 0
        for scene, ctx in zip(scenes, ctxs, strict=True):
            for task in tasks:
                rng = np.random.default_rng(derive_seed(5, scene.id, task.name))
                made += sum(1 for _ in task.generate(scene, rng, budget, ctx))
        return made

    secs, made = _cpu(run_all)
    for c in ctxs:
        c.reset()
    return (made / secs if secs else float("inf")), made, 1000.0 * prep_s / n_frames


# -- end to end ----------------------------------------------------------------------------
E2E_BUDGET = 300.0
"""Required samples per CPU second of a whole run (decode, templates, encoding, Parquet)."""

_FORMAT2_WRITER_OPTIONS = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": ["id", "task", "scenario"],
    "write_statistics": ["task", "scenario"],
    "version": "2.6",
    "data_page_version": "1.0",
}
"""The shard writer's options before shard format 3 (the baseline's Parquet writing)."""


def _e2e_config(scenes: Path, out: Path, per_scene: int | None) -> dict:
    """``configs/demo.yaml`` (its task mix, image format, quality and shard split) over the
    rendered ``scenes``, written to ``out``, one worker; ``per_scene`` overrides its budget."""
    import yaml

    raw = yaml.safe_load(
        (Path(__file__).resolve().parents[1] / "configs" / "demo.yaml").read_text()
    )
    tasks = (
        raw["tasks"] if per_scene is None else [{**t, "per_scene": per_scene} for t in raw["tasks"]]
    )
    return {
        **raw,
        "output": str(out),
        "sources": [{"kind": "scenes", "path": str(scenes)}],
        "tasks": tasks,
        "workers": 1,
    }


def _shards_digest(out: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    for p in sorted((out / "data").glob("shard-*.parquet")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()[:16]


def _e2e_run(raw: dict, fast: bool) -> tuple[float, int, str]:
    """CPU seconds, samples and shard digest of one ``run(config)``; ``fast=False`` is the
    baseline: no encoded-image cache (every picture of every sample encoded) and the format-2
    Parquet options (zstd over the image bytes, no dictionary)."""
    import shutil

    from vst.engine import writer
    from vst.engine.config import parse_config
    from vst.engine.runner import UnitRunner, run

    out = Path(raw["output"])
    shutil.rmtree(out, ignore_errors=True)
    saved = (UnitRunner.cache_images, writer._WRITER_OPTIONS)
    UnitRunner.cache_images = fast
    writer._WRITER_OPTIONS = saved[1] if fast else _FORMAT2_WRITER_OPTIONS
    try:
        c0 = time.process_time()
        report = run(parse_config(raw), progress=False)
        secs = time.process_time() - c0
    finally:
        UnitRunner.cache_images, writer._WRITER_OPTIONS = saved
    digest = _shards_digest(out)
    shutil.rmtree(out, ignore_errors=True)
    return secs, report.samples_total, digest


def bench_end_to_end(scenes: Path, tmp: Path, per_scene: int | None, reps: int) -> dict:
    """Whole runs of the demo task mix on one core: the baseline and today's path alternate
    (``reps`` each, after a small warm-up run that pays the process's one-time imports and
    JIT loads); rates are samples per CPU second, judged on medians and their ratio."""

    _e2e_run(_e2e_config(scenes, tmp / "e2e-warm", 2), True)
    raw = _e2e_config(scenes, tmp / "e2e", per_scene)
    rates: dict[bool, list[float]] = {False: [], True: []}
    digests: set[str] = set()
    samples = 0
    for rep in range(reps):
        for fast in (False, True):
            secs, samples, digest = _e2e_run(raw, fast)
            rates[fast].append(samples / secs if secs else float("inf"))
            if fast:
                digests.add(digest)
            print(
                f"  run {rep + 1}/{reps} {'new     ' if fast else 'baseline'}: {samples} samples "
                f"in {secs:5.2f} CPU s = {rates[fast][-1]:6.1f}/s",
                flush=True,
            )
    base, new = statistics.median(rates[False]), statistics.median(rates[True])
    return {
        "samples": samples,
        "baseline": base,
        "new": new,
        "ratio": new / base if base else float("inf"),
        "deterministic": len(digests) == 1,
    }


# -- memory --------------------------------------------------------------------------------
def peak_rss_mb() -> float:
    """Peak RSS of this process in MB: ``VmHWM`` of ``/proc/self/status`` where there is one
    (Linux carries ``ru_maxrss`` over ``execve``, so a child started by a big parent would
    report the parent's peak), else ``getrusage``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def memory_child(scenes: str, out: str) -> None:
    """Run the engine on ``scenes`` (in this process) and print peak RSS as JSON."""
    from vst.engine.config import parse_config
    from vst.engine.runner import run

    t0 = time.perf_counter()
    cfg = parse_config(
        {
            "output": out,
            "seed": 0,
            "sources": [{"kind": "scenes", "path": scenes}],
            "tasks": [{"name": "*", "per_scene": 8}],
            "scenes_per_shard": 8,
            "workers": 1,
            # replicate() points at the rendered pixel files by absolute path
            "allow_outside_root": True,
        }
    )
    report = run(cfg, progress=False)
    rss_mb = peak_rss_mb()
    print(
        json.dumps(
            {
                "scenes": report.scenes_total,
                "samples": report.samples_total,
                "seconds": time.perf_counter() - t0,
                "peak_rss_mb": rss_mb,
            }
        )
    )


def measure_memory(scene_dirs: list[Path], n: int, tmp: Path) -> list[dict]:
    rows = []
    for count in (n, 10 * n):
        folder = replicate(scene_dirs, count, tmp / f"mem_{count}" / "scenes")
        out = tmp / f"mem_{count}" / "run"
        proc = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(folder), str(out)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"memory run on {count} scenes failed:\n{proc.stderr[-3000:]}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return rows


def print_end_to_end(scene_dirs: list[Path], tmp: Path, per_scene: int, reps: int) -> bool:
    """Run and print the end-to-end section; True when it passes."""
    folder = scene_dirs[0].parent
    if any(d.parent != folder for d in scene_dirs):  # a scenes source takes one folder
        folder = tmp / "e2e-scenes"
        folder.mkdir(parents=True, exist_ok=True)
        for d in scene_dirs:
            (folder / d.name).symlink_to(d.resolve())
    print(
        f"\nend to end: run(config) on the configs/demo.yaml task mix, {len(scene_dirs)} "
        f"scenes, {per_scene} asked per scene and task, one worker on one core; the baseline "
        "(no encoded-image cache, format-2 Parquet options) and the new path alternate:"
    )
    r = bench_end_to_end(folder, tmp, per_scene, reps)
    ok = r["new"] >= E2E_BUDGET and r["deterministic"]
    print(
        f"  median of {reps}: baseline {r['baseline']:,.1f}/s, new {r['new']:,.1f}/s "
        f"({r['ratio']:.2f}x); shards identical across repeats: "
        f"{'yes' if r['deterministic'] else 'NO'}; budget >= {E2E_BUDGET:,.0f}/s: "
        f"{'PASS' if ok else 'FAIL'}"
    )
    return ok


def bench_scenes(args: argparse.Namespace, out: Path) -> list[Path]:
    """The benchmark's scenes: ``--num-scenes`` of ``--scenes DIR``, else rendered into ``out``
    (640x480) once."""
    from vst.scenes import find_scene_dirs

    if args.scenes:
        return find_scene_dirs(args.scenes)[: args.num_scenes]
    t0 = time.perf_counter()
    dirs = make_scenes(out, args.num_scenes)
    print(f"rendered {len(dirs)} scenes (640x480) in {time.perf_counter() - t0:.1f} s")
    return dirs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=Path, help="Folder of rendered scenes to reuse.")
    ap.add_argument("--num-scenes", type=int, default=4)
    ap.add_argument("--budget", type=int, default=48, help="Samples asked per scene and task.")
    ap.add_argument("--encode", type=int, default=48, help="Samples encoded per task.")
    ap.add_argument("--baseline", type=int, default=24, help="Samples of the no-cache baseline.")
    ap.add_argument("--memory-n", type=int, default=4, help="N of the N / 10N memory runs.")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--e2e-reps", type=int, default=3, help="Repeats of the end-to-end runs.")
    ap.add_argument("--all-reps", type=int, default=3, help="Repeats of the all-tasks pass.")
    ap.add_argument("--e2e-per-scene", type=int, default=48, help="Asked per scene and task.")
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument("--only-e2e", action="store_true", help="Run the end-to-end section only.")
    ap.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--ray", action="store_true", help="Only the Ray executor figures.")
    ap.add_argument("--ray-units", type=int, default=12, help="n of the n / 2n overhead runs.")
    ap.add_argument("--ray-repeat", type=int, default=3, help="Repeats of the Ray overhead runs.")
    args = ap.parse_args()
    if args.ray:
        return bench_ray(args)
    _pin()
    if args.memory_child:
        memory_child(*args.memory_child)
        return 0

    from vst.engine.registry import task_names
    from vst.scenes import load_scene

    tmp_holder = tempfile.TemporaryDirectory(prefix="vst-bench-engine-")
    tmp = Path(tmp_holder.name)
    scene_dirs = bench_scenes(args, tmp / "scenes")
    scenes = [load_scene(d) for d in scene_dirs]
    names = task_names()
    print(
        f"{len(names)} tasks, {len(scenes)} scenes (640x480, {len(scenes[0].frames)} frames "
        f"each), budget {args.budget} per scene and task, one core\n"
    )

    if args.only_e2e:
        ok = print_end_to_end(scene_dirs, tmp, args.e2e_per_scene, args.e2e_reps)
        tmp_holder.cleanup()
        return 0 if ok else 1

    header = (
        f"{'task':<20} {'samples':>7} {'loaded/s':>9} {'generate/s':>11} {'warm/s':>9} "
        f"{'no cache/s':>11} "
        f"{'speedup':>8} {'encode/s':>9} {'end to end/s':>13}  budget"
    )
    print(header)
    print("-" * len(header))
    failed = False
    for name in names:
        r = bench_task(name, scenes, args.budget, args.encode, args.baseline)
        ok = r["warm"] >= RATE_BUDGET
        failed |= not ok
        print(
            f"{name:<20} {r['samples']:>7} {r['loaded']:>9,.0f} {r['generate']:>11,.0f} "
            f"{r['warm']:>9,.0f} "
            f"{r['no_cache']:>11,.0f} {r['generate'] / r['no_cache']:>7.1f}x "
            f"{r['encode']:>9,.0f} {r['end_to_end']:>13,.0f}  {'PASS' if ok else 'FAIL'}"
        )
    # one-time process costs (lazy imports, fonts, tag bitmaps) out of the measurement: a
    # small throwaway pass with fresh contexts first
    bench_all_tasks(names, scenes, 2)
    # judged on the median of repeated passes: one slow pass on a shared machine is noise
    passes = [bench_all_tasks(names, scenes, args.budget) for _ in range(args.all_reps)]
    all_rate = statistics.median(p[0] for p in passes)
    all_n, prep_ms = passes[0][1], statistics.median(p[2] for p in passes)
    print(
        f"all-tasks passes: {', '.join(f'{p[0]:,.0f}' for p in passes)} samples/s "
        f"(median {all_rate:,.0f})"
    )
    ok = all_rate >= RATE_BUDGET
    failed |= not ok
    print(
        f"{'all tasks, shared':<20} {all_n:>7} {all_rate:>9,.0f}  (every task in turn on the same "
        f"loaded scenes, frame images prepared, as the runner does)  {'PASS' if ok else 'FAIL'}"
    )
    print(
        f"image preparation, timed apart: {prep_ms:.1f} ms per frame (model-size + FoV-unified "
        "bicubic resizes, once per frame for all tasks)"
    )
    print(
        f"\nbudget: >= {RATE_BUDGET:,.0f} samples/s per core, image encoding aside: per task on "
        "warm/s (template work), overall on the shared loaded/s row. loaded/s = pixels decoded "
        "beforehand, derived per-frame work timed; generate/s adds the PNG/npz decoding."
    )

    if not args.skip_e2e:
        failed |= not print_end_to_end(scene_dirs, tmp, args.e2e_per_scene, args.e2e_reps)

    if not args.skip_memory:
        print("\npeak RSS of a whole run (in-process, every task, 8 asked per scene):")
        rows = measure_memory(scene_dirs, args.memory_n, tmp)
        for row in rows:
            print(
                f"  {row['scenes']:>4} scenes: {row['samples']:>6} samples in "
                f"{row['seconds']:6.1f} s, peak RSS {row['peak_rss_mb']:7.1f} MB"
            )
        small, big = rows[0]["peak_rss_mb"], rows[1]["peak_rss_mb"]
        flat = big <= small * (1 + FLAT_REL) + FLAT_ABS_MB
        under = big < RSS_BUDGET_MB
        made = all(row["samples"] > 0 for row in rows)  # a run that made nothing measures nothing
        if not made:
            print("  a memory run made no samples: FAIL")
        failed |= not (flat and under and made)
        print(
            f"  flat (10N <= N * {1 + FLAT_REL:.2f} + {FLAT_ABS_MB:.0f} MB): "
            f"{'PASS' if flat else 'FAIL'} ({big - small:+.1f} MB); "
            f"< {RSS_BUDGET_MB:,.0f} MB per worker: {'PASS' if under else 'FAIL'}"
        )
    tmp_holder.cleanup()
    print("\nOVERALL:", "FAIL" if failed else "PASS")
    return 1 if failed else 0


# -- the Ray executor ----------------------------------------------------------------------
PAPER_SAMPLES = 4_100_000
"""VST-P's size in the paper: the projection's target."""


def _timed_run(config_data: dict, executor) -> dict:
    """One engine run; wall seconds, samples, bytes, shard digests."""
    import hashlib

    from vst.engine.config import parse_config
    from vst.engine.runner import run

    cfg = parse_config(config_data)
    t0 = time.perf_counter()
    report = run(cfg, progress=False, executor=executor)
    wall = time.perf_counter() - t0
    digests = sorted(
        hashlib.sha256(p.read_bytes()).hexdigest() for p in cfg.data_dir.glob("shard-*.parquet")
    )
    return {
        "wall": wall,
        "samples": report.samples_total,
        "bytes": report.bytes_total,
        "units": report.units_total,
        "digests": digests,
    }


def _noop(shared, x: int) -> int:
    return x


def _dispatch_pool(items: int, workers: int = 2) -> float:
    """Seconds per no-op job on a warm process pool, two in flight per worker (the local
    executor's pattern)."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    with ProcessPoolExecutor(workers) as ex:
        list(ex.map(_noop, [None] * workers, range(workers)))  # workers up
        t0 = time.perf_counter()
        pending, queue = set(), list(range(items))
        while queue or pending:
            while queue and len(pending) < 2 * workers:
                pending.add(ex.submit(_noop, None, queue.pop()))
            _done, pending = wait(pending, return_when=FIRST_COMPLETED)
        return (time.perf_counter() - t0) / items


def _dispatch_ray(items: int, shared) -> float:
    """Seconds per no-op Ray task through :func:`vst.distributed.ray_map` (warm workers), with
    the engine's shared payload (config and task classes) passed to every task."""
    from vst.distributed import ray_map

    list(ray_map(_noop, [(i,) for i in range(8)], shared=shared))  # workers up
    t0 = time.perf_counter()
    list(ray_map(_noop, [(i,) for i in range(items)], shared=shared))
    return (time.perf_counter() - t0) / items


def bench_ray(args) -> int:
    """The Ray executor against the local pool, in one process and one run (``--ray``).

    * dispatch cost per unit: no-op jobs on a warm pool (2 workers) and no-op Ray tasks (2
      CPUs, the engine's payload), median of ``--ray-repeat`` repeats of 200;
    * per small unit, end to end: small units (one ``si_distance`` sample per scene, one scene per
      unit), ``n`` and ``2n`` of them (``n = --ray-units``), on the local pool (2 workers) and
      on a warm local Ray (2 CPUs); the cost per unit is the slope ``(wall(2n) - wall(n)) / n``
      (fixed costs such as the pool's start cancel out), median of ``--ray-repeat`` repeats;
      overhead = Ray's slope - the pool's. Ray's start-up is timed apart;
    * samples per second with 1 and 2 CPUs: the ``configs/demo.yaml`` mix (every task, 6 asked
      per scene, one scene per shard) on ``--num-scenes`` rooms: in-process (1 CPU), pool (2),
      Ray with 1 CPU and Ray with 2 CPUs; wall-clock samples/s, encoding and writing included;
    * the projection for the paper's 4.1M samples from the 1-CPU Ray rate, on one 64-core node
      and on 8 such nodes, at linear scaling and at the measured 1 -> 2 CPU efficiency.

    Undoes the one-core pin (the pool and Ray need both cores). Shards must be identical across
    executors and CPU counts (exit 1 otherwise)."""
    import statistics

    from vst.distributed import ray_session
    from vst.engine.executors import LocalExecutor, RayExecutor

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    tmp_holder = tempfile.TemporaryDirectory(prefix="vst-bench-ray-")
    tmp = Path(tmp_holder.name)
    rendered = bench_scenes(args, tmp / "rendered")
    n = args.ray_units
    small = {k: replicate(rendered, k, tmp / f"small{k}") for k in (n, 2 * n)}
    mix = replicate(rendered, len(rendered), tmp / "mix")
    runs = iter(range(10**6))

    def small_cfg(k: int) -> dict:
        return {
            "output": str(tmp / f"run{next(runs)}"),
            "sources": [{"kind": "scenes", "path": str(small[k])}],
            "tasks": [{"name": "si_distance", "per_scene": 1}],
            "scenes_per_shard": 1,
            "workers": 2,
            "allow_outside_root": True,
        }

    def mix_cfg(workers: int) -> dict:
        return {
            "output": str(tmp / f"run{next(runs)}"),
            "sources": [{"kind": "scenes", "path": str(mix)}],
            "tasks": [{"name": "*", "per_scene": 6}],
            "scenes_per_shard": 1,
            "workers": workers,
            "allow_outside_root": True,
        }

    def slope(executor) -> tuple[float, float, list[str]]:
        """Median seconds per unit and fixed seconds per run; the 2n run's digests."""
        slopes, fixed = [], []
        for _ in range(args.ray_repeat):
            a = _timed_run(small_cfg(n), executor)
            b = _timed_run(small_cfg(2 * n), executor)
            slopes.append((b["wall"] - a["wall"]) / n)
            fixed.append(a["wall"] - n * slopes[-1])
        return statistics.median(slopes), statistics.median(fixed), b["digests"]

    # local first: no fork after ray.init
    pool_dispatch = statistics.median(_dispatch_pool(200) for _ in range(args.ray_repeat))
    pool_unit, pool_fixed, pool_digests = slope(LocalExecutor(2))
    rows = {
        "local, in-process (1 CPU)": _timed_run(mix_cfg(1), LocalExecutor(1)),
        "local pool (2 CPUs)": _timed_run(mix_cfg(2), LocalExecutor(2)),
    }
    inits = []
    for cpus in (2, 1):
        t0 = time.perf_counter()
        with ray_session(None, cpus):
            inits.append(time.perf_counter() - t0)
            if cpus == 2:
                from vst.engine.config import parse_config
                from vst.engine.runner import task_classes

                cfg = parse_config(mix_cfg(2))
                shared = ("token", cfg, task_classes(cfg))
                ray_dispatch = statistics.median(
                    _dispatch_ray(200, shared) for _ in range(args.ray_repeat)
                )
                _timed_run(small_cfg(n), RayExecutor())  # workers started, imports done
                ray_unit, ray_fixed, ray_digests = slope(RayExecutor())
            rows[f"Ray ({cpus} CPU{'s' if cpus > 1 else ''})"] = _timed_run(
                mix_cfg(cpus), RayExecutor()
            )
    first = next(iter(rows.values()))["digests"]
    same = all(r["digests"] == first for r in rows.values()) and ray_digests == pool_digests
    overhead = ray_dispatch - pool_dispatch
    print(
        f"\ndispatch per unit (no-op jobs, 2 CPUs, median of {args.ray_repeat} x 200): local pool "
        f"{1000 * pool_dispatch:.2f} ms, Ray {1000 * ray_dispatch:.2f} ms -> Ray overhead "
        f"{1000 * overhead:+.2f} ms per unit"
    )
    print(
        f"per small work unit end to end (one si_distance sample, {n} vs {2 * n} units, "
        f"2 CPUs, median of {args.ray_repeat}): local pool {1000 * pool_unit:.0f} ms "
        f"(+{pool_fixed:.2f} s per run), Ray {1000 * ray_unit:.0f} ms "
        f"(+{ray_fixed:.2f} s per run, warm) -> "
        f"difference {1000 * (ray_unit - pool_unit):+.0f} ms per unit; Ray start-up "
        f"{', '.join(f'{s:.1f}' for s in inits)} s (2 CPUs, 1 CPU)"
    )
    print(f"\ndemo mix (every task, 6 per scene), {len(rendered)} scenes, one per shard:")
    print(f"{'executor':<28} {'samples':>7} {'wall s':>7} {'samples/s':>10}")
    for name, r in rows.items():
        print(f"{name:<28} {r['samples']:>7} {r['wall']:>7.1f} {r['samples'] / r['wall']:>10.1f}")
    print(f"shards identical across executors and CPU counts: {'yes' if same else 'NO'}")

    r1 = rows["Ray (1 CPU)"]["samples"] / rows["Ray (1 CPU)"]["wall"]
    r2 = rows["Ray (2 CPUs)"]["samples"] / rows["Ray (2 CPUs)"]["wall"]
    eff = min(1.0, r2 / (2 * r1))
    per_sample = rows["Ray (2 CPUs)"]["bytes"] / max(rows["Ray (2 CPUs)"]["samples"], 1)
    per_unit = 6 * 19 * 16  # samples of a 16-scene shard of the demo mix
    units = PAPER_SAMPLES / per_unit
    print(
        f"\nprojection for {PAPER_SAMPLES / 1e6:.1f}M samples of the demo mix at {r1:.1f} "
        f"samples/s per CPU (Ray, 1 CPU); measured 1 -> 2 CPU efficiency {eff:.2f}; "
        f"{per_sample / 1e3:.0f} kB per sample ({PAPER_SAMPLES * per_sample / 1e9:.0f} GB); "
        f"{units:,.0f} units of 16 scenes:"
    )
    for label, cpus in (("one 64-core node", 64), ("8 nodes x 64 cores", 512)):
        ideal = r1 * cpus
        print(
            f"  {label}: {PAPER_SAMPLES / ideal / 3600:.2f} h at linear scaling "
            f"({ideal:,.0f} samples/s, {ideal * per_sample / 1e6:.0f} MB/s to the shared file "
            f"system), {PAPER_SAMPLES / (ideal * eff) / 3600:.2f} h at efficiency {eff:.2f}; "
            f"Ray overhead {units * max(overhead, 0) / cpus / 60:.1f} min"
        )
    tmp_holder.cleanup()
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
