"""Tests for vst.geometry.iou: closed forms, degenerate boxes, properties, scipy reference."""

from __future__ import annotations

import importlib.util
import warnings
from functools import cache
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from vst.geometry.boxes import box3d_volume, transform_boxes
from vst.geometry.iou import bev_iou, box3d_intersection_volume, box3d_iou

UNIT = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
OCTAGON = 2.0 * (np.sqrt(2.0) - 1.0)  # unit square ∩ itself rotated 45°: regular octagon area


@cache
def bench() -> ModuleType:
    """benchmarks/iou.py, home of the independent scipy reference (no side effects on import)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "iou.py"
    spec = importlib.util.spec_from_file_location("_vst_bench_iou", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def box(center=(0, 0, 0), size=(1, 1, 1), angles=(0, 0, 0)) -> np.ndarray:
    return np.array([*center, *size, *angles], dtype=np.float64)


def rigid(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    T = np.eye(4)
    T[:3, :3] = Rotation.random(random_state=seed).as_matrix()
    T[:3, 3] = rng.uniform(-5, 5, 3)
    return T


def random_boxes(rng: np.random.Generator, n: int, spread: float = 0.6) -> np.ndarray:
    centres = rng.uniform(-spread, spread, (n, 3))
    return np.concatenate(
        [centres, rng.uniform(0.2, 2.0, (n, 3)), rng.uniform(-180, 180, (n, 3))], axis=1
    )


finite = st.floats(-2.0, 2.0, allow_nan=False)
sizes = st.floats(0.05, 3.0, allow_nan=False)
angles = st.floats(-180.0, 180.0, allow_nan=False)
boxes_st = st.tuples(finite, finite, finite, sizes, sizes, sizes, angles, angles, angles).map(
    lambda v: np.array(v, dtype=np.float64)
)
yaw_boxes_st = st.tuples(finite, finite, finite, sizes, sizes, sizes, angles).map(
    lambda v: np.array([*v[:6], 0.0, v[6], 0.0], dtype=np.float64)
)


# --- closed forms -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "b",
    [
        box(),
        box(center=(1.0, -2.0, 3.0), size=(0.4, 1.7, 2.2), angles=(10.0, -35.0, 123.0)),
        box(size=(2.0, 3.0, 0.5), angles=(90.0, 90.0, 0.0)),
    ],
)
def test_identical_boxes(b):
    assert box3d_iou(b, b)[0, 0] == pytest.approx(1.0, abs=1e-12)
    assert box3d_intersection_volume(b, b)[0, 0] == pytest.approx(np.prod(b[3:6]), rel=1e-12)


def test_same_box_different_parametrisation():
    # A 2x1x3 box vs the same box described as 3x1x2 turned by 90° about Y, or flipped by 180°.
    a = box(center=(0.3, 0.1, -0.2), size=(2.0, 1.0, 3.0))
    b = box(center=(0.3, 0.1, -0.2), size=(3.0, 1.0, 2.0), angles=(0.0, 90.0, 0.0))
    c = box(center=(0.3, 0.1, -0.2), size=(2.0, 1.0, 3.0), angles=(180.0, 0.0, 180.0))
    np.testing.assert_allclose(box3d_iou(a, [b, c]), [[1.0, 1.0]], atol=1e-12)


def test_disjoint_and_touching():
    far = box(center=(5.0, 0.0, 0.0))
    near = box(center=(1.2, 0.0, 0.0), angles=(0.0, 10.0, 0.0))  # spheres overlap, boxes don't
    touching = box(center=(1.0, 0.3, 0.2))  # shares part of the x = 0.5 face, opposite normals
    edge = box(center=(1.0, 1.0, 0.0))
    assert np.all(box3d_iou(UNIT, [far, near, touching, edge]) == 0.0)
    assert np.all(box3d_intersection_volume(UNIT, [far, near, touching, edge]) == 0.0)


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("shift", [0.5, -0.5, 0.25, 0.9])
def test_shift_along_axis(axis, shift):
    b = UNIT.copy()
    b[axis] = shift
    inter = 1.0 - abs(shift)
    assert box3d_intersection_volume(UNIT, b)[0, 0] == pytest.approx(inter, abs=1e-12)
    assert box3d_iou(UNIT, b)[0, 0] == pytest.approx(inter / (2.0 - inter), abs=1e-12)
    if shift == 0.5:
        assert box3d_iou(UNIT, b)[0, 0] == pytest.approx(1.0 / 3.0, abs=1e-12)


def test_partial_shared_face_planes():
    # Shifted along X and Z: the two Y faces lie in shared planes; overlap 0.7 x 1 x 0.8.
    b = box(center=(0.3, 0.0, 0.2))
    inter = 0.7 * 1.0 * 0.8
    assert box3d_iou(UNIT, b)[0, 0] == pytest.approx(inter / (2.0 - inter), abs=1e-12)


@pytest.mark.parametrize("angle_index", [6, 7, 8])
def test_cube_rotated_45_about_each_axis(angle_index):
    # Cross-section: unit square ∩ square rotated 45° = regular octagon of area 2(√2 - 1);
    # IoU = A / (2 - A) = 1/√2.
    b = UNIT.copy()
    b[angle_index] = 45.0
    assert box3d_intersection_volume(UNIT, b)[0, 0] == pytest.approx(OCTAGON, abs=1e-12)
    assert box3d_iou(UNIT, b)[0, 0] == pytest.approx(1.0 / np.sqrt(2.0), abs=1e-12)
    assert pytest.approx(1.0 / np.sqrt(2.0), abs=1e-15) == OCTAGON / (2.0 - OCTAGON)


def test_yaw45_shifted_along_y():
    # Same octagon prism, heights overlap 0.6 of 1: inter = 0.6 A, union = 2 - 0.6 A.
    b = box(center=(0.0, 0.4, 0.0), angles=(0.0, 45.0, 0.0))
    inter = 0.6 * OCTAGON
    assert box3d_iou(UNIT, b)[0, 0] == pytest.approx(inter / (2.0 - inter), abs=1e-12)
    assert bev_iou(UNIT, b)[0, 0] == pytest.approx(inter / (2.0 - inter), abs=1e-12)


def test_rotated_box_inside_larger_one():
    small = box(center=(0.3, -0.2, 0.1), size=(0.8, 0.5, 0.3), angles=(33.0, -71.0, 12.0))
    big = box(size=(4.0, 3.0, 5.0), angles=(5.0, 5.0, 5.0))
    expected = (0.8 * 0.5 * 0.3) / (4.0 * 3.0 * 5.0)
    assert box3d_iou(small, big)[0, 0] == pytest.approx(expected, rel=1e-12)
    assert box3d_iou(big, small)[0, 0] == pytest.approx(expected, rel=1e-12)


def test_large_coordinates():
    a = box(center=(1e4, -2e4, 3e4))
    b = box(center=(1e4 + 0.5, -2e4, 3e4))
    assert box3d_iou(a, b)[0, 0] == pytest.approx(1.0 / 3.0, abs=1e-9)


# --- degenerate input and shapes ----------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        box(size=(0.0, 1.0, 1.0)),
        box(size=(1.0, -1.0, 1.0)),
        box(size=(1.0, 1.0, np.nan)),
        box(size=(np.inf, 1.0, 1.0)),
        box(center=(np.nan, 0.0, 0.0)),
        box(center=(0.0, -np.inf, 0.0)),
        box(angles=(0.0, np.nan, 0.0)),
        box(size=(1e-200, 1e-200, 1e-200)),
        box(size=(1e200, 1e200, 1e200)),
    ],
)
def test_degenerate_boxes_give_zero(bad):
    others = np.stack([UNIT, bad, box(angles=(10, 20, 30))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn in (box3d_iou, box3d_intersection_volume, bev_iou):
            row = fn(bad, others)
            col = fn(others, bad)
            assert row.shape == (1, 3) and col.shape == (3, 1)
            assert np.all(row == 0.0) and np.all(col == 0.0)
        assert box3d_iou(others, others)[0, 2] > 0.0  # the valid boxes are unaffected


def test_shapes():
    boxes = random_boxes(np.random.default_rng(0), 4)
    for fn in (box3d_iou, box3d_intersection_volume, bev_iou):
        assert fn(UNIT, UNIT).shape == (1, 1)
        assert fn(boxes, boxes[:3]).shape == (4, 3)
        assert fn(boxes, np.zeros((0, 9))).shape == (4, 0)
        assert fn(np.zeros((0, 9)), boxes).shape == (0, 4)
        assert fn(np.zeros((0, 9)), np.zeros((0, 9))).shape == (0, 0)
        with pytest.raises(ValueError):
            fn(np.zeros((3, 7)), boxes)


# --- properties ---------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(boxes_st, boxes_st)
def test_symmetric_bounded(a, b):
    ab = box3d_iou(a, b)[0, 0]
    assert ab == pytest.approx(box3d_iou(b, a)[0, 0], abs=1e-7)  # see test_rigid_motion_...
    va, vb = np.prod(a[3:6]), np.prod(b[3:6])
    assert 0.0 <= ab <= min(va, vb) / max(va, vb) + 1e-12
    inter = box3d_intersection_volume(a, b)[0, 0]
    assert 0.0 <= inter <= min(va, vb) * (1 + 1e-12)


def test_matrix_symmetry():
    boxes = random_boxes(np.random.default_rng(1), 40)
    other = random_boxes(np.random.default_rng(2), 30)
    np.testing.assert_allclose(box3d_iou(boxes, other), box3d_iou(other, boxes).T, atol=1e-12)
    np.testing.assert_allclose(np.diag(box3d_iou(boxes, boxes)), 1.0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(boxes_st, boxes_st, st.integers(0, 2**31))
def test_rigid_motion_invariance(a, b, seed):
    T = rigid(seed)
    ta, tb = transform_boxes(a, T), transform_boxes(b, T)
    # Nearly coplanar faces are decided with a ~1e-8 relative tolerance, so allow 1e-7.
    assert box3d_iou(ta, tb)[0, 0] == pytest.approx(box3d_iou(a, b)[0, 0], abs=1e-7)


def aabb_iou(a: np.ndarray, b: np.ndarray) -> float:
    lo = np.maximum(a[:3] - a[3:6] / 2, b[:3] - b[3:6] / 2)
    hi = np.minimum(a[:3] + a[3:6] / 2, b[:3] + b[3:6] / 2)
    inter = float(np.prod(np.clip(hi - lo, 0.0, None)))
    return inter / (np.prod(a[3:6]) + np.prod(b[3:6]) - inter)


grid = st.integers(-4, 4).map(lambda k: k * 0.25)
grid_size = st.integers(1, 8).map(lambda k: k * 0.25)
aabb_st = st.tuples(grid, grid, grid, grid_size, grid_size, grid_size).map(
    lambda v: np.array([*v, 0.0, 0.0, 0.0])
)


@settings(max_examples=150, deadline=None)
@given(aabb_st, aabb_st, st.integers(0, 2**31))
def test_grid_aligned_boxes_with_shared_planes(a, b, seed):
    # Grid coordinates make shared / touching face planes common; a common rigid motion turns them
    # into arbitrarily oriented, rounding-perturbed coplanar faces.
    expected = aabb_iou(a, b)
    assert box3d_iou(a, b)[0, 0] == pytest.approx(expected, abs=1e-12)
    assert bev_iou(a, b)[0, 0] == pytest.approx(expected, abs=1e-12)
    T = rigid(seed)
    moved = box3d_iou(transform_boxes(a, T), transform_boxes(b, T))[0, 0]
    assert moved == pytest.approx(expected, abs=1e-9)


def test_agrees_with_scipy_reference():
    rng = np.random.default_rng(1234)
    a = random_boxes(rng, 300, spread=0.4)
    b = random_boxes(rng, 300, spread=0.4)
    got = np.diag(box3d_iou(a, b))
    ref = np.array([bench().reference_iou(x, y) for x, y in zip(a, b, strict=True)])
    assert np.mean(ref > 0) > 0.9  # mostly overlapping pairs
    np.testing.assert_allclose(got, ref, atol=1e-6, rtol=0)
    inter = np.diag(box3d_intersection_volume(a, b))
    ref_inter = [
        bench().reference_intersection_volume(x, y) for x, y in zip(a[:50], b[:50], strict=True)
    ]
    np.testing.assert_allclose(inter[:50], ref_inter, atol=1e-6, rtol=0)


def test_shared_plane_rotated_pairs_against_reference():
    # Yaw-rotated boxes standing on a common floor (shared bottom plane y = 0.5).
    rng = np.random.default_rng(7)
    for _ in range(20):
        ha, hb = rng.uniform(0.3, 2.0, 2)
        a = box((0.0, 0.5 - ha / 2, 0.0), (1.0, ha, 1.5), (0.0, rng.uniform(-180, 180), 0.0))
        b = box((*rng.uniform(-0.5, 0.5, 1), 0.5 - hb / 2, *rng.uniform(-0.5, 0.5, 1)),
                (1.2, hb, 0.7), (0.0, rng.uniform(-180, 180), 0.0))  # fmt: skip
        T = rigid(int(rng.integers(0, 1000)))
        ref = bench().reference_iou(a, b)
        assert box3d_iou(a, b)[0, 0] == pytest.approx(ref, abs=1e-9)
        assert box3d_iou(transform_boxes(a, T), transform_boxes(b, T))[0, 0] == pytest.approx(
            ref, abs=1e-9
        )


@settings(max_examples=150, deadline=None)
@given(yaw_boxes_st, yaw_boxes_st)
def test_bev_equals_3d_for_yaw_only_boxes(a, b):
    # Different arithmetic paths; nearly coplanar faces (tiny yaw) differ by up to ~1e-8.
    assert bev_iou(a, b)[0, 0] == pytest.approx(box3d_iou(a, b)[0, 0], abs=1e-7)


def test_bev_ignores_pitch_and_roll():
    a = box(center=(0.1, 0.2, 0.3), size=(1.0, 2.0, 3.0), angles=(0.0, 30.0, 0.0))
    b = box(center=(0.4, 0.0, 0.0), size=(2.0, 1.0, 1.0), angles=(0.0, -20.0, 0.0))
    tilted = b.copy()
    tilted[[6, 8]] = [25.0, -40.0]
    assert bev_iou(a, tilted)[0, 0] == bev_iou(a, b)[0, 0]


def test_volumes_consistent_with_boxes_module():
    boxes = random_boxes(np.random.default_rng(3), 10)
    np.testing.assert_allclose(
        np.diag(box3d_intersection_volume(boxes, boxes)), box3d_volume(boxes), rtol=1e-12
    )
