"""Per-frame annotations from renders and ground truth: visible pixels and truncation.

Definitions (the ones written into ``Frame.visible_pixels`` / ``Frame.truncation``):

* visible pixels of an object = its pixels in the instance mask (recorded only when > 0);
* projected box of an object = the image-plane projection of its 3D box after clipping the box
  to the half-space in front of the camera (``z >= NEAR_CLIP``): the convex hull of the kept
  corners and of the points where box edges cross the plane ``z = NEAR_CLIP``;
* truncation = the fraction of the projected box's AREA lying outside the image rectangle
  ``[-0.5, W - 0.5] x [-0.5, H - 0.5]`` (OpenCV pixel-centre convention): 0 = fully inside,
  1 = fully outside (or behind the camera).
"""

from __future__ import annotations

import numpy as np

from vst.geometry.boxes import BOX_EDGES, box3d_corners
from vst.geometry.polygons import convex_hull, polygon_area

NEAR_CLIP = 1e-3
"""Depth (metres) at which boxes are clipped before projecting them."""


def clip_box_front(corners_cam: np.ndarray, near: float = NEAR_CLIP) -> np.ndarray:
    """Points (M, 3) spanning the part of a box (8 camera-frame corners) with ``z >= near``:
    kept corners plus edge crossings of ``z = near``; empty if the box is behind."""
    z = corners_cam[:, 2]
    pts = [corners_cam[z >= near]]
    for a, b in BOX_EDGES:
        za, zb = z[a], z[b]
        if (za - near) * (zb - near) < 0:
            t = (near - za) / (zb - za)
            pts.append((corners_cam[a] + t * (corners_cam[b] - corners_cam[a]))[None, :])
    return np.concatenate(pts, axis=0) if pts else np.zeros((0, 3))


def clip_polygon_to_rect(
    poly: np.ndarray, x0: float, y0: float, x1: float, y1: float
) -> np.ndarray:
    """Sutherland-Hodgman clip of a convex polygon to an axis-aligned rectangle."""
    out = np.asarray(poly, dtype=np.float64)
    for axis, bound, keep_greater in ((0, x0, True), (0, x1, False), (1, y0, True), (1, y1, False)):
        if len(out) == 0:
            break
        new = []
        for i in range(len(out)):
            cur, nxt = out[i], out[(i + 1) % len(out)]
            cin = cur[axis] >= bound if keep_greater else cur[axis] <= bound
            nin = nxt[axis] >= bound if keep_greater else nxt[axis] <= bound
            if cin:
                new.append(cur)
            if cin != nin:
                t = (bound - cur[axis]) / (nxt[axis] - cur[axis])
                new.append(cur + t * (nxt - cur))
        out = np.array(new) if new else np.zeros((0, 2))
    return out


def projected_box_hull(box: np.ndarray, world_to_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Convex hull (K, 2) in pixels ``(u, v)`` of a world box's projection, clipped in front of
    the camera (empty if the box is entirely behind it)."""
    corners = box3d_corners(box)[0]
    cam = corners @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    front = clip_box_front(cam)
    if len(front) == 0:
        return np.zeros((0, 2))
    uvw = front @ np.asarray(K).T
    uv = uvw[:, :2] / uvw[:, 2:3]
    return convex_hull(uv)


def truncation(
    box: np.ndarray, world_to_cam: np.ndarray, K: np.ndarray, width: int, height: int
) -> float:
    """Fraction of the projected box area outside the image (see the module docstring)."""
    hull = projected_box_hull(box, world_to_cam, K)
    area = polygon_area(hull)
    if area <= 0:
        return 1.0
    inside = polygon_area(clip_polygon_to_rect(hull, -0.5, -0.5, width - 0.5, height - 0.5))
    return float(np.clip(1.0 - inside / area, 0.0, 1.0))


def points_in_convex(poly: np.ndarray, pts: np.ndarray, tol: float = 0.0) -> np.ndarray:
    """Boolean (N,) whether points (N, 2) lie in the counter-clockwise convex polygon ``poly``
    (within ``tol`` pixels of it)."""
    pts = np.asarray(pts, dtype=np.float64)
    if len(poly) < 3:
        return np.zeros(len(pts), dtype=bool)
    inside = np.ones(len(pts), dtype=bool)
    for i in range(len(poly)):
        a, b = poly[i], poly[(i + 1) % len(poly)]
        edge = b - a
        length = np.hypot(*edge)
        cross = edge[0] * (pts[:, 1] - a[1]) - edge[1] * (pts[:, 0] - a[0])
        inside &= cross >= -tol * length
    return inside


def visible_pixels(mask: np.ndarray) -> dict[int, int]:
    """Object id -> number of mask pixels, for ids > 0 present in ``mask``."""
    counts = np.bincount(mask.ravel().astype(np.int64))
    return {int(i): int(c) for i, c in enumerate(counts) if i > 0 and c > 0}
