"""Exact IoU of 9-DoF oriented 3D boxes, and bird's-eye-view IoU of gravity-aligned boxes.

Boxes follow :mod:`vst.geometry.boxes`: ``(N, 9)`` arrays ``[x, y, z, x_size, y_size, z_size,
pitch, yaw, roll]`` (metres, DEGREES), box-to-frame rotation
``R = Rotation.from_euler("xyz", [pitch, yaw, roll], degrees=True)``. A single ``(9,)`` box is
accepted as ``(1, 9)``. Every function returns an ``(N, M)`` float64 matrix for ``N`` boxes ``a``
and ``M`` boxes ``b`` (``(N, 0)`` / ``(0, M)`` for empty inputs).

A box is *degenerate* when any of its 9 values is non-finite or any size is ``<= 0`` (or its
volume under/overflows); a degenerate box has intersection and IoU 0 against everything.

Algorithm of :func:`box3d_intersection_volume` (exact up to floating point; no sampling, no
pytorch3d, no torch). The boundary of the convex polytope ``A ∩ B`` is (faces of A inside B) ∪
(faces of B inside A). Each face, as a rectangle in its own box's frame, is clipped by the other
box's 6 half-spaces restricted to the face plane (2D Sutherland-Hodgman, which keeps the polygon
convex), and by the divergence theorem ``vol = 1/3 * sum_faces (n_f . x_f) * area_f``, where
``n_f . x_f`` is the signed distance of the face plane from the origin (A's centre); this is the
signed tetrahedron-fan sum with each fan's height factored out, so no vertex sorting is needed.

* A face of B lying in the plane of a face of A with the same outward normal would be counted
  twice: such B faces are skipped, and that A face is not clipped by that plane.
* Touching faces with opposite normals mean the boxes are separated (face-normal separating-axis
  test, which also gives the cheap exits together with a bounding-sphere test and containment).
* These decisions about a plane use the tolerance ``1e-8 * sqrt(S * h)`` (``S`` the pair's size,
  ``h`` the thickness across that plane). Nearly coplanar faces are the ill-conditioned case; this
  keeps their error near ``1e-8 * sqrt(S / h)`` of the volume at any aspect ratio. In general
  position the result matches an exact reference to ~1e-15.
* A clip is skipped when the face rectangle lies wholly inside the half-space (or the polygon is
  emptied when it lies wholly outside) by a margin of ~1e-12 of the magnitudes, far above the
  clip's rounding, so the result is bit-identical to clipping by every plane (tests compare).

The kernels are compiled with numba (``cache=True``, serial, one pair at a time): clipping polygons
whose vertex count depends on the data does not vectorise well in numpy.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import ArrayLike

from vst.geometry.boxes import as_boxes, box3d_volume

__all__ = ["bev_iou", "box3d_intersection_volume", "box3d_iou"]

_TOL_C = 1e-8
"""Tolerance constant: decisions about a plane use ``_TOL_C * sqrt(scale * thickness)``."""

_PRUNE_C = 1e-12
"""Relative margin of the clip pruning (:func:`_rect_side`)."""

_POLY_CAP = 256
"""Polygon buffer size: each clip at most doubles a vertex count (4 * 2**6 = 256 for 6 clips)."""

_UNIT_BOX = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])


def _valid_mask(arr: np.ndarray) -> np.ndarray:
    """True for non-degenerate boxes: all values finite, sizes > 0, volume finite and > 0."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        ok = np.all(np.isfinite(arr), axis=1) & np.all(arr[:, 3:6] > 0, axis=1)
        vol = np.prod(np.where(ok[:, None], arr[:, 3:6], 1.0), axis=1)
    return ok & np.isfinite(vol) & (vol > 0)


