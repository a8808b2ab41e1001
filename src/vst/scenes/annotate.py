"""Per-frame annotations from pixels and ground truth: visible pixels, truncation, and instance
masks derived from depth and boxes (for real RGB-D datasets that ship no 2D instance masks).

Definitions (the ones written into ``Frame.visible_pixels`` / ``Frame.truncation``):

* visible pixels of an object = its pixels in the instance mask (recorded only when > 0);
* projected box of an object = the image-plane projection of its 3D box after clipping the box
  to the half-space in front of the camera (``z >= NEAR_CLIP``): the convex hull of the kept
  corners and of the points where box edges cross the plane ``z = NEAR_CLIP``;
* truncation = the fraction of the projected box's AREA lying outside the image rectangle
  ``[-0.5, W - 0.5] x [-0.5, H - 0.5]`` (OpenCV pixel-centre convention): 0 = fully inside,
  1 = fully outside (or behind the camera).
* box mask (:func:`mask_from_depth_and_boxes`) = each pixel with a depth is back-projected to a
  world point; the pixel gets the id of the smallest-volume box holding that point (boxes grown by
  ``margin`` metres on every side), else 0. This is the usual pseudo instance mask of RGB-D scans
  annotated with 3D boxes only (ARKitScenes, ScanNet++ iPhone frames).
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


def points_in_box(points: np.ndarray, box: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Boolean (N,) whether world points (N, 3) lie in the 9-DoF box (grown by ``margin`` m)."""
    from vst.geometry.boxes import euler_to_matrix

    box = np.asarray(box, dtype=np.float64).reshape(9)
    R = euler_to_matrix(box[None, 6:9])[0]
    local = (np.asarray(points, dtype=np.float64) - box[:3]) @ R
    half = box[3:6] / 2.0 + margin
    return np.all(np.abs(local) <= half, axis=1)


def mask_from_depth_and_boxes(
    depth: np.ndarray,
    K: np.ndarray,
    cam_to_world: np.ndarray,
    boxes: np.ndarray,
    ids: list[int] | np.ndarray,
    margin: float = 0.02,
) -> np.ndarray:
    """Instance mask (H, W) int32 from metric z-depth and world boxes (see the module docstring).

    ``boxes`` (N, 9) and ``ids`` (N,) are the objects; pixels with depth 0 (unknown) stay 0. Each
    box only tests the pixels inside the image rectangle bounding its projection (grown by the
    margin), so the cost follows the boxes' image area, not pixels x boxes."""
    depth = np.asarray(depth, dtype=np.float64)
    H, W = depth.shape
    mask = np.zeros((H, W), dtype=np.int32)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 9)
    if len(ids) == 0 or not np.any(depth > 0):
        return mask
    K = np.asarray(K, dtype=np.float64)
    T = np.asarray(cam_to_world, dtype=np.float64)
    cols, rows = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    cam = np.stack(
        [(cols - K[0, 2]) * depth / K[0, 0], (rows - K[1, 2]) * depth / K[1, 1], depth], axis=-1
    )
    world = cam @ T[:3, :3].T + T[:3, 3]  # (H, W, 3)
    valid = depth > 0
    world_to_cam = np.linalg.inv(T)
    best_volume = np.full((H, W), np.inf)
    for box, oid in zip(boxes, ids, strict=True):
        grown = box.copy()
        grown[3:6] += 2 * margin
        corners = box3d_corners(grown)[0] @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
        front = clip_box_front(corners)
        if len(front) == 0:
            continue
        uvw = front @ K.T
        uv = uvw[:, :2] / uvw[:, 2:3]  # the projection's bounding rectangle, no hull needed
        c0, r0 = np.floor(uv.min(axis=0)).astype(int)
        c1, r1 = np.ceil(uv.max(axis=0)).astype(int) + 1
        c0, r0, c1, r1 = max(c0, 0), max(r0, 0), min(c1, W), min(r1, H)
        if c0 >= c1 or r0 >= r1:
            continue
        sub = world[r0:r1, c0:c1].reshape(-1, 3)
        inside = points_in_box(sub, box, margin).reshape(r1 - r0, c1 - c0)
        inside &= valid[r0:r1, c0:c1]
        volume = float(np.prod(box[3:6]))
        better = inside & (volume < best_volume[r0:r1, c0:c1])
        best_volume[r0:r1, c0:c1][better] = volume
        mask[r0:r1, c0:c1][better] = int(oid)
    return mask


def annotate_frame(frame, objects, mask: np.ndarray | None = None) -> None:
    """Fill ``frame.visible_pixels`` (from ``mask``, when given) and ``frame.truncation`` (for the
    objects with visible pixels, or, without a mask, every object whose projected box meets the
    image and lies in front of the camera) in place."""
    world_to_cam = frame.world_to_cam
    if mask is not None:
        frame.visible_pixels = visible_pixels(mask)
        ids = set(frame.visible_pixels)
    else:
        ids = set()
        for obj in objects:
            if truncation(obj.box, world_to_cam, frame.K, frame.width, frame.height) < 1.0:
                ids.add(obj.id)
    frame.truncation = {
        obj.id: round(truncation(obj.box, world_to_cam, frame.K, frame.width, frame.height), 6)
        for obj in objects
        if obj.id in ids
    }
