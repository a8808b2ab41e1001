"""Tests for vst.geometry.conventions: dataset box formats -> canonical 9-DoF boxes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from vst.geometry.boxes import box3d_corners, euler_to_matrix
from vst.geometry.conventions import (
    from_aabb,
    from_corners,
    from_embodiedscan,
    from_omni3d,
    from_vsibench,
    to_embodiedscan,
    to_omni3d,
)

VSIBENCH_META = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "vsibench-meta"
VSIBENCH_BOX_COUNT = 3197


def rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=np.float64)


def rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=np.float64)


def rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float64)


def corners(box: np.ndarray) -> np.ndarray:
    return box3d_corners(box)[0]


def assert_same_corners(a: np.ndarray, b: np.ndarray, atol: float) -> None:
    """The two (8, 3) corner sets are equal up to order (converters return canonical Euler
    angles, whose corner order may start at another corner)."""
    d = np.linalg.norm(np.asarray(a)[:, None, :] - np.asarray(b)[None, :, :], axis=-1)
    assert d.min(axis=1).max() <= atol and d.min(axis=0).max() <= atol, d.min(axis=1)


def assert_same_orientation(R: np.ndarray, expected: np.ndarray, atol: float) -> None:
    """R equals expected up to a half-turn about a local axis (the box's symmetries)."""
    flips = [np.diag(d) for d in ([1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1])]
    assert min(np.abs(R - expected @ f).max() for f in flips) <= atol


# ---------------------------------------------------------------- strategies

coord = st.floats(-50, 50, allow_nan=False)
size = st.floats(0.01, 20, allow_nan=False)
angle = st.floats(-180, 180, allow_nan=False)
canonical_box = st.tuples(coord, coord, coord, size, size, size, angle, angle, angle).map(
    lambda t: np.array(t, dtype=np.float64)
)


# ---------------------------------------------------------------- hand cases


def test_from_aabb_hand_case() -> None:
    box = from_aabb([0, 0, 0], [2, 4, 6])
    assert box.dtype == np.float64 and box.shape == (9,)
    np.testing.assert_allclose(box, [1, 2, 3, 2, 4, 6, 0, 0, 0])


def test_from_omni3d_identity_swaps_w_and_l() -> None:
    box = from_omni3d([0.5, -0.2, 3.0], [1.0, 2.0, 3.0], np.eye(3))
    assert box.dtype == np.float64 and box.shape == (9,)
    np.testing.assert_allclose(box[:6], [0.5, -0.2, 3.0, 3.0, 2.0, 1.0])
    np.testing.assert_allclose(box[6:], 0.0, atol=1e-12)


def test_yaw_90_by_hand() -> None:
    # Yaw 90 deg about camera Y: local X -> (0, 0, -1), local Y -> Y, local Z -> (1, 0, 0).
    R = np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], dtype=np.float64)
    # Omni3D [w, h, l] = [4, 1, 2]: l = 2 along local X (frame Z), w = 4 along local Z (frame X).
    box = from_omni3d([0, 0, 5], [4, 1, 2], R)
    np.testing.assert_allclose(box, [0, 0, 5, 2, 1, 4, 0, 90, 0], atol=1e-9)
    c = corners(box)
    np.testing.assert_allclose(c.min(0), [-2, -0.5, 4], atol=1e-12)
    np.testing.assert_allclose(c.max(0), [2, 0.5, 6], atol=1e-12)
    # Corner 1 is local (+, -, -) * half sizes = (1, -0.5, -2) -> frame (-2, -0.5, -1) + centre.
    np.testing.assert_allclose(c[1], [-2, -0.5, 4], atol=1e-12)
    # The same box from VSI-Bench rows (local X, Y, Z axes in the frame).
    vsi = from_vsibench([0, 0, 5], [2, 1, 4], [0, 0, -1, 0, 1, 0, 1, 0, 0])
    assert_same_corners(corners(vsi), c, atol=1e-12)


def test_embodiedscan_alpha_90_by_hand() -> None:
    # alpha rotates about world Z: local X -> world Y, local Y -> world -X.
    box = from_embodiedscan([1, 2, 3, 1, 2, 3, math.pi / 2, 0, 0])
    np.testing.assert_allclose(box, [1, 2, 3, 1, 2, 3, 0, 0, 90], atol=1e-9)
    c = corners(box)
    np.testing.assert_allclose(c.max(0) - c.min(0), [2, 1, 3], atol=1e-12)