@njit(cache=True)
def _clip(bx, by, s, n, a, b, c):  # pragma: no cover - compiled
    """Clip polygon ``(bx[s], by[s])[:n]`` to ``a*u + b*v <= c`` into row ``1 - s`` of the
    buffers; return its size. (Two rows of one buffer, not two arrays swapped after each clip:
    swapping array variables costs numba reference counting in the innermost loop.)"""
    d = 1 - s
    m = 0
    xp = bx[s, n - 1]
    yp = by[s, n - 1]
    sp = a * xp + b * yp - c
    for k in range(n):
        x = bx[s, k]
        y = by[s, k]
        t = a * x + b * y - c
        if t <= 0.0:
            if sp > 0.0:
                r = sp / (sp - t)
                bx[d, m] = xp + r * (x - xp)
                by[d, m] = yp + r * (y - yp)
                m += 1
            bx[d, m] = x
            by[d, m] = y
            m += 1
        elif sp <= 0.0:
            r = sp / (sp - t)
            bx[d, m] = xp + r * (x - xp)
            by[d, m] = yp + r * (y - yp)
            m += 1
        xp = x
        yp = y
        sp = t
    return m


@njit(cache=True)
def _area(bx, by, s, n):  # pragma: no cover - compiled
    """Unsigned shoelace area of polygon ``(bx[s], by[s])[:n]``, taken relative to vertex 0."""
    acc = 0.0
    x0 = bx[s, 0]
    y0 = by[s, 0]
    for k in range(1, n - 1):
        acc += (bx[s, k] - x0) * (by[s, k + 1] - y0) - (bx[s, k + 1] - x0) * (by[s, k] - y0)
    return 0.5 * abs(acc)


@njit(cache=True)
def _rect(bx, by, hu, hv):  # pragma: no cover - compiled
    """The rectangle ``|u| <= hu, |v| <= hv`` as polygon row 0 of the buffers (4 vertices)."""
    bx[0, 0] = -hu
    by[0, 0] = -hv
    bx[0, 1] = hu
    by[0, 1] = -hv
    bx[0, 2] = hu
    by[0, 2] = hv
    bx[0, 3] = -hu
    by[0, 3] = hv


@njit(cache=True)
def _rect_side(a, b, hu, hv, c):  # pragma: no cover - compiled
    """Where the rectangle ``|u| <= hu, |v| <= hv`` lies against ``a*u + b*v <= c``: 1 wholly
    inside, -1 wholly outside, 0 crossing (or too close to tell). The margin, ~1e-12 of the
    magnitudes, dwarfs the rounding of a clip's side test, so a polygon inside the rectangle
    that is judged inside (outside) here would be kept whole (emptied) by :func:`_clip`."""
    reach = abs(a) * hu + abs(b) * hv
    margin = _PRUNE_C * (hu + hv + abs(c))
    if reach + margin <= c:
        return 1
    if -reach - margin > c:
        return -1
    return 0


