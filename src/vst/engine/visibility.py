"""Visible fraction of an object in a frame: how much of its own silhouette the frame shows.

Definition (the value :meth:`vst.engine.context.FrameView.visible_fraction` returns)::

    fraction = visible / (visible + occluded)

* ``visible`` = the object's mask pixels in the frame (``FrameView.pixel_counts``, frame
  resolution).
* The object's unoccluded (amodal) silhouette is estimated by its 3D box seen from the camera:
  the image pixels whose ray meets the box (the projected box's convex hull, clipped in front
  of the camera), restricted to the image. Parts outside the image are truncation, a separate
  rule (``max_truncation``), not occlusion.
* ``occluded`` = the silhouette pixels where another surface lies in front of the object: the
  pixel's ray enters the object's box at z-depth ``t`` (ray/box slab test) and the frame's depth
  there is known and smaller than ``t - margin`` (``margin`` = :data:`MARGIN_M` +
  :data:`MARGIN_REL` x ``t``), and the mask (when there is one) does not give the pixel to the
  object itself (an object poking out of a tight box does not hide itself). A see-through gap
  (between a chair's legs, under a table) shows a farther background, so it is not counted: a
  chair stays near 1, a bed behind a wall drops to the sliver that shows. Surfaces inside the
  box (pillows on a bed) are not occluders either.
* Frames without depth but with an instance mask: a silhouette pixel is occluded when the mask
  gives it to another object whose own box the ray enters more than the margin before this
  object's box. Unannotated occluders (walls: mask 0) cannot be told from background there, so
  this undercounts occlusion.

The silhouette is sampled on a grid of pixel centres (every ``step``-th row and column, at most
:data:`MAX_CELLS` cells per object), and occluded cells count ``step ** 2`` pixels each.

Fallback order (first that applies): (1) the frame has depth: the depth test; (2) the scene is a
single image whose object carries a ``visibility`` attribute in [0, 1] (Omni3D's annotation,
a human/LiDAR estimate of the unoccluded share): that value; (3) the frame has an instance mask:
the mask test; (4) only ``visible_pixels`` counts: ``visible`` / the silhouette's in-image pixel
area, at most 1 (no occlusion test: a crude share of the projected box). An object with no
visible pixels has fraction 0. Thin or open objects (a table seen through its legs) keep a high
fraction when nothing stands in front of them; an occluder in front of their gaps counts as
hiding them, so a half-occluded table reads a bit lower than its hidden share of material.
"""

from __future__ import annotations

import math

import numpy as np

from vst.geometry.boxes import CORNER_SIGNS
from vst.scenes.annotate import clip_box_front

MAX_CELLS = 1024
"""Most grid cells sampled per object silhouette (larger silhouettes are strided)."""

MARGIN_M = 0.05
"""Absolute part of the depth margin (metres): depth noise and mesh-to-box slack."""

MARGIN_REL = 0.02
"""Relative part of the depth margin (share of the entry depth): real scans' depth noise grows
with range."""


def box_entry_depth(
    center_cam: np.ndarray, R_cam: np.ndarray, sizes: np.ndarray, dirs: np.ndarray
) -> np.ndarray:
    """Z-depth (N,) at which rays from the camera centre along ``dirs`` (N, 3), camera-frame
    directions with z = 1, enter the box with centre ``center_cam``, full ``sizes`` along its
    local axes and box-to-camera rotation ``R_cam``: 0 if the camera is inside the box, ``inf``
    where the ray misses it (slab test in box coordinates)."""
    half = np.asarray(sizes, dtype=np.float64) / 2.0
    origin = -(R_cam.T @ np.asarray(center_cam, dtype=np.float64))  # camera in box coords
    d = dirs @ R_cam  # each row R_cam.T @ dir
    # a ray parallel to a slab gets a tiny slope instead: it then meets the slab everywhere
    # (inside it) or nowhere (outside), as the exact test says
    d[np.abs(d) < 1e-12] = 1e-12
    inv = 1.0 / d
    t1 = (-half - origin) * inv
    t2 = (half - origin) * inv
    t_in = np.minimum(t1, t2).max(axis=1)
    t_out = np.maximum(t1, t2).min(axis=1)
    return np.where((t_in <= t_out) & (t_out > 0), np.maximum(t_in, 0.0), np.inf)


class Silhouette:
    """An object's box silhouette in one frame, sampled on a pixel grid: the cells of every
    ``step``-th pixel row and column (pixel centres, inside the image) whose ray from the camera
    meets the box, with the z-depth where it enters it.

    ``us``, ``vs``: integer pixel columns and rows of those cells; ``entry``: their entry
    depths (0 when the camera is inside the box); ``dirs``: their camera-frame ray directions
    (z = 1); ``step``: the stride (each cell stands for ``step ** 2`` pixels). Only the
    rectangle bounding the projection of the box's part in front of the camera is scanned."""

    def __init__(
        self,
        center_cam: np.ndarray,
        R_cam: np.ndarray,
        sizes: np.ndarray,
        K: np.ndarray,
        K_inv: np.ndarray,
        width: int,
        height: int,
        max_cells: int = MAX_CELLS,
    ):
        self.step = 1
        self.us = self.vs = np.zeros(0, dtype=np.int64)
        self.entry = np.zeros(0)
        self.dirs = np.zeros((0, 3))
        corners = (CORNER_SIGNS * (np.asarray(sizes) / 2.0)) @ R_cam.T + center_cam
        front = clip_box_front(corners)
        if len(front) == 0:
            return
        uvw = front @ K.T
        uv = uvw[:, :2] / uvw[:, 2:3]
        c0, r0 = np.maximum(np.floor(uv.min(axis=0)), 0).astype(int)
        c1, r1 = np.minimum(np.ceil(uv.max(axis=0)), (width - 1, height - 1)).astype(int)
        if c0 > c1 or r0 > r1:
            return
        cells = (c1 - c0 + 1) * (r1 - r0 + 1)
        self.step = step = max(1, math.ceil(math.sqrt(cells / max_cells)))
        uu, vv = np.meshgrid(
            np.arange(c0, c1 + 1, step, dtype=np.int64), np.arange(r0, r1 + 1, step, dtype=np.int64)
        )
        us, vs = uu.ravel(), vv.ravel()
        dirs = np.stack([us, vs, np.ones_like(us)], axis=1) @ K_inv.T
        entry = box_entry_depth(center_cam, R_cam, sizes, dirs)
        hit = np.isfinite(entry)
        self.us, self.vs, self.entry, self.dirs = us[hit], vs[hit], entry[hit], dirs[hit]

    @property
    def area(self) -> int:
        """Pixels of the silhouette inside the image (cells x ``step ** 2``)."""
        return len(self.us) * self.step * self.step


def occluded_pixels(sil: Silhouette, front: np.ndarray) -> int:
    """Pixels of the silhouette hidden behind another surface (see the module docstring):
    ``front`` (per cell) = the depth of the surface the frame shows there (the depth map, or
    the box entry depth of the object the mask gives the cell to), ``0`` or ``inf`` where
    unknown or background."""
    hidden = (front > 0) & (front < sil.entry - (MARGIN_M + MARGIN_REL * sil.entry))
    return int(hidden.sum()) * sil.step * sil.step


def fraction(visible: int, occluded: int) -> float:
    """``visible / (visible + occluded)`` (0 when nothing is visible)."""
    return visible / (visible + occluded) if visible > 0 else 0.0