def test_embodiedscan_beta_is_about_x_after_z() -> None:
    # alpha = 90 about Z then beta = 90 about the new X (= world Y): local Y -> world Z.
    box = from_embodiedscan([0, 0, 0, 1, 2, 3, math.pi / 2, math.pi / 2, 0])
    R = euler_to_matrix(box[6:9])
    np.testing.assert_allclose(R, rot_z(math.pi / 2) @ rot_x(math.pi / 2), atol=1e-12)
    np.testing.assert_allclose(R[:, 1], [0, 0, 1], atol=1e-12)


def test_vsibench_left_handed_axes_keep_corners() -> None:
    axes = np.eye(3)
    axes[2] = -axes[2]  # det = -1
    box = from_vsibench([1, 1, 1], [1, 2, 3], axes.ravel())
    c = corners(box)
    np.testing.assert_allclose(c.min(0), [0.5, 0.0, -0.5], atol=1e-12)
    np.testing.assert_allclose(c.max(0), [1.5, 2.0, 2.5], atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(euler_to_matrix(box[6:9])), 1.0)


def test_from_corners_hand_case() -> None:
    # vst corner order, written out by hand: -Z face round, then +Z face round.
    signs = np.array(
        [
            [-1, -1, -1],
            [1, -1, -1],
            [1, 1, -1],
            [-1, 1, -1],
            [-1, -1, 1],
            [1, -1, 1],
            [1, 1, 1],
            [-1, 1, 1],
        ],
        dtype=np.float64,
    )
    pts = signs * [1, 2, 3] + [10, 0, 0]
    np.testing.assert_allclose(from_corners(pts), [10, 0, 0, 2, 4, 6, 0, 0, 0], atol=1e-12)


