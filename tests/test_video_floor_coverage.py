"""Floor coverage of a clip (vst.scenes.floor_coverage): grid cells counted by hand
for overhead cameras that each see a known floor rectangle, occlusion through the depth map,
frames and pixels without depth, and floor under furniture (depth ray-cast from the boxes)."""

from __future__ import annotations

import numpy as np
import pytest

from vst.geometry.polygons import points_in_polygon
from vst.scenes.floor_coverage import clip_floor_coverage, floor_grid
from vst.scenes.model import Frame, Room
from vst.testing.raycast import FLOOR, cast, pixel_rays

SQUARE = Room([[-2, -2], [2, -2], [2, 2], [-2, 2]])
"""4 x 4 m: 1600 cells of 10 cm."""
L_ROOM = Room([[-4, -4], [4, -4], [4, 1], [1, 1], [1, 4], [-4, 4]])
"""8 x 8 m minus the 3 x 3 m corner x > 1, y > 1: 5500 cells."""

DOWN = np.array([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]])
K = np.array([[60.0, 0, 19.5], [0, 60.0, 19.5], [0, 0, 1]])
"""40 x 40 px looking straight down from 3 m: the frame shows the 2 x 2 m square below it."""


def overhead(x: float, y: float, height: float = 3.0) -> Frame:
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = DOWN, [x, y, height]
    return Frame(id=f"f{x}_{y}", K=K, width=40, height=40, cam_to_world=pose)


def flat(value: float = 3.0, shape=(40, 40)) -> np.ndarray:
    return np.full(shape, value, np.float32)


def test_points_in_polygon_non_convex():
    pts = np.array([[0, 0], [2, 0], [0, 2], [2, 2], [3.9, 0.9], [0.9, 3.9], [5, 0], [-4.5, 0]])
    got = points_in_polygon(L_ROOM.floor_polygon, pts)
    assert got.tolist() == [True, True, True, False, True, True, False, False]
    assert points_in_polygon(L_ROOM.floor_polygon[::-1], pts).tolist() == got.tolist()


def test_floor_grid_counts_cells_inside():
    assert len(floor_grid(SQUARE)) == 1600
    assert len(floor_grid(L_ROOM)) == 5500
    assert len(floor_grid(Room([[0, 0], [1, 0]]))) == 0  # degenerate polygon
    big = Room([[0, 0], [100, 0], [100, 100], [0, 100]])  # 10^6 cells of 10 cm: coarsened
    assert len(floor_grid(big)) == 125 * 125  # 0.1 m doubled three times: 0.8 m cells


def test_half_and_full_floor():
    frames = [overhead(1, -1), overhead(1, 1)]  # the east half, x in [0, 2]
    assert clip_floor_coverage(SQUARE, np.zeros((0, 9)), frames, [flat(), flat()]) == 0.5
    frames += [overhead(-1, -1), overhead(-1, 1)]
    assert clip_floor_coverage(SQUARE, np.zeros((0, 9)), frames, [flat()] * 4) == 1.0


def test_occluded_cells_are_not_seen():
    # something 1 m below the camera hides the left image half (x in [0, 1]) of this frame
    depth = flat()
    depth[:, :20] = 2.0
    cover = clip_floor_coverage(SQUARE, np.zeros((0, 9)), [overhead(1, 0)], [depth])
    assert cover == pytest.approx(200 / 1600)  # only x in [1, 2], y in [-1, 1]
    # within tolerance (depth noise of 5 cm) the floor still counts
    assert clip_floor_coverage(SQUARE, np.zeros((0, 9)), [overhead(1, 0)], [flat(2.95)]) == 0.25


def test_frames_and_pixels_without_depth_see_nothing():
    frames = [overhead(1, -1), overhead(1, 1)]
    assert clip_floor_coverage(SQUARE, np.zeros((0, 9)), frames, [None, None]) == 0.0
    assert clip_floor_coverage(SQUARE, np.zeros((0, 9)), frames, [None, flat()]) == 0.25
    unknown = flat()
    unknown[20:, :] = 0.0  # lower image half (world y < 1 for the frame at y = 1): no depth
    assert clip_floor_coverage(SQUARE, np.zeros((0, 9)), frames[1:], [unknown]) == 0.125


def test_depth_at_another_resolution_is_scaled():
    assert (
        clip_floor_coverage(SQUARE, np.zeros((0, 9)), [overhead(1, 1)], [flat(3, (20, 20))]) == 0.25
    )


def _rendered(frame: Frame, boxes: np.ndarray) -> np.ndarray:
    origin, dirs = pixel_rays(frame.K, frame.width, frame.height, frame.cam_to_world)
    t, _ = cast(origin, dirs, boxes, planes=[FLOOR])
    return np.where(np.isfinite(t), t, 0.0).astype(np.float32)


def test_floor_under_standing_furniture_counts_but_not_under_a_hovering_shelf():
    frames = [overhead(x, y, 6.0) for x in (-1, 1) for y in (-1, 1)]  # each sees 4 x 4 m
    bed = np.array([[0.5, 0.5, 0.3, 1.0, 1.0, 0.6, 0, 0, 0]])  # on the floor: 100 cells
    depths = [_rendered(f, bed) for f in frames]
    assert clip_floor_coverage(SQUARE, bed, frames, depths) == 1.0
    # one camera 6 m above (0.5, 0.5) sees x, y in [-1.5, 2.5] (35 x 35 cells of the room); a
    # 0.6 m shelf 3-3.2 m up, centred below it, hides the floor twice its size (similar
    # triangles: x in [-0.1, 1.1], 12 x 12 cells)
    shelf = np.array([[0.5, 0.5, 3.1, 0.6, 0.6, 0.2, 0, 0, 0]])
    frame = overhead(0.5, 0.5, 6.0)
    cover = clip_floor_coverage(SQUARE, shelf, [frame], [_rendered(frame, shelf)])
    assert cover == pytest.approx((35 * 35 - 12 * 12) / 1600)
