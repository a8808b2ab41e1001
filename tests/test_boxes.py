"""9-DoF boxes: corner order, Euler convention, frame changes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from vst.geometry.boxes import (
    BOX_EDGES,
    Box3D,
    as_boxes,
    box3d_corners,
    box3d_volume,
    euler_to_matrix,
    matrix_to_euler,
    transform_boxes,
)

angles = st.floats(-179.0, 179.0)
boxes_st = st.tuples(
    st.floats(-5, 5),
    st.floats(-5, 5),
    st.floats(-5, 5),
    st.floats(0.05, 3),
    st.floats(0.05, 3),
    st.floats(0.05, 3),
    angles,
    st.floats(-89.0, 89.0),
    angles,
).map(lambda t: np.array(t, dtype=np.float64))


def test_axis_aligned_corners_in_documented_order():
    c = box3d_corners([1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 0, 0, 0])[0]
    expected = np.array(
        [
            [0, 0, 0],
            [2, 0, 0],
            [2, 4, 0],
            [0, 4, 0],
            [0, 0, 6],
            [2, 0, 6],
            [2, 4, 6],
            [0, 4, 6],
        ],
        dtype=float,
    )
    np.testing.assert_allclose(c, expected)
    # every edge is parallel to one axis and has the size along it
    lengths = np.linalg.norm(c[BOX_EDGES[:, 0]] - c[BOX_EDGES[:, 1]], axis=1)
    np.testing.assert_allclose(sorted(lengths), [2] * 4 + [4] * 4 + [6] * 4)


def test_yaw_is_rotation_about_camera_y():
    # yaw 90: local +X (front) turns to camera -Z; Rotation.from_euler('xyz', [0, 90, 0])
    c = box3d_corners([0, 0, 5, 2.0, 1.0, 1.0, 0, 90, 0])[0]
    # the local +X face (corners 1, 2, 5, 6) now sits at z = 5 - 1
    np.testing.assert_allclose(c[[1, 2, 5, 6], 2], 4.0, atol=1e-12)
    np.testing.assert_allclose(c[[0, 3, 4, 7], 2], 6.0, atol=1e-12)


def test_euler_order_is_extrinsic_xyz():
    p, y, r = 10.0, 20.0, 30.0
    rx = Rotation.from_euler("x", p, degrees=True).as_matrix()
    ry = Rotation.from_euler("y", y, degrees=True).as_matrix()
    rz = Rotation.from_euler("z", r, degrees=True).as_matrix()
    np.testing.assert_allclose(euler_to_matrix(np.array([p, y, r])), rz @ ry @ rx, atol=1e-12)
    np.testing.assert_allclose(matrix_to_euler(rz @ ry @ rx), [p, y, r], atol=1e-9)


def test_gimbal_lock_reproduces_matrix_without_warning(recwarn):
    R = euler_to_matrix(np.array([30.0, 90.0, 10.0]))
    back = euler_to_matrix(matrix_to_euler(R))
    np.testing.assert_allclose(back, R, atol=1e-9)
    assert not [w for w in recwarn if "Gimbal" in str(w.message)]


@settings(max_examples=100, deadline=None)
@given(boxes_st)
def test_euler_round_trip_preserves_corners(box):
    R = euler_to_matrix(box[6:9])
    again = np.concatenate([box[:6], matrix_to_euler(R)])
    np.testing.assert_allclose(box3d_corners(again), box3d_corners(box), atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(boxes_st, st.tuples(angles, st.floats(-89, 89), angles), st.tuples(*[st.floats(-3, 3)] * 3))
def test_transform_boxes_moves_corners_rigidly(box, rot, trans):
    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("xyz", rot, degrees=True).as_matrix()
    T[:3, 3] = trans
    moved = transform_boxes(box, T)
    expected = box3d_corners(box)[0] @ T[:3, :3].T + T[:3, 3]
    # same corners as a set (the canonical angles may start the corner order elsewhere)
    np.testing.assert_allclose(
        np.sort(box3d_corners(moved)[0].round(6), axis=0),
        np.sort(expected.round(6), axis=0),
        atol=2e-6,
    )
    np.testing.assert_allclose(moved[0, 3:6], box[3:6])
    # and back again
    back = transform_boxes(moved, np.linalg.inv(T))
    np.testing.assert_allclose(
        np.sort(box3d_corners(back)[0].round(6), axis=0),
        np.sort(box3d_corners(box)[0].round(6), axis=0),
        atol=2e-6,
    )


def test_transform_rejects_non_rigid():
    T = np.diag([2.0, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="proper rotation"):
        transform_boxes([0, 0, 0, 1, 1, 1, 0, 0, 0], T)
    with pytest.raises(ValueError, match="4x4"):
        transform_boxes([0, 0, 0, 1, 1, 1, 0, 0, 0], np.eye(3))


def test_shapes_and_volume():
    with pytest.raises(ValueError, match=r"\(N, 9\)"):
        as_boxes(np.zeros((2, 7)))
    vols = box3d_volume(
        [
            [0, 0, 0, 1, 2, 3, 0, 0, 0],
            [0, 0, 0, 1, 0, 3, 0, 0, 0],
            [0, 0, 0, 1, np.nan, 3, 0, 0, 0],
            [0, 0, 0, -1, -2, 3, 0, 0, 0],
        ]
    )
    np.testing.assert_array_equal(vols, [6.0, 0.0, 0.0, 0.0])
    assert box3d_corners(np.zeros((0, 9))).shape == (0, 8, 3)


def test_box3d_dataclass():
    b = Box3D(center=(1, 2, 3), size=(1, 2, 3), angles=(0, 45, 0))
    np.testing.assert_allclose(b.to_array(), [1, 2, 3, 1, 2, 3, 0, 45, 0])
    assert Box3D.from_array(b.to_array()) == b
    assert b.volume == pytest.approx(6.0)
    np.testing.assert_allclose(b.corners(), box3d_corners(b.to_array())[0])
    np.testing.assert_allclose(b.rotation @ b.rotation.T, np.eye(3), atol=1e-12)


def test_package_exports_resolve():
    import vst.geometry as g

    for name in g.__all__:
        assert getattr(g, name) is not None, name
    with pytest.raises(AttributeError):
        g.no_such_name  # noqa: B018


def test_reorient_box_axes_keeps_corners():
    from vst.geometry.boxes import ZUP_TO_CAMERA_AXES, reorient_box_axes

    box = np.array([1.0, 2.0, 3.0, 0.4, 0.6, 1.8, 10.0, 20.0, 30.0])
    new = reorient_box_axes(box, ZUP_TO_CAMERA_AXES)[0]
    np.testing.assert_allclose(new[3:6], [0.4, 1.8, 0.6])  # sizes follow the axes: X, Z, Y
    a = np.unique(box3d_corners(box)[0].round(9), axis=0)
    b = np.unique(box3d_corners(new)[0].round(9), axis=0)
    np.testing.assert_allclose(a, b)
    with pytest.raises(ValueError, match="signed permutation"):
        reorient_box_axes(box, np.diag([1.0, 1.0, -1.0]))


def test_canonical_euler_prefers_level_spelling():
    from vst.geometry.boxes import canonicalize_boxes

    # (180, 7, 180) = Rz(180) Ry(7) Rx(180) = Ry(173): with a half-turn about its own Y the
    # same box has yaw -7
    box = np.array([0.0, 0.0, 3.0, 0.6, 0.3, 0.5, 180.0, 7.0, 180.0])
    canon = canonicalize_boxes(box)[0]
    np.testing.assert_allclose(canon[6:9], [0.0, -7.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(canon[:6], box[:6])
    a = np.unique(box3d_corners(box)[0].round(9), axis=0)
    b = np.unique(box3d_corners(canon)[0].round(9), axis=0)
    np.testing.assert_allclose(a, b)
    # an upright box facing backwards (yaw 170) becomes yaw -10
    np.testing.assert_allclose(
        canonicalize_boxes([0, 0, 3, 1, 1, 1, 0, 170, 0])[0, 6:9], [0, -10, 0], atol=1e-9
    )


@settings(max_examples=100, deadline=None)
@given(boxes_st)
def test_canonical_boxes_keep_corners(box):
    from vst.geometry.boxes import canonicalize_boxes

    canon = canonicalize_boxes(box)[0]
    a = np.sort(box3d_corners(box)[0].round(6), axis=0)
    b = np.sort(box3d_corners(canon)[0].round(6), axis=0)
    np.testing.assert_allclose(a, b, atol=2e-6)
    assert abs(canon[6]) + abs(canon[8]) <= abs(box[6]) + abs(box[8]) + 1e-6


def test_closed_form_euler_matches_scipy():
    angles = np.random.default_rng(0).uniform(-180, 180, size=(500, 3))
    expected = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    np.testing.assert_allclose(euler_to_matrix(angles), expected, atol=1e-12)
    np.testing.assert_allclose(euler_to_matrix(angles[0]), expected[0], atol=1e-12)
    assert euler_to_matrix(np.zeros((0, 3))).shape == (0, 3, 3)