def test_from_corners_flat_box() -> None:
    box = np.array([0, 1, 2, 1.0, 0.0, 2.0, 10, 20, 30])
    assert_same_corners(corners(from_corners(corners(box))), corners(box), atol=1e-9)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: from_aabb([0, 0], [1, 1, 1]), "min"),
        (lambda: from_aabb([0, 0, 0], [1, np.nan, 1]), "max"),
        (lambda: from_aabb([0, 0, 0], [1, -1, 1]), "max"),
        (lambda: from_omni3d([0, 0, 1], [1, 1, 1], np.diag([1.0, 1.0, 2.0])), "R_cam"),
        (lambda: from_omni3d([0, 0, 1], [1, 1, 1], np.diag([1.0, 1.0, -1.0])), "R_cam"),
        (lambda: from_omni3d([0, 0, 1], [1, 1, 1], np.eye(4)), "R_cam"),
        (lambda: from_omni3d([0, 0, np.inf], [1, 1, 1], np.eye(3)), "center_cam"),
        (lambda: from_omni3d([0, 0, 1], [1, -1, 1], np.eye(3)), "dimensions"),
        (lambda: from_embodiedscan([0] * 8), "box9"),
        (lambda: from_embodiedscan([0, 0, 0, 1, 1, 1, 0, np.nan, 0]), "box9"),
        (lambda: from_vsibench([0, 0, 0], [1, 1, 1], [1, 0, 0, 0, 1, 0]), "normalized_axes"),
        (
            lambda: from_vsibench([0, 0, 0], [1, 1, 1], [1, 0, 0, 1, 0, 0, 0, 0, 1]),
            "normalized_axes",
        ),
        (lambda: from_vsibench([0, 0, 0], [1, 1], np.eye(3)), "axes_lengths"),
        (lambda: from_vsibench([0, 0], [1, 1, 1], np.eye(3)), "centroid"),
        (lambda: from_corners(np.zeros((4, 3))), "corners"),
        (lambda: from_corners(np.full((8, 3), np.nan)), "corners"),
        (lambda: to_omni3d([0, 0, 0]), "box"),
    ],
)
def test_bad_arguments_raise_naming_them(call, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        call()


def test_from_corners_rejects_non_boxes() -> None:
    good = corners(np.array([1, 2, 3, 1, 2, 3, 10, 20, 30], dtype=np.float64))
    skewed = good.copy()
    skewed[6] += [0.05, 0.0, 0.0]
    with pytest.raises(ValueError, match="not a box"):
        from_corners(skewed)
    shuffled = good[[0, 2, 1, 3, 4, 5, 6, 7]]
    with pytest.raises(ValueError, match="not a box"):
        from_corners(shuffled)
    mirrored = good[[4, 5, 6, 7, 0, 1, 2, 3]]  # swaps the Z faces: a left-handed order
    with pytest.raises(ValueError, match="mirrored"):
        from_corners(mirrored)
    # A tiny perturbation within tolerance is accepted.
    assert_same_corners(corners(from_corners(good + 1e-7)), good + 1e-7, atol=1e-6)


# ---------------------------------------------------------------- round trips


@settings(max_examples=200, deadline=None)
@given(canonical_box)
def test_corners_round_trip(box: np.ndarray) -> None:
    c = corners(box)
    back = from_corners(c)
    assert back.dtype == np.float64 and back.shape == (9,)
    assert_same_corners(corners(back), c, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(canonical_box)
def test_omni3d_round_trip(box: np.ndarray) -> None:
    center, dims, R = to_omni3d(box)
    np.testing.assert_allclose(dims, box[[5, 4, 3]])
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert_same_corners(corners(from_omni3d(center, dims, R)), corners(box), atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(canonical_box)
def test_embodiedscan_round_trip(box: np.ndarray) -> None:
    es = to_embodiedscan(box)
    np.testing.assert_allclose(es[:6], box[:6])
    assert np.all(np.abs(es[6:]) <= math.pi + 1e-12)
    assert_same_corners(corners(from_embodiedscan(es)), corners(box), atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(-math.pi, math.pi), st.floats(-math.pi / 2, math.pi / 2), st.floats(-math.pi, math.pi)
)
def test_embodiedscan_rotation_is_rz_rx_ry(alpha: float, beta: float, gamma: float) -> None:
    expected = (
        rot_z(alpha) @ rot_x(beta) @ rot_y(gamma)
    )  # pytorch3d euler_angles_to_matrix(..., "ZXY")
    np.testing.assert_allclose(
        Rotation.from_euler("ZXY", [alpha, beta, gamma]).as_matrix(), expected, atol=1e-12
    )
    box = from_embodiedscan([1.0, -2.0, 0.5, 0.3, 0.7, 1.9, alpha, beta, gamma])
    assert_same_orientation(euler_to_matrix(box[6:9]), expected, atol=1e-9)
    local = np.array([0.15, -0.35, 0.95])  # the (+, -, +) corner
    corner = np.array([1.0, -2.0, 0.5]) + expected @ local
    assert np.linalg.norm(corners(box) - corner, axis=1).min() <= 1e-9


@settings(max_examples=100, deadline=None)
@given(canonical_box)
def test_vsibench_matches_rotation_columns(box: np.ndarray) -> None:
    R = euler_to_matrix(box[6:9])
    got = from_vsibench(box[:3], box[3:6], R.T.ravel())  # rows = the box's local axes
    assert_same_corners(corners(got), corners(box), atol=1e-9)


# ---------------------------------------------------------------- real data


def _vsibench_boxes() -> list[tuple[str, dict]]:
    out = []
    for path in sorted(VSIBENCH_META.glob("*_meta_info_val.json")):
        scenes = json.loads(path.read_text())
        for scene_id, scene in scenes.items():
            for category, boxes in scene["object_bbox"].items():
                out.extend((f"{path.name}:{scene_id}:{category}", b) for b in boxes)
    return out


@pytest.mark.skipif(
    not VSIBENCH_META.is_dir(), reason=f"VSI-Bench metadata absent: {VSIBENCH_META}"
)
def test_vsibench_real_boxes_reproduce_min_max() -> None:
    items = _vsibench_boxes()
    assert len(items) == VSIBENCH_BOX_COUNT
    worst, worst_at = 0.0, ""
    for where, b in items:
        box = from_vsibench(b["centroid"], b["axesLengths"], b["normalizedAxes"])
        assert box.dtype == np.float64 and box.shape == (9,)
        c = corners(box)
        err = max(
            float(np.max(np.abs(c.min(0) - np.asarray(b["min"])))),
            float(np.max(np.abs(c.max(0) - np.asarray(b["max"])))),
        )
        if err > worst:
            worst, worst_at = err, where
    assert worst <= 1e-6, f"worst min/max error {worst:.3g} m at {worst_at}"
