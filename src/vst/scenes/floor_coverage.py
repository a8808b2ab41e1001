"""How much of a room's floor a video clip shows: a floor grid back-projected into every frame
with a depth test.

The grid holds the centres of square cells (:data:`DEFAULT_CELL_M`, coarsened so at most
:data:`MAX_CELLS` cells) that lie inside ``scene.room.floor_polygon`` (even-odd rule), at the
floor height ``room.floor_z``. A cell is *seen* in a frame when its centre projects inside the
image (``-0.5 <= u < W - 0.5``, the same for ``v``), in front of the camera, and the frame's
depth at that pixel is not much smaller than the centre's own z-depth: ``depth >= z - tol`` with
``tol = max(`` :data:`DEPTH_TOL_M` ``, `` :data:`DEPTH_TOL_REL` ``* z)`` (otherwise something
stands between the camera and the floor there).

Floor under furniture: a cell inside the footprint of an object standing on the floor (box
bottom within :data:`STANDING_TOL_M` of the floor) is also seen when the top of the highest
such box above it passes the same test (seeing a bed or a cabinet from above counts as seeing the
floor it stands on).

Frames without depth, and pixels whose depth is unknown (0 or not finite), cannot show that a
cell is unoccluded: they see no cell. Coverage is therefore a lower bound, and a clip without
any depth has coverage 0.

``coverage = seen cells / all cells`` (0 when the room has no cell).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vst.geometry.boxes import box3d_corners
from vst.geometry.cameras import invert_pose, project_points
from vst.geometry.polygons import convex_hull, points_in_polygon
from vst.scenes.model import Frame, Room

DEFAULT_CELL_M = 0.1
"""Grid cell side (metres)."""
MAX_CELLS = 40_000
"""Larger floors use coarser cells (the side grows until the grid has at most this many)."""
DEPTH_TOL_M = 0.1
"""Absolute depth tolerance (metres) of the occlusion test..."""
DEPTH_TOL_REL = 0.05
"""...or this fraction of the cell's z-depth, whichever is larger (depth noise grows with
range)."""
STANDING_TOL_M = 0.15
"""A box whose bottom is at most this far above the floor stands on it."""

__all__ = ["clip_floor_coverage", "floor_grid", "seen_cells", "surface_heights"]


def floor_grid(room: Room, cell: float = DEFAULT_CELL_M) -> np.ndarray:
    """Centres (M, 2) of the grid cells inside the room's floor polygon (world X-Y, metres); the
    grid starts at the polygon's lower-left bounding corner. ``cell`` grows (doubling) until
    there are at most :data:`MAX_CELLS` cells."""
    poly = np.asarray(room.floor_polygon, dtype=np.float64)
    if len(poly) < 3 or not np.isfinite(poly).all():
        return np.zeros((0, 2))
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    while True:
        nx, ny = (int(np.ceil(s / cell)) for s in (hi - lo))
        if nx * ny <= MAX_CELLS:
            break
        cell *= 2.0
    xs = lo[0] + cell * (np.arange(nx) + 0.5)
    ys = lo[1] + cell * (np.arange(ny) + 0.5)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
    return pts[points_in_polygon(poly, pts)]


def surface_heights(cells: np.ndarray, boxes: np.ndarray, floor_z: float) -> np.ndarray:
    """Per cell (M,), the world Z of the top of the highest box standing on the floor whose
    footprint (convex hull of its corners in X-Y) holds the cell; NaN where none does."""
    top = np.full(len(cells), np.nan)
    if len(boxes) == 0 or len(cells) == 0:
        return top
    for corners in box3d_corners(np.asarray(boxes, dtype=np.float64)):
        z0, z1 = corners[:, 2].min(), corners[:, 2].max()
        if not np.isfinite(corners).all() or z0 > floor_z + STANDING_TOL_M or z1 <= floor_z:
            continue
        lo, hi = corners[:, :2].min(axis=0), corners[:, :2].max(axis=0)
        near = np.flatnonzero(((cells >= lo) & (cells <= hi)).all(axis=1))
        inside = near[points_in_polygon(convex_hull(corners[:, :2]), cells[near])]
        top[inside] = np.fmax(top[inside], z1)
    return top


def seen_cells(points: np.ndarray, frame: Frame, depth: np.ndarray | None) -> np.ndarray:
    """Boolean (M,) whether world points (M, 3) are seen, unoccluded, in ``frame`` (module
    docstring); ``depth`` is the frame's z-depth map (any resolution: pixels scale to it), None
    for none. NaN points are never seen."""
    seen = np.zeros(len(points), dtype=bool)
    if depth is None or depth.ndim != 2 or len(points) == 0:
        return seen
    w2c = invert_pose(frame.cam_to_world)
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    uv, z = project_points(cam, frame.K)
    dh, dw = depth.shape
    u = (uv[:, 0] + 0.5) * dw / frame.width
    v = (uv[:, 1] + 0.5) * dh / frame.height
    ok = np.isfinite(u) & np.isfinite(v) & (z > 0) & (u >= 0) & (u < dw) & (v >= 0) & (v < dh)
    idx = np.flatnonzero(ok)
    d = depth[v[idx].astype(int), u[idx].astype(int)].astype(np.float64)
    zc = z[idx]
    good = np.isfinite(d) & (d > 0) & (d >= zc - np.maximum(DEPTH_TOL_M, DEPTH_TOL_REL * zc))
    seen[idx[good]] = True
    return seen


def clip_floor_coverage(
    room: Room,
    boxes: np.ndarray,
    frames: Sequence[Frame],
    depths: Sequence[np.ndarray | None],
    cell: float = DEFAULT_CELL_M,
) -> float:
    """Fraction (0..1) of the room's floor cells seen in at least one of ``frames`` (with their
    depth maps ``depths``, None where a frame has none); ``boxes`` (N, 9) are the scene's world
    boxes (floor under furniture, module docstring)."""
    cells = floor_grid(room, cell)
    if len(cells) == 0:
        return 0.0
    z = float(room.floor_z)
    top = surface_heights(cells, boxes, z)
    covered = np.flatnonzero(~np.isnan(top))
    # test points: every cell's floor point, then the furniture top above the covered cells
    points = np.concatenate(
        [np.column_stack([cells, np.full(len(cells), z)]), np.column_stack([cells, top])[covered]]
    )
    owner = np.concatenate([np.arange(len(cells)), covered])
    seen = np.zeros(len(cells), dtype=bool)
    for frame, depth in zip(frames, depths, strict=True):
        todo = np.flatnonzero(~seen[owner])  # cells seen in an earlier frame stay seen
        if len(todo) == 0:
            break
        seen[owner[todo[seen_cells(points[todo], frame, depth)]]] = True
    return float(seen.mean())
