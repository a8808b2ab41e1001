"""The reward's fast paths against their exact reference paths.

* 3D IoU: the kernel skips a face clip when the face rectangle lies wholly inside (or outside)
  the clipping half-space by a margin (``_rect_side``); ``_matrix_3d(..., prune=False)`` clips by
  every plane. Both must give bit-identical matrices.
"""

from __future__ import annotations

import numpy as np
import pytest

from vst.geometry.iou import _matrix_3d, _rect_side, box3d_intersection_volume, box3d_iou

UNIT = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])


def _random_boxes(rng: np.random.Generator, n: int, spread: float) -> np.ndarray:
    return np.concatenate(
        [
            rng.uniform(-spread, spread, (n, 3)),
            rng.uniform(0.05, 2.0, (n, 3)),
            rng.uniform(-180.0, 180.0, (n, 3)),
        ],
        axis=1,
    )


def _both(a: np.ndarray, b: np.ndarray, want_iou: bool = True) -> tuple[np.ndarray, np.ndarray]:
    return _matrix_3d(a, b, want_iou, True), _matrix_3d(a, b, want_iou, False)


# --- 3D IoU: pruned clipping == clipping by every plane ------------------------------------------


def test_rect_side_hand_values():
    # rectangle |u| <= 1, |v| <= 2; the half-space u + v <= c reaches u + v = 3 at the corner
    assert _rect_side(1.0, 1.0, 1.0, 2.0, 3.5) == 1  # wholly inside
    assert _rect_side(1.0, 1.0, 1.0, 2.0, -3.5) == -1  # wholly outside
    assert _rect_side(1.0, 1.0, 1.0, 2.0, 0.0) == 0  # crossing
    assert _rect_side(1.0, 1.0, 1.0, 2.0, 3.0) == 0  # touching the corner: left to the clip
    assert _rect_side(-1.0, 0.0, 1.0, 2.0, 1.0 + 1e-6) == 1  # -u <= 1 + 1e-6 holds everywhere


@pytest.mark.parametrize("spread", [0.2, 0.6, 1.5])
@pytest.mark.parametrize("want_iou", [True, False])
def test_pruned_kernel_identical_on_random_boxes(spread, want_iou):
    rng = np.random.default_rng(int(spread * 10) + 7 * want_iou)
    a = _random_boxes(rng, 120, spread)
    b = _random_boxes(rng, 120, spread)
    fast, exact = _both(a, b, want_iou)
    assert np.mean(exact > 0) > 0.15  # plenty of overlapping pairs
    assert float(np.max(np.abs(fast - exact))) <= 1e-9
    assert np.array_equal(fast, exact)


def test_pruned_kernel_identical_on_axis_aligned_and_coplanar_boxes():
    # sizes and centres on a 0.1 grid, angles multiples of 90 degrees: many shared face planes
    rng = np.random.default_rng(3)
    a = _random_boxes(rng, 100, 0.5)
    b = _random_boxes(rng, 100, 0.5)
    for boxes in (a, b):
        boxes[:, :6] = np.maximum(np.round(boxes[:, :6], 1), [-9, -9, -9, 0.1, 0.1, 0.1])
        boxes[:, 6:] = np.round(boxes[:, 6:] / 90.0) * 90.0
    fast, exact = _both(a, b)
    assert np.mean(exact > 0) > 0.3
    assert np.array_equal(fast, exact)


@pytest.mark.parametrize(
    ("b", "iou"),
    [
        # disjoint: 3 m apart
        (np.array([3.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]), 0.0),
        # identical (rotated the same way)
        (UNIT, 1.0),
        # contained: the 0.5 m cube inside the unit cube, IoU 0.125
        (np.array([0.1, -0.1, 0.2, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0]), 0.125),
        # half overlap along x: intersection 0.5, union 1.5
        (np.array([0.5, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]), 1.0 / 3.0),
        # rotated 45 degrees about y (yaw): octagon 2 (sqrt 2 - 1) times height 1
        (
            np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 45.0, 0.0]),
            2 * (np.sqrt(2) - 1) / (2 - 2 * (np.sqrt(2) - 1)),
        ),
    ],
)
def test_pruned_kernel_hand_cases(b, iou):
    fast, exact = _both(UNIT, b)
    assert fast[0, 0] == pytest.approx(iou, abs=1e-12)
    assert np.array_equal(fast, exact)
    assert box3d_iou(UNIT, b)[0, 0] == fast[0, 0]  # the public function takes the pruned path


def test_contained_rotated_box_volume():
    # a 0.4 m cube turned 30/40/50 degrees sits well inside a 2 m cube: intersection = its volume
    small = np.array([0.1, 0.2, -0.1, 0.4, 0.4, 0.4, 30.0, 40.0, 50.0])
    big = np.array([0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 0.0, 0.0, 0.0])
    fast, exact = _both(small, big, want_iou=False)
    assert fast[0, 0] == pytest.approx(0.064, rel=1e-12)
    assert np.array_equal(fast, exact)
    assert box3d_intersection_volume(small, big)[0, 0] == fast[0, 0]


def test_empty_inputs_keep_their_shapes():
    assert box3d_iou(np.zeros((0, 9)), UNIT).shape == (0, 1)
    assert box3d_iou(np.stack([UNIT, UNIT]), np.zeros((0, 9))).shape == (2, 0)
