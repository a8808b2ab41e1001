"""Analytic ray casting for the dataset fixtures: cameras, pixel rays, planes and oriented boxes.

The fixture writers in :mod:`vst.testing` render their colour, depth and instance images from
known geometry (a floor, sometimes walls, a few boxes) instead of shipping real images. They all
use this one implementation.

Conventions
-----------
* World: metres, Z up.
* Camera: OpenCV axes (X right, Y down, Z forward); poses are ``cam_to_world`` 4x4 matrices
  whose rotation columns are the camera axes in world coordinates and whose translation is the
  camera centre.
* Pixels: integer ``(u, v)`` = ``(column, row)`` are pixel *centres*; ``K`` is the usual 3x3
  intrinsic matrix mapping camera points to pixels.
* Boxes: vst 9-DoF ``[x, y, z, sx, sy, sz, pitch, yaw, roll]`` (centre, full sizes along the
  box's local X, Y, Z, Euler angles in degrees, rotation = scipy ``from_euler("xyz")`` =
  :func:`vst.geometry.boxes.euler_to_matrix`). Datasets with other angle conventions pass the
  box-to-world rotation matrices instead (``rotations=``); only the first six columns are read
  then.
* Planes: :class:`Plane` ``(normal, offset)`` is the set ``normal . x = offset``, optionally
  limited to an axis-aligned world region (a wall of finite height, a floor square).

Ray parameter
-------------
:func:`pixel_rays` returns directions whose camera-Z component is 1, so a hit's ray parameter
``t`` *is* its z-depth (what depth maps store). :func:`cast` accepts any directions and returns
``t`` in units of their length, so unit directions give Euclidean distance (as Hypersim stores).

Hits
----
:func:`cast` reports the nearest surface with ``t > 0`` per ray. Surfaces are numbered planes
first (``0 .. P-1``, in the order given), then 9-DoF boxes (``P .. P+N-1``), then axis-aligned
``(lo, hi)`` boxes; ``-1`` means no hit and then ``t`` is ``inf``. Ties go to the surface listed
first. A ray that starts inside a box does not see that box (its entry point is behind the
origin). Boxes are intersected by the slab test in box-local coordinates.

Callers map the index to their own ids and colours; e.g. a floor plus boxes::

    origin, dirs = pixel_rays(K, width, height, look_at(eye, target))
    t, index = cast(origin, dirs, boxes, planes=[FLOOR])
    depth = np.where(np.isfinite(t), t, 0.0)   # 0 = no hit; index 0 = floor, 1 + i = box i
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from vst.geometry.boxes import euler_to_matrix

__all__ = ["FLOOR", "Plane", "cast", "look_at", "pixel_rays", "project"]


class Plane(NamedTuple):
    """The plane ``normal . x = offset`` (world coordinates; ``normal`` need not be unit length).

    ``lo`` / ``hi`` optionally bound the hit point per world axis (use ``-inf`` / ``inf`` for an
    unbounded axis): e.g. a wall ``x = 4.5`` from the floor up to 2.6 m is
    ``Plane((1, 0, 0), 4.5, lo=(-inf, -inf, 0), hi=(inf, inf, 2.6))``. Rays hit the plane from
    either side."""

    normal: Sequence[float]
    offset: float
    lo: Sequence[float] | None = None
    hi: Sequence[float] | None = None


FLOOR = Plane((0.0, 0.0, 1.0), 0.0)
"""The unbounded floor ``z = 0``."""


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """``cam_to_world`` (4x4) of an OpenCV camera at ``eye`` looking at ``target``, level with
    respect to ``up`` (no roll: the camera X axis is horizontal).

    Columns of the rotation: ``z = normalise(target - eye)`` (forward),
    ``x = normalise(z x up)`` (right), ``y = z x x`` (down). ``up`` must not be parallel to the
    viewing direction."""
    eye = np.asarray(eye, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, y, z], axis=1)
    T[:3, 3] = eye
    return T


def pixel_rays(
    K: np.ndarray, width: int, height: int, cam_to_world: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The rays through every pixel centre of a ``width`` x ``height`` image.

    Returns ``(origin (3,), directions (H, W, 3))`` in world coordinates. Each direction is the
    camera ray ``((u - cx) / fx, (v - cy) / fy, 1)`` rotated into the world, i.e. it has camera-Z
    component 1 (it is *not* unit length), so the ray parameter of a hit is its z-depth."""
    K = np.asarray(K, dtype=np.float64)
    cam_to_world = np.asarray(cam_to_world, dtype=np.float64)
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    d_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    directions = d_cam.reshape(-1, 3) @ cam_to_world[:3, :3].T
    return cam_to_world[:3, 3].copy(), directions.reshape(height, width, 3)


def project(K, points_cam: np.ndarray) -> np.ndarray:
    """Pixel coordinates (N, 2) of camera-frame points (N, 3) (in front of the camera)."""
    uvw = np.asarray(points_cam, dtype=np.float64) @ np.asarray(K, dtype=np.float64).T
    return uvw[:, :2] / uvw[:, 2:3]


