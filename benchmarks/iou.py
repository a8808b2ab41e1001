"""Speed and accuracy of ``vst.geometry.iou`` against an independent scipy reference, on one core.

Run: ``.venv/bin/python benchmarks/iou.py``. Prints pairs/s of :func:`box3d_iou` on a seeded
1000 x 1000 matrix of clustered, arbitrarily rotated boxes (most pairs overlap, 10% of the boxes are
far away) and on one with no far boxes; pairs/s of the scipy reference (LP interior point,
halfspace intersection, convex hull) on 2000 pairs sampled from the first matrix, the speedup and
the max absolute IoU difference; the same difference on 500 pairs with shared or touching face
planes; and :func:`bev_iou` speed on the first boxes with pitch = roll = 0. Budgets: >= 200,000
pairs/s (slower box3d_iou run) and max |diff| <= 1e-6 (both reference sets); prints a PASS/FAIL
line per budget and exits non-zero on any FAIL. Pinned to one core; the kernels are serial.

The reference (:func:`reference_intersection_volume`, :func:`reference_iou`) is importable without
side effects; the tests use it too.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from scipy.optimize import linprog
from scipy.spatial import ConvexHull, HalfspaceIntersection
from scipy.spatial.transform import Rotation

SPEED_BUDGET = 200_000.0
"""Required box3d_iou throughput, pairs per second on one core."""

ACCURACY_BUDGET = 1e-6
"""Allowed max absolute IoU difference against the reference."""


def _halfspaces(box: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """The 6 half-spaces ``n . x + b <= 0`` (scipy layout, unit ``n``) of a box about ``origin``."""
    R = Rotation.from_euler("xyz", box[6:9], degrees=True).as_matrix()
    centre = box[0:3] - origin
    rows = []
    for i in range(3):
        for sign in (-1.0, 1.0):
            n = sign * R[:, i]
            rows.append([*n, -(n @ centre + box[3 + i] / 2.0)])
    return np.array(rows)


def _degenerate(box: np.ndarray) -> bool:
    return bool(not np.all(np.isfinite(box)) or np.any(box[3:6] <= 0))


def reference_intersection_volume(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection volume of two (9,) boxes via scipy: LP Chebyshev centre, halfspaces, hull."""
    a = np.asarray(a, dtype=np.float64).reshape(9)
    b = np.asarray(b, dtype=np.float64).reshape(9)
    if _degenerate(a) or _degenerate(b):
        return 0.0
    # Work around A's centre in units of the pair's scale, so the LP tolerances are relative.
    scale = float(np.linalg.norm(a[3:6]) + np.linalg.norm(b[3:6]))
    H = np.vstack([_halfspaces(a, a[0:3]), _halfspaces(b, a[0:3])])
    H[:, 3] /= scale
    # Chebyshev centre: max r s.t. n_i . x + r <= -b_i (unit normals); variables (x, y, z, r).
    # The LP's absolute tolerances can leave a slightly violating point when the intersection is
    # thin; then re-centre on that point in units of its radius and solve again.
    A_ub = np.hstack([H[:, :3], np.ones((len(H), 1))])
    unit = scale
    for _ in range(4):
        for method in ("highs", "highs-ipm", "highs-ds"):  # next solver on numerical trouble
            res = linprog(
                c=[0.0, 0.0, 0.0, -1.0],
                A_ub=A_ub,
                b_ub=-H[:, 3],
                bounds=[(None, None)] * 3 + [(0.0, None)],
                method=method,
            )
            if res.status in (0, 2):
                break
        else:
            raise RuntimeError(f"reference: LP failed ({res.message})")
        if res.status == 2 or res.x[3] <= 1e-9 * scale / unit:
            return 0.0  # empty or flat intersection
        r = float(res.x[3])
        violation = float(np.max(A_ub @ res.x + H[:, 3]))
        # Re-centre on the point in units of its radius (Qhull then sees a unit ball inside).
        H[:, 3] = (H[:, :3] @ res.x[:3] + H[:, 3]) / r
        unit *= r
        if violation <= 1e-3 * r:
            break
    else:
        raise RuntimeError("reference: no reliable interior point found")
    hs = HalfspaceIntersection(H, np.zeros(3))
    return float(ConvexHull(hs.intersections).volume) * unit**3