@njit(cache=True)
def _pair_volume(
    cA, hA, RA, volA, cB, hB, RB, volB, Rrel, t, u, aux, skip_b, skip_plane, bx, by, prune
):  # pragma: no cover - compiled
    """Exact intersection volume of boxes A and B (centre, half-sizes, rotation, volume)."""
    d0 = cB[0] - cA[0]
    d1 = cB[1] - cA[1]
    d2 = cB[2] - cA[2]
    # B's pose in A's frame: centre t = RA^T d, axes Rrel = RA^T RB; u = RB^T d.
    for i in range(3):
        t[i] = RA[0, i] * d0 + RA[1, i] * d1 + RA[2, i] * d2
        for j in range(3):
            Rrel[i, j] = RA[0, i] * RB[0, j] + RA[1, i] * RB[1, j] + RA[2, i] * RB[2, j]
    for j in range(3):
        u[j] = Rrel[0, j] * t[0] + Rrel[1, j] * t[1] + Rrel[2, j] * t[2]
    # Tolerances: geometric mean of the pair's scale S and the thickness h across the plane in
    # question, tol = C * sqrt(S * h). Snapping nearly coplanar faces errs by ~ tol / h relative
    # to the volume, not snapping them by ~ eps * S / tol (ill-conditioned plane crossing); this
    # balances the two, ~1e-8 * sqrt(S / h) relative, at every aspect ratio.
    S = np.sqrt(hA[0] * hA[0] + hA[1] * hA[1] + hA[2] * hA[2])
    S += np.sqrt(hB[0] * hB[0] + hB[1] * hB[1] + hB[2] * hB[2])
    for i in range(3):  # row 0: B's half-extent along A's axis i; row 1: its tolerance
        ext = abs(Rrel[i, 0]) * hB[0] + abs(Rrel[i, 1]) * hB[1] + abs(Rrel[i, 2]) * hB[2]
        aux[0, i] = ext
        aux[1, i] = 2.0 * _TOL_C * np.sqrt(S * max(hA[i], ext))
    for j in range(3):  # rows 2, 3: the same for A along B's axis j
        ext = abs(Rrel[0, j]) * hA[0] + abs(Rrel[1, j]) * hA[1] + abs(Rrel[2, j]) * hA[2]
        aux[2, j] = ext
        aux[3, j] = 2.0 * _TOL_C * np.sqrt(S * max(hB[j], ext))

    # Separating-axis test on the 6 face normals (touching counts as separated), and containment.
    b_in_a = True
    a_in_b = True
    for i in range(3):
        if abs(t[i]) >= hA[i] + aux[0, i] - aux[1, i]:
            return 0.0
        if abs(t[i]) + aux[0, i] > hA[i] + aux[1, i]:
            b_in_a = False
        if abs(u[i]) >= hB[i] + aux[2, i] - aux[3, i]:
            return 0.0
        if abs(u[i]) + aux[2, i] > hB[i] + aux[3, i]:
            a_in_b = False
    if b_in_a:
        return volB
    if a_in_b:
        return volA

    # Coplanar faces with the same outward normal: face index f = 2 * axis + (sign > 0).
    for f in range(6):
        skip_b[f] = False
        skip_plane[f] = -1
    for i in range(3):
        for j in range(3):
            r = Rrel[i, j]
            dev = 0.0  # how far B's face j strays from a plane normal to A's axis i
            for k in range(3):
                if k != j:
                    dev += abs(Rrel[i, k]) * hB[k]
            tol = _TOL_C * np.sqrt(S * max(hA[i], hB[j]))  # <= half of aux[1, i] and aux[3, j]
            if dev > tol:
                continue
            for sai in range(2):
                sa = 2.0 * sai - 1.0
                for sbi in range(2):
                    sb = 2.0 * sbi - 1.0
                    if sa * sb * r <= 0.0:
                        continue
                    if abs(t[i] + sb * hB[j] * r - sa * hA[i]) + dev <= tol:
                        skip_b[2 * j + sbi] = True
                        skip_plane[2 * i + sai] = 2 * j + sbi

    vol = 0.0
    # Faces of A (in A's frame) clipped by B's half-spaces  sb * Rrel[:, j] . x <= sb * u_j + hB_j.
    for i in range(3):
        p = (i + 1) % 3
        q = (i + 2) % 3
        ext = aux[0, i]
        tol = aux[1, i]
        for sai in range(2):
            sa = 2.0 * sai - 1.0
            w = sa * hA[i]
            if w < t[i] - ext - tol or w > t[i] + ext + tol:
                continue  # B does not reach this face's plane
            fa = 2 * i + sai
            _rect(bx, by, hA[p], hA[q])
            cur = 0
            n = 4
            for j in range(3):
                for sbi in range(2):
                    if n == 0 or skip_plane[fa] == 2 * j + sbi:
                        continue
                    sb = 2.0 * sbi - 1.0
                    c = sb * u[j] + hB[j] - sb * Rrel[i, j] * w
                    ca = sb * Rrel[p, j]
                    cb = sb * Rrel[q, j]
                    if prune:
                        k = _rect_side(ca, cb, hA[p], hA[q], c)
                        if k != 0:
                            if k < 0:
                                n = 0
                            continue
                    n = _clip(bx, by, cur, n, ca, cb, c)
                    cur = 1 - cur
            if n >= 3:
                vol += hA[i] * _area(bx, by, cur, n)
    # Faces of B (in B's frame) clipped by A's half-spaces  sa * Rrel[i, :] . y <= hA_i - sa * t_i.
    for j in range(3):
        p = (j + 1) % 3
        q = (j + 2) % 3
        ext = aux[2, j]
        tol = aux[3, j]
        for sbi in range(2):
            if skip_b[2 * j + sbi]:
                continue
            sb = 2.0 * sbi - 1.0
            w = sb * hB[j]
            if w < -u[j] - ext - tol or w > -u[j] + ext + tol:
                continue  # A does not reach this face's plane
            _rect(bx, by, hB[p], hB[q])
            cur = 0
            n = 4
            for i in range(3):
                for sai in range(2):
                    if n == 0:
                        continue
                    sa = 2.0 * sai - 1.0
                    c = hA[i] - sa * t[i] - sa * Rrel[i, j] * w
                    ca = sa * Rrel[i, p]
                    cb = sa * Rrel[i, q]
                    if prune:
                        k = _rect_side(ca, cb, hB[p], hB[q], c)
                        if k != 0:
                            if k < 0:
                                n = 0
                            continue
                    n = _clip(bx, by, cur, n, ca, cb, c)
                    cur = 1 - cur
            if n >= 3:
                vol += (hB[j] + sb * u[j]) * _area(bx, by, cur, n)
    vol /= 3.0
    return min(max(vol, 0.0), min(volA, volB))


