"""Hand-computed cases for the fixtures' analytic ray caster (vst.testing.raycast)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vst.testing.raycast import FLOOR, Plane, cast, look_at, pixel_rays, project

UNIT_CUBE = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]


def _one(origin, direction, **kw):
    t, index = cast(origin, np.array([direction], dtype=float), **kw)
    return float(t[0]), int(index[0])


def test_unit_cube_face_at_known_depth():
    # the face x = -0.5 is 2.5 m ahead of (-3, 0, 0)
    assert _one((-3.0, 0.0, 0.0), (1.0, 0.0, 0.0), boxes=[UNIT_CUBE]) == (2.5, 0)
    # t is in units of the direction's length
    assert _one((-3.0, 0.0, 0.0), (2.0, 0.0, 0.0), boxes=[UNIT_CUBE]) == (1.25, 0)
    # from above, through the top face z = 0.5, off-centre
    t, i = _one((0.2, -0.3, 4.0), (0.0, 0.0, -1.0), boxes=[UNIT_CUBE])
    assert (t, i) == (3.5, 0)
    # a slanted ray: enters the face y = -0.5 at x = 0.25 from (-0.75, -1.5, 0.1), t = 1
    t, i = _one((-0.75, -1.5, 0.1), (1.0, 1.0, 0.0), boxes=[UNIT_CUBE])
    assert t == pytest.approx(1.0) and i == 0


def test_face_axis():
    boxes = [UNIT_CUBE]
    d = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [0.0, 0.0, 1.0]])
    origins = [(-3.0, 0.1, 0.1), (0.1, -3.0, 0.1), (0.1, 0.1, 3.0), (0.1, 0.1, 3.0)]
    axes = [
        int(cast(o, d[k : k + 1], boxes, return_face_axis=True)[2][0])
        for k, o in enumerate(origins)
    ]
    assert axes == [0, 1, 2, -1]  # the last ray points away: no face
    _, _, face = cast((0.0, 0.0, 3.0), np.array([[0.0, 0.0, -1.0]]), [UNIT_CUBE], planes=[FLOOR],
                      return_face_axis=True)  # fmt: skip
    assert face.tolist() == [2]


def test_rotated_box():
    # 2 x 1 x 1, turned 90 degrees about Z (the 9th number): its long side now runs along Y
    box = [0.0, 0.0, 0.0, 2.0, 1.0, 1.0, 0.0, 0.0, 90.0]
    t, i = _one((-3.0, 0.0, 0.0), (1.0, 0.0, 0.0), boxes=[box])
    assert t == pytest.approx(2.5) and i == 0
    t, _ = _one((0.0, -3.0, 0.0), (0.0, 1.0, 0.0), boxes=[box])
    assert t == pytest.approx(2.0)
    # a unit cube turned 45 degrees: the face from (-sqrt2/2, 0) to (0, sqrt2/2) is the line
    # y = x + sqrt2/2; a ray along +X at y = 0.1 from x = -3 meets it at x = 0.1 - sqrt2/2
    cube45 = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 45.0]
    t, _ = _one((-3.0, 0.1, 0.0), (1.0, 0.0, 0.0), boxes=[cube45])
    assert t == pytest.approx(3.1 - math.sqrt(2.0) / 2.0)
    # pitched 90 degrees about X: the 1 x 2 x 1 box's local Y (2 long) now runs along world Z
    tall = [0.0, 0.0, 0.0, 1.0, 2.0, 1.0, 90.0, 0.0, 0.0]
    t, _ = _one((0.0, 0.0, 5.0), (0.0, 0.0, -1.0), boxes=[tall])
    assert t == pytest.approx(4.0)


def test_explicit_rotations_and_aabbs():
    R = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 degrees about Z
    t, _ = _one((0.0, -3.0, 0.0), (0.0, 1.0, 0.0), boxes=[[0, 0, 0, 2, 1, 1]], rotations=[R])
    assert t == pytest.approx(2.0)
    # an axis-aligned box by its corners, listed after the 9-DoF boxes
    aabb = ((1.0, -0.5, -0.5), (2.0, 0.5, 0.5))
    far = [5.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert _one((-3.0, 0.0, 0.0), (1.0, 0.0, 0.0), boxes=[far], aabbs=[aabb]) == (4.0, 1)
    with pytest.raises(ValueError):
        cast((0, 0, 0), np.ones((1, 3)), boxes=[UNIT_CUBE], rotations=np.zeros((2, 3, 3)))


def test_floor_plane():
    # from 2 m up, 45 degrees down: the floor is 2 m along the (1, 0, -1) direction's parameter
    assert _one((0.0, 0.0, 2.0), (1.0, 0.0, -1.0), planes=[FLOOR]) == (2.0, 0)
    # looking up or level: no hit
    assert _one((0.0, 0.0, 2.0), (1.0, 0.0, 1.0), planes=[FLOOR]) == (math.inf, -1)
    assert _one((0.0, 0.0, 2.0), (1.0, 0.0, 0.0), planes=[FLOOR]) == (math.inf, -1)
    # a plane z = -1.5 with a non-unit normal
    assert _one((0.0, 0.0, 0.0), (0.0, 1.0, -0.5), planes=[Plane((0, 0, 2), -3.0)]) == (3.0, 0)


def test_bounded_plane():
    wall = Plane((1.0, 0.0, 0.0), 4.5, lo=(-np.inf, -np.inf, 0.0), hi=(np.inf, np.inf, 2.6))
    assert _one((0.0, 0.0, 1.0), (1.0, 0.0, 0.2), planes=[wall]) == (4.5, 0)  # z = 1.9
    assert _one((0.0, 0.0, 1.0), (1.0, 0.0, 1.0), planes=[wall]) == (math.inf, -1)  # z = 5.5


def test_nearest_hit_ordering():
    near = [2.0, 0.0, 0.5, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    far = [6.0, 0.0, 0.5, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    o, d = (0.0, 0.0, 0.5), (1.0, 0.0, 0.0)
    wall = Plane((1.0, 0.0, 0.0), 10.0)
    # whatever the listing order, the nearest surface wins; indices: planes, then boxes
    assert _one(o, d, boxes=[far, near], planes=[wall]) == (1.5, 2)
    assert _one(o, d, boxes=[near, far], planes=[wall]) == (1.5, 1)
    assert _one(o, d, boxes=[far], planes=[wall]) == (5.5, 1)
    assert _one(o, d, planes=[wall]) == (10.0, 0)
    # the floor in front of a box: a steep ray meets the floor first
    t, i = _one((0.0, 0.0, 2.0), (1.0, 0.0, -2.0), boxes=[far], planes=[FLOOR])
    assert (t, i) == (1.0, 0)
    # a tie goes to the surface listed first
    assert _one(o, d, planes=[wall, Plane((2.0, 0.0, 0.0), 20.0)]) == (10.0, 0)


def test_no_hit_and_inside():
    t, i = cast((0.0, 0.0, 5.0), np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), [UNIT_CUBE],
                planes=[FLOOR])  # fmt: skip
    assert np.all(np.isinf(t)) and i.tolist() == [-1, -1]
    # a box behind the origin is not hit
    assert _one((3.0, 0.0, 0.0), (1.0, 0.0, 0.0), boxes=[UNIT_CUBE]) == (math.inf, -1)
    # a ray starting inside a box does not see it (but sees what lies beyond)
    assert _one((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), boxes=[UNIT_CUBE]) == (math.inf, -1)
    assert _one((0.0, 0.0, 0.2), (0.0, 0.0, -1.0), boxes=[UNIT_CUBE], planes=[FLOOR]) == (0.2, 0)
    t, i = cast((0, 0, 0), np.tile([1.0, 0.0, 0.0], (2, 3, 1)))
    assert t.shape == i.shape == (2, 3) and np.all(i == -1)


def test_look_at_axes():
    T = look_at([0.0, 0.0, 1.0], [1.0, 0.0, 1.0])
    # looking along +X in a Z-up world: right = -Y, down = -Z, forward = +X
    np.testing.assert_allclose(T[:3, 0], [0.0, -1.0, 0.0])
    np.testing.assert_allclose(T[:3, 1], [0.0, 0.0, -1.0])
    np.testing.assert_allclose(T[:3, 2], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(T[:3, 3], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(T[3], [0.0, 0.0, 0.0, 1.0])
    # 45 degrees down from 2 m: forward (1, 0, -1)/sqrt2, down (-1, 0, -1)/sqrt2, level X
    T = look_at([0.0, 0.0, 2.0], [2.0, 0.0, 0.0])
    s = 1.0 / math.sqrt(2.0)
    np.testing.assert_allclose(T[:3, :3], [[0.0, -s, s], [-1.0, 0.0, 0.0], [0.0, -s, -s]])
    assert np.linalg.det(T[:3, :3]) == pytest.approx(1.0)
    # another up vector: Y up, looking along -Z: right = z x up = +X, down = z x right = -Y
    T = look_at([0.0, 0.0, 0.0], [0.0, 0.0, -1.0], up=(0.0, 1.0, 0.0))
    np.testing.assert_allclose(T[:3, 0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(T[:3, 1], [0.0, -1.0, 0.0])


def test_pixel_rays_are_z_depth():
    K = np.array([[100.0, 0.0, 1.5], [0.0, 50.0, 0.5], [0.0, 0.0, 1.0]])
    origin, d = pixel_rays(K, 4, 2, np.eye(4))
    assert d.shape == (2, 4, 3) and origin.tolist() == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(d[0, 0], [-0.015, -0.01, 1.0])
    np.testing.assert_allclose(d[1, 3], [0.015, 0.01, 1.0])
    # a posed camera facing a plane 5 m ahead: every pixel's t is the z-depth 5
    T = look_at([1.0, 2.0, 1.5], [4.0, 6.0, 0.5])
    origin, d = pixel_rays(K, 4, 2, T)
    np.testing.assert_allclose(origin, [1.0, 2.0, 1.5])
    np.testing.assert_allclose(d @ T[:3, 2], 1.0)  # camera-Z component 1
    forward = T[:3, 2]
    plane = Plane(forward, float(forward @ origin) + 5.0)
    t, i = cast(origin, d, planes=[plane])
    np.testing.assert_allclose(t, 5.0)
    assert t.shape == (2, 4) and np.all(i == 0)
    # and the hit points project back to their own pixels
    pts = origin + d * t[..., None]
    cam = (pts.reshape(-1, 3) - T[:3, 3]) @ T[:3, :3]
    u, v = np.meshgrid(np.arange(4.0), np.arange(2.0))
    np.testing.assert_allclose(project(K, cam), np.stack([u.ravel(), v.ravel()], 1), atol=1e-9)


def test_depth_of_a_box_seen_by_a_camera():
    # camera at (-4, 0, 0.5) looking along +X at a unit cube standing at the origin: the
    # centre pixel sees the face x = -0.5 at z-depth 3.5; a pixel off to the side the floor
    K = np.array([[10.0, 0.0, 2.0], [0.0, 10.0, 2.0], [0.0, 0.0, 1.0]])
    T = look_at([-4.0, 0.0, 0.5], [0.0, 0.0, 0.5])
    cube = [0.0, 0.0, 0.5, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    origin, d = pixel_rays(K, 5, 5, T)
    t, i = cast(origin, d, [cube], planes=[FLOOR])
    assert (t[2, 2], i[2, 2]) == (3.5, 1)
    # pixel (u=2, v=4): 0.2 down per unit depth, from 0.5 m up -> the floor at depth 2.5
    assert (t[4, 2], i[4, 2]) == (pytest.approx(2.5), 0)
    assert i[0, 2] == -1  # above the horizon: nothing
