"""Tests for vst.geometry.bev: the BEV image is oriented right, readable and saved."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vst.geometry.bev import (
    display_labels,
    footprint,
    plane_coords,
    render_bev,
    render_bev_with_layout,
)
from vst.geometry.cameras import Intrinsics, make_pose, pan_tilt_roll_to_rotation

RED, BLUE = "#ff0000", "#0000ff"
FILL_ALPHA = 0.30  # footprint fill opacity used by the renderer


def _fill_rgb(hex_color: str) -> np.ndarray:
    rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
    return FILL_ALPHA * rgb + (1 - FILL_ALPHA) * 255.0


def _centroid_of_color(
    img: Image.Image, rgb: np.ndarray, area: tuple[float, ...], tol: float = 12.0
) -> np.ndarray:
    """(col, row) centroid of the pixels within ``tol`` of ``rgb`` inside the plot ``area``
    (col0, row0, col1, row1); fails if there are few."""
    arr = np.asarray(img.convert("RGB"), dtype=float)
    hit = np.all(np.abs(arr - rgb) <= tol, axis=-1)
    c0, r0, c1, r1 = (round(v) for v in area)
    inside = np.zeros_like(hit)
    inside[r0:r1, c0:c1] = True
    hit &= inside
    rows, cols = np.nonzero(hit)
    assert len(rows) > 100, f"colour {rgb} found in only {len(rows)} pixels"
    return np.array([cols.mean(), rows.mean()])


def _two_boxes(frame: str) -> np.ndarray:
    if frame == "camera":  # x right, z forward; y (down) must not matter
        right_far = [2.0, 0.7, 4.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
        left_near = [-2.0, -0.4, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    else:  # world z up: x right, y north; z (height) must not matter
        right_far = [2.0, 4.0, 0.5, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
        left_near = [-2.0, 1.0, 3.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    return np.array([right_far, left_near])


def test_png_written_size_and_not_blank(tmp_path: Path) -> None:
    boxes = np.array(
        [
            [0.0, 0.5, 3.0, 1.2, 0.8, 2.0, 0, 30, 0],
            [-1.2, 0.8, 2.5, 0.5, 0.9, 0.5, 0, 90, 0],
            [1.3, 0.8, 3.6, 0.5, 0.9, 0.5, 0, -120, 0],
            [2.5, 0.0, 5.5, 0.6, 2.0, 1.6, 0, 0, 0],
        ]
    )
    cams = [np.eye(4), make_pose(pan_tilt_roll_to_rotation(-30, 0, 0), [1.0, 0.0, 0.5])]
    out = tmp_path / "sub" / "bev.png"
    img = render_bev(boxes, ["table", "chair", "chair", "shelf"], cams, out, title="scene 0")
    assert out.exists()
    with Image.open(out) as png:
        assert png.format == "PNG"
        assert png.size == (800, 800)
        arr = np.asarray(png.convert("RGB"))
    assert img.size == (800, 800)
    colours = np.unique(arr.reshape(-1, 3), axis=0)
    assert len(colours) > 200
    assert (arr.reshape(-1, 3) == 255).all(axis=1).mean() < 0.95  # not (almost) all white


@pytest.mark.parametrize("frame", ["camera", "world_z_up"])
def test_orientation_right_far_box_is_upper_right(frame: str) -> None:
    boxes = _two_boxes(frame)
    img, layout = render_bev_with_layout(boxes, ["a", "b"], frame=frame, colors=[RED, BLUE])
    red = _centroid_of_color(img, _fill_rgb(RED), layout.plot_area)
    blue = _centroid_of_color(img, _fill_rgb(BLUE), layout.plot_area)
    # the box at +x (right) and further north must be right of and ABOVE (smaller row) the other
    assert red[0] > blue[0] + 100
    assert red[1] < blue[1] - 50
    # and each sits on its own side of the page-centre of the axes
    c0, r0, c1, r1 = layout.plot_area
    x0 = layout.pixel_of([0.0, 0.0, 0.0])[0]
    assert c0 < blue[0] < x0[0] < red[0] < c1
    assert r0 < red[1] < r1 and r0 < blue[1] < r1
    # the layout's data -> pixel map agrees with what was drawn
    np.testing.assert_allclose(layout.pixel_of(boxes[:, :3]), np.stack([red, blue]), atol=4.0)


def test_layout_pixel_of_axes_directions() -> None:
    _, cam = render_bev_with_layout(np.zeros((0, 9)), [], frame="camera")
    o, x, y, z = cam.pixel_of(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]]))
    assert x[0] > o[0] and x[1] == pytest.approx(o[1])  # +X -> right
    assert z[1] < o[1] and z[0] == pytest.approx(o[0])  # +Z (forward) -> up the page
    np.testing.assert_allclose(y, o)  # Y (down) is the viewing direction
    _, world = render_bev_with_layout(np.zeros((0, 9)), [], frame="world_z_up")
    o, x, y, z = world.pixel_of(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]]))
    assert x[0] > o[0] and y[1] < o[1]
    np.testing.assert_allclose(z, o)
    # equal aspect: one metre is the same number of pixels on both page axes
    assert (x[0] - o[0]) == pytest.approx(o[1] - y[1], rel=1e-6)


def test_camera_frustum_points_along_optical_axis() -> None:
    # frustum fill: 8 % of (51, 51, 51) over white = (239, 239, 239)
    fill = np.full(3, 0.08 * 51 + 0.92 * 255)
    img, lay = render_bev_with_layout(np.zeros((0, 9)), [], [np.eye(4)])
    cam_px = lay.pixel_of([0.0, 0.0, 0.0])[0]
    c = _centroid_of_color(img, fill, lay.plot_area, tol=3)
    assert c[1] < cam_px[1] - 30 and abs(c[0] - cam_px[0]) < 5  # looks up the page (+Z)
    # the same camera panned 90 deg right looks along +X: frustum to the right
    right = make_pose(pan_tilt_roll_to_rotation(90, 0, 0), [0.0, 0.0, 0.0])
    img, lay = render_bev_with_layout(
        np.zeros((0, 9)), [], [right], intrinsics=Intrinsics(500.0, 500.0, 319.5, 239.5, 640, 480)
    )
    cam_px = lay.pixel_of([0.0, 0.0, 0.0])[0]
    c = _centroid_of_color(img, fill, lay.plot_area, tol=3)
    assert c[0] > cam_px[0] + 30 and abs(c[1] - cam_px[1]) < 5


def test_footprint_of_tilted_box() -> None:
    # pitch 90: local Y (2 m) turns into +Z, local Z (0.5 m) into -Y -> X-Z footprint 1 x 2 m
    fp = footprint([0.0, 0.0, 5.0, 1.0, 2.0, 0.5, 90.0, 0.0, 0.0], "camera")
    np.testing.assert_allclose(fp.min(axis=0), [-0.5, 4.0], atol=1e-9)
    np.testing.assert_allclose(fp.max(axis=0), [0.5, 6.0], atol=1e-9)
    x, y = fp[:, 0], fp[:, 1]
    area = 0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    assert area == pytest.approx(2.0)  # > 0: counter-clockwise
    # a yawed box (about Y, the camera's vertical): footprint is the rotated 1 x 0.5 rectangle
    fp = footprint([0.0, 0.0, 0.0, 1.0, 3.0, 0.5, 0.0, 30.0, 0.0], "camera")
    assert len(fp) == 4
    x, y = fp[:, 0], fp[:, 1]
    assert 0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) == pytest.approx(0.5)


def test_plane_coords() -> None:
    p = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(plane_coords(p, "camera"), [1.0, 3.0])
    np.testing.assert_array_equal(plane_coords(p, "world_z_up"), [1.0, 2.0])
    with pytest.raises(ValueError):
        plane_coords(p, "world_y_up")  # type: ignore[arg-type]


def test_display_labels_numbering() -> None:
    assert display_labels(["chair", "table", "chair", "lamp", "chair"]) == [
        "chair 1",
        "table",
        "chair 2",
        "lamp",
        "chair 3",
    ]
    _, layout = render_bev_with_layout(_two_boxes("camera"), ["chair", "chair"])
    assert layout.labels == ("chair 1", "chair 2")


def test_input_validation() -> None:
    boxes = _two_boxes("camera")
    with pytest.raises(ValueError):
        render_bev(boxes, ["only one"])
    with pytest.raises(ValueError):
        render_bev(boxes, ["a", "b"], frame="top")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        render_bev(boxes, ["a", "b"], cameras=np.eye(3))
    with pytest.raises(ValueError):
        render_bev(
            boxes,
            ["a", "b"],
            cameras=[np.eye(4)] * 2,
            intrinsics=[Intrinsics(500.0, 500.0, 0.0, 0.0, 640, 480)],
        )
    with pytest.raises(ValueError):
        render_bev(boxes, ["a", "b"], colors=[RED])


def test_does_not_touch_pyplot_or_backend() -> None:
    # matplotlib.get_backend() itself imports pyplot, so read the raw rcParams entry instead
    code = (
        "import sys, matplotlib; raw = lambda: dict.__getitem__(matplotlib.rcParams, 'backend'); "
        "b = raw(); import numpy as np; from vst.geometry.bev import render_bev; "
        "render_bev(np.array([[0, 0, 2, 1, 1, 1, 0, 0, 0.0]]), ['a'], [np.eye(4)]); "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'; "
        "assert raw() == b, (b, raw())"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def test_room_polygon_is_drawn_under_the_boxes(tmp_path) -> None:
    from vst.geometry.bev import render_bev_with_layout

    room = np.array([[-4.0, -1.0], [4.0, -1.0], [4.0, 7.0], [-4.0, 7.0]])
    box = np.array([[0.0, 0.0, 3.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]])
    img, layout = render_bev_with_layout(
        box, ["table"], frame="camera", room=room, colors=["#0000ff"]
    )
    arr = np.asarray(img)
    # a point inside the room but away from the box has the floor colour #f3efe6
    u, v = layout.pixel_of(np.array([[-3.0, 0.0, 6.0]]))[0]
    assert tuple(arr[int(np.rint(v)), int(np.rint(u))]) == (0xF3, 0xEF, 0xE6)
    # the room widens the view: its corners are inside the plot
    x0, y0, x1, y1 = layout.plot_area
    for corner in room:
        cu, cv = layout.pixel_of(np.array([[corner[0], 0.0, corner[1]]]))[0]
        assert x0 <= cu <= x1 and y0 <= cv <= y1
    with pytest.raises(ValueError, match="room"):
        render_bev_with_layout(box, ["table"], room=np.zeros((3, 3)))
