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
:data:`MAX_CELLS` cells in its bounding rectangle), and occluded cells count ``step ** 2``
pixels each; all objects asked about in a frame are done in one vectorised pass
(:class:`Silhouettes`, :func:`fractions`).

Which tasks obey it: every task that names, counts or detects an object takes its objects from
``FrameView.visible_ids`` (``min_visible_fraction``) or, for video counting and appearance
order, from clear sightings (:func:`vst.engine.tasks.video._clips.label_sightings`); a category
with an instance that is present but mostly hidden is ambiguous there (not counted, not
detected). Points not drawn from ``visible_ids`` (``si_depth_point``'s random pixels,
``mi_correspondence``) ask about a marked pixel whose own visibility the task checks; the
sample records the fraction of the object under it.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from vst.geometry.boxes import CORNER_SIGNS, box_rotations
from vst.scenes.annotate import NEAR_CLIP, clip_box_front

MAX_CELLS = 256
"""Most grid cells sampled in the rectangle bounding an object's silhouette (larger ones are
strided). On the synthetic demo rooms, 256 cells put fractions within 0.004 on average (0.06 at
most) of a 4,096-cell sampling, at a third of the cost."""

MARGIN_M = 0.05
"""Absolute part of the depth margin (metres): depth noise and mesh-to-box slack."""

MARGIN_REL = 0.02
"""Relative part of the depth margin (share of the entry depth): real scans' depth noise grows
with range."""


def box_entry_depth(
    centres: np.ndarray, rots: np.ndarray, sizes: np.ndarray, dirs: np.ndarray
) -> np.ndarray:
    """Z-depth (M,) at which each ray from the camera centre along ``dirs[m]`` (camera frame,
    z = 1) enters its own box: centre ``centres[m]``, box-to-camera rotation ``rots[m]``, full
    ``sizes[m]`` along the box's local axes. 0 if the camera is inside the box, ``inf`` where
    the ray misses it (slab test in box coordinates)."""
    half = sizes / 2.0
    origin = -np.einsum("mji,mj->mi", rots, centres)  # camera in box coordinates: -R^T c
    d = np.einsum("mji,mj->mi", rots, dirs)  # R^T d
    # a ray parallel to a slab gets a tiny slope instead: it then meets the slab everywhere
    # (inside it) or nowhere (outside), as the exact test says
    d[np.abs(d) < 1e-12] = 1e-12
    inv = 1.0 / d
    t1 = (-half - origin) * inv
    t2 = (half - origin) * inv
    t_in = np.minimum(t1, t2).max(axis=1)
    t_out = np.maximum(t1, t2).min(axis=1)
    return np.where((t_in <= t_out) & (t_out > 0), np.maximum(t_in, 0.0), np.inf)


class Silhouettes:
    """Box silhouettes of N objects in one frame, each sampled on its own pixel grid: the cells
    of every ``step[n]``-th pixel row and column (pixel centres, inside the image) of the
    rectangle bounding the projection of box n's part in front of the camera, kept where the
    cell's ray meets the box, with the z-depth where it enters it.

    Per kept cell: ``obj`` (index n), ``us`` / ``vs`` (pixel column / row), ``dirs`` (camera
    ray, z = 1), ``entry`` (0 when the camera is inside the box); per object: ``step`` (each
    of its cells stands for ``step ** 2`` pixels). One vectorised pass for all objects."""

    def __init__(
        self,
        centres: np.ndarray,
        rots: np.ndarray,
        sizes: np.ndarray,
        K: np.ndarray,
        K_inv: np.ndarray,
        width: int,
        height: int,
        max_cells: int = MAX_CELLS,
    ):
        n = len(centres)
        local = CORNER_SIGNS[None, :, :] * (sizes[:, None, :] / 2.0)
        corners = np.einsum("nij,nkj->nki", rots, local) + centres[:, None, :]  # (N, 8, 3)
        self.step = np.ones(n, dtype=np.int64)
        parts: list[tuple[int, int, int, int, int]] = []
        in_front = corners[:, :, 2].min(axis=1) >= NEAR_CLIP
        uvw = corners @ K.T
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = uvw[:, :, :2] / uvw[:, :, 2:3]
        lo, hi = uv.min(axis=1), uv.max(axis=1)
        for k in range(n):
            if not in_front[k]:  # part behind the camera: clip the box first
                front = clip_box_front(corners[k])
                if len(front) == 0:
                    continue
                p = front @ K.T
                p = p[:, :2] / p[:, 2:3]
                lo[k], hi[k] = p.min(axis=0), p.max(axis=0)
            c0, r0 = max(math.floor(lo[k, 0]), 0), max(math.floor(lo[k, 1]), 0)
            c1, r1 = min(math.ceil(hi[k, 0]), width - 1), min(math.ceil(hi[k, 1]), height - 1)
            if c0 > c1 or r0 > r1:
                continue
            step = max(1, math.ceil(math.sqrt((c1 - c0 + 1) * (r1 - r0 + 1) / max_cells)))
            self.step[k] = step
            parts.append((k, c0, c1, r0, r1))
        cols = [np.arange(c0, c1 + 1, self.step[k]) for k, c0, c1, _, _ in parts]
        rows = [np.arange(r0, r1 + 1, self.step[k]) for k, _, _, r0, r1 in parts]
        sizes_per = [len(c) * len(r) for c, r in zip(cols, rows, strict=True)]
        obj = np.repeat(np.array([k for k, *_ in parts], dtype=np.int64), sizes_per)
        us = np.concatenate([np.tile(c, len(r)) for c, r in zip(cols, rows, strict=True)] or [[]])
        vs = np.concatenate([np.repeat(r, len(c)) for c, r in zip(cols, rows, strict=True)] or [[]])
        us, vs = us.astype(np.int64), vs.astype(np.int64)
        dirs = us[:, None] * K_inv[:, 0] + vs[:, None] * K_inv[:, 1] + K_inv[:, 2]
        entry = box_entry_depth(centres[obj], rots[obj], sizes[obj], dirs)
        hit = np.isfinite(entry)
        self.obj, self.us, self.vs = obj[hit], us[hit], vs[hit]
        self.dirs, self.entry = dirs[hit], entry[hit]
        self.n = n

    def area(self) -> np.ndarray:
        """Pixels (N,) of each silhouette inside the image (cells x ``step ** 2``)."""
        return np.bincount(self.obj, minlength=self.n) * self.step**2

    def occluded(self, front: np.ndarray) -> np.ndarray:
        """Pixels (N,) of each silhouette hidden behind another surface (see the module
        docstring): ``front`` (per cell) = the depth of the surface the frame shows there (the
        depth map, or the box entry depth of the object the mask gives the cell to), ``0`` or
        ``inf`` where unknown, background or the object itself."""
        hidden = (front > 0) & (front < self.entry - (MARGIN_M + MARGIN_REL * self.entry))
        return np.bincount(self.obj[hidden], minlength=self.n) * self.step**2