@njit(cache=True)
def _volume_matrix(
    cA, hA, RA, volA, okA, cB, hB, RB, volB, okB, want_iou, prune
):  # pragma: no cover - compiled
    """(N, M) intersection volumes, or IoUs when ``want_iou``; one pair at a time, no threads."""
    N = cA.shape[0]
    M = cB.shape[0]
    out = np.zeros((N, M))
    Rrel = np.empty((3, 3))
    t = np.empty(3)
    u = np.empty(3)
    aux = np.empty((4, 3))
    skip_b = np.empty(6, dtype=np.bool_)
    skip_plane = np.empty(6, dtype=np.int64)
    bx = np.empty((2, _POLY_CAP))
    by = np.empty((2, _POLY_CAP))
    rA = np.sqrt(hA[:, 0] ** 2 + hA[:, 1] ** 2 + hA[:, 2] ** 2)
    rB = np.sqrt(hB[:, 0] ** 2 + hB[:, 1] ** 2 + hB[:, 2] ** 2)
    # half extents of the axis-aligned bounds: e[k] = sum_j |R[k, j]| h[j]
    eA = np.zeros((N, 3))
    eB = np.zeros((M, 3))
    for a in range(N):
        for k in range(3):
            for j in range(3):
                eA[a, k] += abs(RA[a, k, j]) * hA[a, j]
    for b in range(M):
        for k in range(3):
            for j in range(3):
                eB[b, k] += abs(RB[b, k, j]) * hB[b, j]
    for a in range(N):
        if not okA[a]:
            continue
        for b in range(M):
            if not okB[b]:
                continue
            d0 = cB[b, 0] - cA[a, 0]
            d1 = cB[b, 1] - cA[a, 1]
            d2 = cB[b, 2] - cA[a, 2]
            rr = rA[a] + rB[b]
            if d0 * d0 + d1 * d1 + d2 * d2 >= rr * rr:
                continue  # bounding spheres apart
            if (
                abs(d0) >= eA[a, 0] + eB[b, 0]
                or abs(d1) >= eA[a, 1] + eB[b, 1]
                or abs(d2) >= eA[a, 2] + eB[b, 2]
            ):
                continue  # axis-aligned bounds apart
            inter = _pair_volume(
                cA[a], hA[a], RA[a], volA[a], cB[b], hB[b], RB[b], volB[b],
                Rrel, t, u, aux, skip_b, skip_plane, bx, by, prune,
            )  # fmt: skip
            if want_iou:
                if inter > 0.0:
                    out[a, b] = inter / (volA[a] + volB[b] - inter)
            else:
                out[a, b] = inter
    return out