def reference_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two (9,) boxes from :func:`reference_intersection_volume`."""
    inter = reference_intersection_volume(a, b)
    if inter <= 0.0:
        return 0.0
    va = float(np.prod(np.asarray(a, dtype=np.float64).reshape(9)[3:6]))
    vb = float(np.prod(np.asarray(b, dtype=np.float64).reshape(9)[3:6]))
    return inter / (va + vb - inter)


def clustered_boxes(n: int, rng: np.random.Generator, far_fraction: float = 0.1) -> np.ndarray:
    """(n, 9) boxes, all three angles uniform in [-180, 180): centres in a 1 m cube, sizes in
    [0.3, 2] m, so most pairs overlap; a ``far_fraction`` of them is moved 100 m away."""
    centres = rng.uniform(-0.5, 0.5, (n, 3))
    far = rng.random(n) < far_fraction
    centres[far] += rng.uniform(50.0, 100.0, (int(far.sum()), 3))
    sizes = rng.uniform(0.3, 2.0, (n, 3))
    angles = rng.uniform(-180.0, 180.0, (n, 3))
    return np.concatenate([centres, sizes, angles], axis=1)


def shared_plane_pairs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n, 9) pairs with coincident or touching face planes: boxes on a 0.25 m grid (sizes 0.25 to
    2 m), about half of them nudged by up to 1e-9 m / 1e-7 degrees, each pair then moved by its own
    random rigid motion. Exercises the coplanar-face handling."""
    from vst.geometry.boxes import transform_boxes

    A = np.zeros((n, 9))
    B = np.zeros((n, 9))
    A[:, 3:6] = rng.integers(1, 9, (n, 3)) * 0.25
    B[:, 3:6] = rng.integers(1, 9, (n, 3)) * 0.25
    B[:, 0:3] = rng.integers(-4, 5, (n, 3)) * 0.25
    nudge = rng.random(n) < 0.5
    B[nudge, 0:6] += rng.uniform(-1e-9, 1e-9, (int(nudge.sum()), 6))
    B[nudge, 6:9] += rng.uniform(-1e-7, 1e-7, (int(nudge.sum()), 3))
    for k in range(n):
        T = np.eye(4)
        T[:3, :3] = Rotation.random(random_state=rng).as_matrix()
        T[:3, 3] = rng.uniform(-10.0, 10.0, 3)
        A[k] = transform_boxes(A[k], T)[0]
        B[k] = transform_boxes(B[k], T)[0]
    return A, B


def _rate(fn, n_pairs: int, repeats: int = 3) -> tuple[float, object]:
    """Best-of-``repeats`` pairs/s of ``fn()`` and its last result."""
    best = float("inf")
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return n_pairs / best, out


def main() -> int:
    os.environ["NUMBA_NUM_THREADS"] = "1"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # pin to one core
    from vst.geometry.iou import bev_iou, box3d_iou

    rng = np.random.default_rng(20261121)
    n = 1000
    A = clustered_boxes(n, rng)
    B = clustered_boxes(n, rng)

    t0 = time.perf_counter()
    box3d_iou(A[:2], B[:2])
    bev_iou(A[:2], B[:2])
    print(f"JIT warm-up (compile or cache load): {time.perf_counter() - t0:.2f} s")

    rate, iou = _rate(lambda: box3d_iou(A, B), n * n)
    overlap = float(np.mean(iou > 0))
    print(f"box3d_iou {n}x{n}: {rate:,.0f} pairs/s  ({100 * overlap:.1f}% of pairs overlap)")
    C = clustered_boxes(n, rng, far_fraction=0.0)
    D = clustered_boxes(n, rng, far_fraction=0.0)
    dense_rate, dense = _rate(lambda: box3d_iou(C, D), n * n, repeats=2)
    print(
        f"box3d_iou {n}x{n}, no far boxes: {dense_rate:,.0f} pairs/s  "
        f"({100 * np.mean(dense > 0):.1f}% of pairs overlap)"
    )

    k = 2000
    ia = rng.integers(0, n, k)
    ib = rng.integers(0, n, k)
    t0 = time.perf_counter()
    ref = np.array([reference_iou(A[i], B[j]) for i, j in zip(ia, ib, strict=True)])
    ref_rate = k / (time.perf_counter() - t0)
    diff = float(np.max(np.abs(iou[ia, ib] - ref)))
    print(
        f"scipy reference on {k} sampled pairs ({100 * np.mean(ref > 0):.1f}% overlap): "
        f"{ref_rate:,.0f} pairs/s; speedup {rate / ref_rate:,.0f}x"
    )
    print(f"max |box3d_iou - reference| = {diff:.2e}")

    m = 500
    hard_A, hard_B = shared_plane_pairs(m, rng)
    hard = np.array([box3d_iou(x, y)[0, 0] for x, y in zip(hard_A, hard_B, strict=True)])
    hard_ref = np.array([reference_iou(x, y) for x, y in zip(hard_A, hard_B, strict=True)])
    hard_diff = float(np.max(np.abs(hard - hard_ref)))
    print(
        f"{m} shared/touching-plane pairs under random rigid motions "
        f"({100 * np.mean(hard_ref > 0):.1f}% overlap): max |box3d_iou - reference| = "
        f"{hard_diff:.2e}"
    )
    diff = max(diff, hard_diff)

    flat_A = A.copy()
    flat_B = B.copy()
    flat_A[:, [6, 8]] = 0.0
    flat_B[:, [6, 8]] = 0.0
    bev_rate, bev = _rate(lambda: bev_iou(flat_A, flat_B), n * n)
    bev_diff = float(np.max(np.abs(bev - box3d_iou(flat_A, flat_B))))
    print(
        f"bev_iou {n}x{n} (pitch = roll = 0): {bev_rate:,.0f} pairs/s; "
        f"max |bev_iou - box3d_iou| = {bev_diff:.2e}"
    )

    slowest = min(rate, dense_rate)
    ok_speed = slowest >= SPEED_BUDGET
    ok_acc = diff <= ACCURACY_BUDGET
    print(
        f"{'PASS' if ok_speed else 'FAIL'} speed (slower box3d_iou run): "
        f"{slowest:,.0f} >= {SPEED_BUDGET:,.0f} pairs/s"
    )
    print(
        f"{'PASS' if ok_acc else 'FAIL'} accuracy (both reference sets): "
        f"{diff:.2e} <= {ACCURACY_BUDGET:.0e}"
    )
    return 0 if ok_speed and ok_acc else 1


if __name__ == "__main__":
    sys.exit(main())