@dataclass(frozen=True)
class BoxFrames:
    """Boxes (N) in one camera: ``centres`` (N, 3), box-to-camera ``rots`` (N, 3, 3), full
    ``sizes`` (N, 3) along the boxes' local axes."""

    centres: np.ndarray
    rots: np.ndarray
    sizes: np.ndarray

    @classmethod
    def of(cls, boxes_world: np.ndarray, world_to_cam: np.ndarray) -> BoxFrames:
        """World boxes (N, 9) moved into the camera of ``world_to_cam``."""
        R, t = world_to_cam[:3, :3], world_to_cam[:3, 3]
        rots = np.einsum("ij,njk->nik", R, box_rotations(boxes_world))
        return cls(boxes_world[:, :3] @ R.T + t, rots, boxes_world[:, 3:6])


def fractions(
    boxes: BoxFrames,
    rows: Sequence[int],
    ids: Sequence[int],
    visible: Sequence[int],
    K: np.ndarray,
    size: tuple[int, int],
    depth: np.ndarray | None,
    mask: np.ndarray | None,
    row_of: Mapping[int, int],
) -> list[float]:
    """Visible fractions of the objects ``ids`` (rows ``rows`` of ``boxes``) with ``visible``
    mask pixels each, in a ``size = (width, height)`` frame with intrinsics ``K``, from the
    frame's ``depth`` and/or instance ``mask`` (``row_of``: object id -> row of ``boxes``), or
    from neither (the pixel-count share of the silhouette). See the module docstring."""
    rows = np.asarray(rows, dtype=np.int64)
    K_inv = np.linalg.inv(K)
    sil = Silhouettes(boxes.centres[rows], boxes.rots[rows], boxes.sizes[rows], K, K_inv, *size)
    seen = np.asarray(visible, dtype=np.float64)
    if depth is None and mask is None:
        area = sil.area()
        return np.where(area > 0, np.minimum(1.0, seen / np.maximum(area, 1)), 1.0).tolist()
    owners = None if mask is None else mask[sil.vs, sil.us]
    own = np.asarray(ids, dtype=np.int64)[sil.obj]
    if depth is not None:
        front = depth[sil.vs, sil.us].astype(np.float64)
        if owners is not None:  # the object's own pixels are never hidden
            front[owners == own] = 0.0
    else:  # mask only: where the ray enters the box of the object the mask shows
        known = np.array(sorted(row_of), dtype=np.int64)
        pos = np.minimum(np.searchsorted(known, owners), len(known) - 1)
        known_rows = np.array([row_of[o] for o in known.tolist()], dtype=np.int64)
        other = np.where(known[pos] == owners, known_rows[pos], -1)
        sel = (owners != own) & (other >= 0)
        j = other[sel]
        front = np.full(len(owners), np.inf)
        front[sel] = box_entry_depth(boxes.centres[j], boxes.rots[j], boxes.sizes[j], sil.dirs[sel])
    hidden = sil.occluded(front)
    return [
        v / (v + h) if v > 0 else 0.0 for v, h in zip(seen.tolist(), hidden.tolist(), strict=True)
    ]