@njit(cache=True)
def _prepare_compiled(arr):  # pragma: no cover - compiled
    """:func:`_prepare` inside numba: for the small box sets of rewards (10 boxes per
    response, thousands of calls) numpy's per-call overhead outweighs the work itself.
    Degenerate boxes (non-finite value, size <= 0, volume not finite and > 0) get a unit box
    in their slot and ``ok = False``."""
    n = arr.shape[0]
    c = np.zeros((n, 3))
    h = np.zeros((n, 3))
    R = np.zeros((n, 3, 3))
    vol = np.zeros(n)
    ok = np.zeros(n, dtype=np.bool_)
    deg = np.pi / 180.0
    for i in range(n):
        good = True
        for k in range(9):
            if not np.isfinite(arr[i, k]):
                good = False
        if good and (arr[i, 3] <= 0.0 or arr[i, 4] <= 0.0 or arr[i, 5] <= 0.0):
            good = False
        v = 0.0
        if good:
            v = arr[i, 3] * arr[i, 4] * arr[i, 5]
            if not (np.isfinite(v) and v > 0.0):
                good = False
        if good:
            for k in range(3):
                c[i, k] = arr[i, k]
                h[i, k] = arr[i, 3 + k] / 2.0
            px, py, pz = arr[i, 6] * deg, arr[i, 7] * deg, arr[i, 8] * deg
        else:
            h[i, 0] = 0.5
            h[i, 1] = 0.5
            h[i, 2] = 0.5
            px, py, pz = 0.0, 0.0, 0.0
        cx, cy, cz = np.cos(px), np.cos(py), np.cos(pz)
        sx, sy, sz = np.sin(px), np.sin(py), np.sin(pz)
        # Rz(roll) @ Ry(yaw) @ Rx(pitch), as vst.geometry.boxes.euler_to_matrix
        R[i, 0, 0] = cz * cy
        R[i, 0, 1] = cz * sy * sx - sz * cx
        R[i, 0, 2] = cz * sy * cx + sz * sx
        R[i, 1, 0] = sz * cy
        R[i, 1, 1] = sz * sy * sx + cz * cx
        R[i, 1, 2] = sz * sy * cx - cz * sx
        R[i, 2, 0] = -sy
        R[i, 2, 1] = cy * sx
        R[i, 2, 2] = cy * cx
        vol[i] = v if good else 0.0
        ok[i] = good
    return c, h, R, vol, ok


@njit(cache=True)
def _matrix_compiled(a, b, want_iou, prune):  # pragma: no cover - compiled
    """:func:`_prepare_compiled` of both box sets and :func:`_volume_matrix`, in one call (one
    dispatch instead of three: the reward calls this thousands of times on 10 x 10 boxes)."""
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]))
    cA, hA, RA, volA, okA = _prepare_compiled(a)
    cB, hB, RB, volB, okB = _prepare_compiled(b)
    return _volume_matrix(cA, hA, RA, volA, okA, cB, hB, RB, volB, okB, want_iou, prune)


def _matrix_3d(a: ArrayLike, b: ArrayLike, want_iou: bool, prune: bool = True) -> np.ndarray:
    """(N, M) volumes or IoUs; ``prune=False`` clips by every plane (the reference path the
    tests compare the pruned one with: both give identical results)."""
    A = np.ascontiguousarray(as_boxes(a))
    B = np.ascontiguousarray(as_boxes(b))
    return _matrix_compiled(A, B, want_iou, prune)


