"""2D polygon helpers: hulls and areas against hand-computed cases."""

import numpy as np

from vst.geometry.polygons import convex_hull, polygon_area


def test_convex_hull_drops_interior_and_collinear_points():
    pts = np.array([[0, 0], [2, 0], [2, 2], [0, 2], [1, 1], [1, 0], [0.5, 1.5]], dtype=float)
    hull = convex_hull(pts)
    assert {tuple(p) for p in hull} == {(0, 0), (2, 0), (2, 2), (0, 2)}
    # counter-clockwise: positive signed area
    x, y = hull[:, 0], hull[:, 1]
    assert np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)) > 0


def test_polygon_area_l_shape_and_degenerate():
    l_shape = np.array([[0, 0], [4, 0], [4, 2], [2, 2], [2, 5], [0, 5]], dtype=float)
    assert polygon_area(l_shape) == 14.0
    assert polygon_area(l_shape[::-1]) == 14.0  # either orientation
    assert polygon_area(l_shape[:2]) == 0.0
    assert len(convex_hull(np.array([[1.0, 1.0], [1.0, 1.0]]))) == 1
