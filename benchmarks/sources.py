"""Speed and memory of the dataset readers and the pseudo instance masks, against baselines in the
same run, on one core.

Run: ``.venv/bin/python benchmarks/sources.py [--repeat 3]``.

(a) Import, per format: the fixture dataset of :mod:`vst.testing` (written once, in the dataset's
    own layout) is imported with :func:`vst.scenes.sources.importer.import_scenes` into a fresh
    folder ``--repeat`` times (median). Baseline: the *decode floor*, the time to decode every
    pixel file of that fixture once (PNG/JPEG with Pillow, ``.npy``, HDF5 with h5py) with nothing
    else done. The ratio import / floor is the reader's overhead (conversions, pseudo masks,
    annotation, writing scene directories; the fixtures are small, so fixed costs weigh in).
    Peak RSS of the process is printed after each format.
(b) Pseudo masks: :func:`vst.scenes.annotate.mask_from_depth_and_boxes` on an ARKitScenes-sized
    frame (256 x 192) with 40 boxes, against a naive version that tests every pixel against every
    box without the bounding-sphere pre-test. Both must give the same mask.

Budget (``PASS``/``FAIL``, exit 1 on a FAIL): every import under 150 ms per frame on one core
(ARKitScenes' 5,047 3DOD videos at ~100 kept frames each: under a day on one core, hours on a
few), and the pseudo masks under 20 ms per frame and equal to the naive ones.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

IMPORT_FRAME_BUDGET_S = 0.150
"""Seconds per imported frame, one core."""
MASK_BUDGET_S = 0.020
"""Seconds per 256 x 192 frame with 40 boxes."""


def _pin_one_core() -> None:
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _fixtures(root: Path) -> list[tuple[str, Path, dict]]:
    """``(format, path to read, options)`` of every fixture, written under ``root``."""
    from vst.testing.arkitscenes_fixture import write_arkitscenes_fixture
    from vst.testing.embodiedscan_fixture import write_embodiedscan_fixture
    from vst.testing.hypersim_fixture import write_hypersim_fixture
    from vst.testing.images_fixture import write_images_fixture
    from vst.testing.omni3d_fixture import write_omni3d_fixture
    from vst.testing.scannetpp_fixture import write_scannetpp_fixture

    write_arkitscenes_fixture(root / "arkitscenes")
    es = write_embodiedscan_fixture(root / "embodiedscan")
    hs = write_hypersim_fixture(root / "hypersim")
    write_images_fixture(root / "images")
    om = write_omni3d_fixture(root / "omni3d")
    sp = write_scannetpp_fixture(root / "scannetpp")
    return [
        ("arkitscenes", root / "arkitscenes" / "3dod", {}),
        ("embodiedscan", Path(es.info_file), {}),
        ("hypersim", Path(hs.root), {}),
        ("images", root / "images", {}),
        ("omni3d", Path(om.json_dir), {}),
        ("scannetpp", Path(sp.root), {}),
    ]


def _decode_floor(root: Path) -> tuple[float, int]:
    """Seconds to decode every pixel file under ``root`` once, and how many there were."""
    from PIL import Image

    files = sorted(
        p for p in root.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".npy", ".hdf5"}
    )
    t0 = time.perf_counter()
    for p in files:
        if p.suffix == ".npy":
            np.load(p)
        elif p.suffix == ".hdf5":
            import h5py

            with h5py.File(p, "r") as f:
                f["dataset"][()]
        else:
            with Image.open(p) as im:
                np.asarray(im)
    return time.perf_counter() - t0, len(files)


def bench_imports(repeat: int) -> bool:
    from vst.scenes.guard import BenchmarkGuard
    from vst.scenes.sources.formats import get_reader_class
    from vst.scenes.sources.importer import import_scenes

    ok = True
    print("(a) import per format (fixture datasets; median of", repeat, "runs)")
    print(
        f"{'format':<13} {'scenes':>6} {'frames':>6} {'import s':>9} {'floor s':>8} "
        f"{'files':>5} {'ratio':>6} {'ms/frame':>8} {'RSS MB':>7}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for fmt, path, options in _fixtures(root / "fixtures"):
            floor_s, n_files = _decode_floor(root / "fixtures" / fmt)
            times, frames, scenes = [], 0, 0
            for k in range(repeat):
                out = root / "out" / f"{fmt}-{k}"
                reader = get_reader_class(fmt)(path, options)
                t0 = time.perf_counter()
                res = import_scenes(reader, out, guard=BenchmarkGuard.default(allow=True))
                times.append(time.perf_counter() - t0)
                scenes = len(res.written)
                frames = sum(len(list((d / "images").glob("*"))) for d in res.scene_dirs())
                shutil.rmtree(out)
            t = statistics.median(times)
            ratio = t / max(floor_s, 1e-9)
            print(
                f"{fmt:<13} {scenes:>6} {frames:>6} {t:>9.3f} {floor_s:>8.3f} {n_files:>5} "
                f"{ratio:>6.1f} {1000 * t / max(frames, 1):>8.1f} {_rss_mb():>7.0f}"
            )
            ok &= t / max(frames, 1) < IMPORT_FRAME_BUDGET_S
    budget_ms = 1000 * IMPORT_FRAME_BUDGET_S
    print(f"{'PASS' if ok else 'FAIL'}: every import < {budget_ms:.0f} ms per frame")
    return ok


def _naive_mask(depth, K, cam_to_world, boxes, ids, margin=0.02):
    """Every pixel against every box, no pre-test (the baseline)."""
    from vst.scenes.annotate import points_in_box

    H, W = depth.shape
    rows, cols = np.nonzero(depth > 0)
    z = depth[rows, cols]
    cam = np.stack([(cols - K[0, 2]) * z / K[0, 0], (rows - K[1, 2]) * z / K[1, 1], z], axis=1)
    world = cam @ cam_to_world[:3, :3].T + cam_to_world[:3, 3]
    best = np.full(len(world), np.inf)
    out_ids = np.zeros(len(world), dtype=np.int32)
    for box, oid in zip(boxes, ids, strict=True):
        inside = points_in_box(world, box, margin)
        vol = float(np.prod(box[3:6]))
        better = inside & (vol < best)
        best[better] = vol
        out_ids[better] = oid
    mask = np.zeros((H, W), dtype=np.int32)
    mask[rows, cols] = out_ids
    return mask


def bench_masks() -> bool:
    from vst.scenes.annotate import mask_from_depth_and_boxes

    rng = np.random.default_rng(0)
    H, W = 192, 256
    K = np.array([[212.0, 0, 127.5], [0, 212.0, 95.5], [0, 0, 1]])
    cam_to_world = np.eye(4)
    cam_to_world[:3, :3] = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]
    cam_to_world[:3, 3] = [0, 0, 1.5]
    depth = rng.uniform(0.5, 6.0, (H, W)).astype(np.float32)
    depth[rng.random((H, W)) < 0.05] = 0
    boxes = np.zeros((40, 9))
    boxes[:, 0] = rng.uniform(-3, 3, 40)
    boxes[:, 1] = rng.uniform(0.5, 6, 40)
    boxes[:, 2] = rng.uniform(0, 2.5, 40)
    boxes[:, 3:6] = rng.uniform(0.2, 1.5, (40, 3))
    boxes[:, 8] = rng.uniform(-180, 180, 40)
    ids = list(range(1, 41))
    fast = mask_from_depth_and_boxes(depth, K, cam_to_world, boxes, ids)
    naive = _naive_mask(depth.astype(np.float64), K, cam_to_world, boxes, ids)
    same = np.array_equal(fast, naive)

    def timed(fn, n=20):
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    t_fast = timed(lambda: mask_from_depth_and_boxes(depth, K, cam_to_world, boxes, ids))
    t_naive = timed(lambda: _naive_mask(depth.astype(np.float64), K, cam_to_world, boxes, ids))
    print("\n(b) pseudo masks, 256x192 frame, 40 boxes (median of 20)")
    print(
        f"mask_from_depth_and_boxes: {1000 * t_fast:.2f} ms/frame; naive all-pairs: "
        f"{1000 * t_naive:.2f} ms/frame ({t_naive / t_fast:.1f}x slower); same mask: {same}"
    )
    ok = same and t_fast < MASK_BUDGET_S
    print(f"{'PASS' if ok else 'FAIL'}: < {1000 * MASK_BUDGET_S:.0f} ms/frame and equal to naive")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    _pin_one_core()
    ok = bench_imports(args.repeat)
    ok &= bench_masks()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