def _plane_hits(origin: np.ndarray, d: np.ndarray, plane: Plane) -> np.ndarray:
    """Ray parameter (N,) of each ray's hit with ``plane`` (inf where none ahead or outside)."""
    n = np.asarray(plane.normal, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (plane.offset - origin @ n) / (d @ n)
    ok = np.isfinite(t) & (t > 0)
    if plane.lo is not None or plane.hi is not None:
        p = origin + d * np.where(ok, t, 0.0)[:, None]
        if plane.lo is not None:
            ok &= np.all(p >= np.asarray(plane.lo, dtype=np.float64), axis=1)
        if plane.hi is not None:
            ok &= np.all(p <= np.asarray(plane.hi, dtype=np.float64), axis=1)
    return np.where(ok, t, np.inf)


def _slab_hits(
    origin: np.ndarray,
    d: np.ndarray,
    anchor: np.ndarray,
    R: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Slab test in box-local coordinates (``local = R.T @ (world - anchor)``, box = the local
    region ``lo <= local <= hi``): the entry ray parameter (N,) of each ray (inf where the ray
    misses or starts inside the box) and the local axis (N,) of the entered face."""
    o = R.T @ (origin - anchor)
    dl = d @ R  # R.T @ d for every row
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (lo - o) / dl
        t2 = (hi - o) / dl
    t_lo = np.minimum(t1, t2)  # NaN where a ray runs along a face: no constraint from that axis
    t_near = np.nanmax(t_lo, axis=1)
    t_far = np.nanmin(np.maximum(t1, t2), axis=1)
    hit = (t_near <= t_far) & (t_near > 0)
    axis = np.argmax(np.where(np.isnan(t_lo), -np.inf, t_lo), axis=1)
    return np.where(hit, t_near, np.inf), axis


def _slabs(boxes, rotations, aabbs) -> list[tuple[np.ndarray, ...]]:
    """``(anchor, R, lo, hi)`` of every box then every axis-aligned box."""
    boxes = np.zeros((0, 9)) if boxes is None else np.asarray(boxes, dtype=np.float64)
    boxes = boxes.reshape(-1, boxes.shape[-1]) if boxes.size else np.zeros((0, 9))
    if rotations is None:
        rotations = euler_to_matrix(boxes[:, 6:9]) if len(boxes) else np.zeros((0, 3, 3))
    rotations = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
    if len(rotations) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(rotations)} rotations")
    slabs = [(b[:3], R, -b[3:6] / 2.0, b[3:6] / 2.0) for b, R in zip(boxes, rotations, strict=True)]
    zero, eye = np.zeros(3), np.eye(3)
    for lo, hi in aabbs or ():
        slabs.append(
            (zero, eye, np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64))
        )
    return slabs


def cast(
    origin,
    directions: np.ndarray,
    boxes=None,
    planes: Sequence[Plane] = (),
    rotations: np.ndarray | None = None,
    aabbs: Sequence[tuple[Sequence[float], Sequence[float]]] | None = None,
    return_face_axis: bool = False,
):
    """Nearest hit of every ray from ``origin`` along ``directions`` (..., 3).

    ``boxes``: (N, 9) vst boxes (see the module docstring), or (N, >= 6) centres and sizes with
    ``rotations`` (N, 3, 3) box-to-world matrices. ``aabbs``: axis-aligned boxes as world
    ``(lo, hi)`` corner pairs, tested against those exact bounds (a box given by its centre and
    half sizes can round a face by an ulp, which flips rays grazing an edge). ``planes``:
    :class:`Plane` s.

    Returns ``(t, index)`` shaped like ``directions[..., 0]``: ``t`` the ray parameter of the
    nearest hit with ``t > 0`` (``inf`` for no hit; the z-depth for :func:`pixel_rays`
    directions) and ``index`` the surface hit (int64: ``-1`` none, ``k`` plane ``k``,
    ``P + i`` box ``i``, ``P + N + j`` axis-aligned box ``j``, with ``P = len(planes)``,
    ``N = len(boxes)``). With ``return_face_axis`` also the box-local axis (0, 1, 2) of the face
    a box is entered through (``-1`` for planes and misses), e.g. for flat shading."""
    origin = np.asarray(origin, dtype=np.float64)
    directions = np.asarray(directions, dtype=np.float64)
    shape = directions.shape[:-1]
    d = directions.reshape(-1, 3)
    best = np.full(len(d), np.inf)
    index = np.full(len(d), -1, dtype=np.int64)
    face = np.full(len(d), -1, dtype=np.int64)
    for k, plane in enumerate(planes):
        t = _plane_hits(origin, d, plane)
        closer = t < best
        best[closer] = t[closer]
        index[closer] = k
    for i, (anchor, R, lo, hi) in enumerate(_slabs(boxes, rotations, aabbs)):
        t, axis = _slab_hits(origin, d, anchor, R, lo, hi)
        closer = t < best
        best[closer] = t[closer]
        index[closer] = len(planes) + i
        face[closer] = axis[closer]
    if return_face_axis:
        return best.reshape(shape), index.reshape(shape), face.reshape(shape)
    return best.reshape(shape), index.reshape(shape)