def box3d_intersection_volume(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Exact intersection volumes (N, M), cubic metres, of arbitrarily rotated boxes.

    ``a`` is (N, 9) or (9,), ``b`` is (M, 9) or (9,). Degenerate boxes give 0.
    """
    return _matrix_3d(a, b, want_iou=False)


def box3d_iou(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Exact 3D IoU (N, M) of arbitrarily rotated boxes (pitch, yaw and roll all honoured).

    ``a`` is (N, 9) or (9,), ``b`` is (M, 9) or (9,). Degenerate boxes give 0; never NaN.
    """
    return _matrix_3d(a, b, want_iou=True)


@njit(cache=True)
def _bev_matrix(A, B):  # pragma: no cover - compiled
    """(N, M) gravity-aligned IoU; rows of A, B are (x, y, z, hx, hy, hz, cos yaw, sin yaw, vol)."""
    N = A.shape[0]
    M = B.shape[0]
    out = np.zeros((N, M))
    bx = np.empty((2, _POLY_CAP))
    by = np.empty((2, _POLY_CAP))
    for a in range(N):
        xa, ya, za, hxa, hya, hza = A[a, 0], A[a, 1], A[a, 2], A[a, 3], A[a, 4], A[a, 5]
        ca, sa, va = A[a, 6], A[a, 7], A[a, 8]
        if va <= 0.0:
            continue
        ra = np.sqrt(hxa * hxa + hza * hza)
        for b in range(M):
            xb, yb, zb, hxb, hyb, hzb = B[b, 0], B[b, 1], B[b, 2], B[b, 3], B[b, 4], B[b, 5]
            cb, sb, vb = B[b, 6], B[b, 7], B[b, 8]
            if vb <= 0.0:
                continue
            hgt = min(ya + hya, yb + hyb) - max(ya - hya, yb - hyb)
            if hgt <= 0.0:
                continue
            dx = xb - xa
            dz = zb - za
            rr = ra + np.sqrt(hxb * hxb + hzb * hzb)
            if dx * dx + dz * dz >= rr * rr:
                continue
            # In A's local (X, Z) frame: local X is (cos, -sin) and local Z is (sin, cos) in world
            # (X, Z), since Ry(yaw) maps local X to (cos, 0, -sin) and local Z to (sin, 0, cos).
            tu = ca * dx - sa * dz
            tv = sa * dx + ca * dz
            e1u = ca * cb + sa * sb  # B's local X axis in A's frame
            e1v = sa * cb - ca * sb
            e2u = ca * sb - sa * cb  # B's local Z axis in A's frame
            e2v = sa * sb + ca * cb
            _rect(bx, by, hxa, hza)
            cur = 0
            n = 4
            for k in range(4):
                if n == 0:
                    break
                sgn = 1.0 if k % 2 == 0 else -1.0
                if k < 2:
                    nu = sgn * e1u
                    nv = sgn * e1v
                    h = hxb
                else:
                    nu = sgn * e2u
                    nv = sgn * e2v
                    h = hzb
                n = _clip(bx, by, cur, n, nu, nv, h + nu * tu + nv * tv)
                cur = 1 - cur
            if n < 3:
                continue
            inter = min(_area(bx, by, cur, n) * hgt, va, vb)
            if inter > 0.0:
                out[a, b] = inter / (va + vb - inter)
    return out


def _bev_table(boxes: ArrayLike) -> np.ndarray:
    arr = as_boxes(boxes)
    valid = _valid_mask(arr)
    safe = np.where(valid[:, None], arr, _UNIT_BOX)
    yaw = np.deg2rad(safe[:, 7])
    vol = np.where(valid, box3d_volume(safe), 0.0)
    cols = [safe[:, 0:3], safe[:, 3:6] / 2.0, np.cos(yaw)[:, None], np.sin(yaw)[:, None]]
    return np.ascontiguousarray(np.concatenate([*cols, vol[:, None]], axis=1))


def bev_iou(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """IoU (N, M) of gravity-aligned boxes in the camera convention (gravity along +Y).

    Each box is taken as its ``x_size`` by ``z_size`` rectangle in the X-Z plane, rotated by ``yaw``
    about Y, extruded over ``y +- y_size / 2``; the intersection is the exact rectangle overlap area
    times the Y-interval overlap, divided by the union of the box volumes. ``pitch`` and ``roll``
    are IGNORED (treated as 0), so this equals :func:`box3d_iou` exactly when they are 0 and is an
    approximation otherwise. Degenerate boxes (see module docstring) give 0.
    """
    A = _bev_table(a)
    B = _bev_table(b)
    if len(A) == 0 or len(B) == 0:
        return np.zeros((len(A), len(B)))
    return _bev_matrix(A, B)
