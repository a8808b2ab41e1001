"""Converters from other datasets' box formats to vst's canonical 9-DoF box, and back.

The canonical box (see :mod:`vst.geometry.boxes`) is a float64 ``(9,)`` array
``[x, y, z, x_size, y_size, z_size, pitch, yaw, roll]``: centre and sizes in metres, angles in
DEGREES, box-to-frame rotation ``R = Rotation.from_euler("xyz", [pitch, yaw, roll], degrees=True)``
(extrinsic X, Y, Z), sizes along the box's local X, Y, Z axes. Every converter keeps the frame
of its input (camera frame for Omni3D, the scan's world frame for EmbodiedScan and VSI-Bench); only
the parametrisation changes. Euler angles are not unique, so compare converted boxes through
:func:`~vst.geometry.boxes.box3d_corners`, never through their angles.

Formats handled:

* Omni3D: centre in camera coordinates, ``dimensions = [w, h, l]`` and a 3x3 box-to-camera
  rotation ``R_cam``. Omni3D's corner construction puts ``l`` along the local X axis, ``h`` along
  local Y and ``w`` along local Z, so the canonical sizes are ``[l, h, w]``.
* EmbodiedScan: 9-DoF ``[x, y, z, x_size, y_size, z_size, alpha, beta, gamma]`` in RADIANS, with
  box-to-world rotation ``R = Rz(alpha) @ Rx(beta) @ Ry(gamma)`` (pytorch3d
  ``euler_angles_to_matrix(..., "ZXY")``, scipy intrinsic ``"ZXY"``).
* VSI-Bench metadata: ``centroid``, ``axesLengths`` and ``normalizedAxes`` (three unit box axes,
  one per row); the box rotation's columns are those axes.
* Axis-aligned boxes given by ``min`` / ``max``, and 8 corners in vst's corner order.

Invalid input (wrong shape, non-finite values, negative sizes, matrices that are not rotations)
raises :class:`ValueError` naming the offending argument.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial.transform import Rotation

from vst.geometry.boxes import (
    CORNER_SIGNS,
    as_boxes,
    euler_to_matrix,
    make_boxes,
)

__all__ = [
    "CORNER_ATOL",
    "ROTATION_ATOL",
    "from_aabb",
    "from_corners",
    "from_embodiedscan",
    "from_omni3d",
    "from_vsibench",
    "to_embodiedscan",
    "to_omni3d",
]

ROTATION_ATOL = 1e-4
"""Largest ``|R @ R.T - I|`` entry accepted for an input rotation (then projected onto SO(3))."""

CORNER_ATOL = 1e-5
"""Default tolerance (metres) for :func:`from_corners`: corners may deviate this much from a box
(plus ``1e-6`` times the largest coordinate magnitude, for float32 inputs far from the origin)."""

EMBODIEDSCAN_EULER_ORDER = "ZXY"
"""scipy Euler order of EmbodiedScan angles: intrinsic Z, X', Y'' (= Rz @ Rx @ Ry), radians."""


def _vector(value: ArrayLike, name: str, size: int = 3) -> np.ndarray:
    """``value`` as a finite float64 array of shape ``(size,)``."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be {size} numbers, got {value!r}") from exc
    if arr.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr.tolist()}")
    return arr


def _sizes(value: ArrayLike, name: str) -> np.ndarray:
    """Three finite, non-negative extents."""
    arr = _vector(value, name)
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative sizes, got {arr.tolist()}")
    return arr


def _matrix(value: ArrayLike, name: str) -> np.ndarray:
    """``value`` as a finite float64 (3, 3) array (9 flat numbers are read row by row)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a 3x3 matrix, got {value!r}") from exc
    if arr.shape == (9,):
        arr = arr.reshape(3, 3)
    if arr.shape != (3, 3):
        raise ValueError(f"{name} must have shape (3, 3) or (9,), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr.tolist()}")
    return arr


def _nearest_rotation(M: np.ndarray) -> np.ndarray:
    """The proper rotation closest to ``M`` in Frobenius norm (polar decomposition via SVD)."""
    U, _, Vt = np.linalg.svd(M)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt)) or 1.0])
    return U @ D @ Vt


def _rotation(value: ArrayLike, name: str, allow_reflection: bool = False) -> np.ndarray:
    """Validate a rotation matrix: orthonormal within :data:`ROTATION_ATOL`, det +1.

    With ``allow_reflection`` a det -1 matrix has its last column negated (a box is symmetric, so
    flipping one axis leaves its corners unchanged). Returns the nearest exact rotation.
    """
    R = _matrix(value, name)
    err = float(np.max(np.abs(R.T @ R - np.eye(3))))
    if err > ROTATION_ATOL:
        raise ValueError(
            f"{name} is not a rotation matrix: max |R^T R - I| = {err:.3g} > {ROTATION_ATOL:g}"
        )
    if np.linalg.det(R) < 0:
        if not allow_reflection:
            raise ValueError(f"{name} is a reflection (det = -1), not a rotation")
        R = R.copy()
        R[:, 2] = -R[:, 2]
    return _nearest_rotation(R)


def _box(center: np.ndarray, sizes: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Canonical (9,) float64 box from centre, sizes and a box-to-frame rotation."""
    return make_boxes(center, sizes, R)[0].astype(np.float64)


def _one_box(box: ArrayLike, name: str = "box") -> np.ndarray:
    """A single canonical box as (9,), validated."""
    try:
        arr = as_boxes(box)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be one canonical (9,) box: {exc}") from exc
    if arr.shape[0] != 1:
        raise ValueError(f"{name} must be one (9,) box, got {arr.shape[0]} boxes")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr[0].tolist()}")
    return arr[0]


def from_omni3d(center_cam: ArrayLike, dimensions: ArrayLike, R_cam: ArrayLike) -> np.ndarray:
    """Canonical box from an Omni3D annotation (camera frame, metres).

    ``center_cam`` is the centre in camera coordinates (X right, Y down, Z forward),
    ``dimensions = [w, h, l]`` and ``R_cam`` the 3x3 box-to-camera rotation. Omni3D lays ``l``
    along the box's local X, ``h`` along local Y and ``w`` along local Z, so the canonical sizes
    are ``[l, h, w]``.
    """
    center = _vector(center_cam, "center_cam")
    w, h, l = _sizes(dimensions, "dimensions")  # noqa: E741 - Omni3D's own names
    R = _rotation(R_cam, "R_cam")
    return _box(center, np.array([l, h, w]), R)


def to_omni3d(box: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of :func:`from_omni3d`: ``(center_cam (3,), dimensions [w, h, l] (3,), R_cam)``."""
    b = _one_box(box)
    dims = np.array([b[5], b[4], b[3]], dtype=np.float64)
    return b[0:3].copy(), dims, euler_to_matrix(b[6:9])


def from_embodiedscan(box9: ArrayLike) -> np.ndarray:
    """Canonical box from an EmbodiedScan 9-DoF box (same world frame, metres).

    Input ``[x, y, z, x_size, y_size, z_size, alpha, beta, gamma]`` with angles in RADIANS and
    box-to-world rotation ``Rz(alpha) @ Rx(beta) @ Ry(gamma)`` (pytorch3d ``"ZXY"``, scipy
    intrinsic ``"ZXY"``). Output angles are canonical degrees (scipy extrinsic ``"xyz"``).
    """
    arr = _vector(box9, "box9", size=9)
    sizes = _sizes(arr[3:6], "box9 sizes (box9[3:6])")
    R = Rotation.from_euler(EMBODIEDSCAN_EULER_ORDER, arr[6:9]).as_matrix()
    return _box(arr[0:3], sizes, R)


def to_embodiedscan(box: ArrayLike) -> np.ndarray:
    """Inverse of :func:`from_embodiedscan`: EmbodiedScan ``(9,)`` box, ZXY angles in radians."""
    b = _one_box(box)
    R = euler_to_matrix(b[6:9])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Gimbal lock detected")
        angles = Rotation.from_matrix(R).as_euler(EMBODIEDSCAN_EULER_ORDER)
    return np.concatenate([b[0:6], angles]).astype(np.float64)


def from_vsibench(
    centroid: ArrayLike, axes_lengths: ArrayLike, normalized_axes: ArrayLike
) -> np.ndarray:
    """Canonical box from VSI-Bench metadata (``object_bbox`` entries; scan world frame, metres).

    ``normalized_axes`` holds 9 numbers (or a 3x3 array): three unit box axes, one per row, in the
    order of ``axes_lengths``. The box rotation has these axes as columns. A left-handed triple
    (det < 0) has its third axis negated, which leaves the corners unchanged. Slightly
    non-orthonormal axes (within :data:`ROTATION_ATOL`) are projected onto the nearest rotation.
    """
    center = _vector(centroid, "centroid")
    sizes = _sizes(axes_lengths, "axes_lengths")
    axes = _matrix(normalized_axes, "normalized_axes")
    R = _rotation(axes.T, "normalized_axes", allow_reflection=True)
    return _box(center, sizes, R)


def from_aabb(min: ArrayLike, max: ArrayLike) -> np.ndarray:
    """Canonical box (angles 0) from an axis-aligned box's ``min`` and ``max`` corners."""
    lo = _vector(min, "min")
    hi = _vector(max, "max")
    if np.any(hi < lo):
        raise ValueError(
            f"max must be >= min on every axis, got min={lo.tolist()} max={hi.tolist()}"
        )
    return np.concatenate([(lo + hi) / 2.0, hi - lo, np.zeros(3)]).astype(np.float64)


# Corner index pairs of the four parallel edges along each local axis (vst corner order).
_AXIS_EDGES = (
    ((0, 1), (3, 2), (4, 5), (7, 6)),  # local X
    ((0, 3), (1, 2), (4, 7), (5, 6)),  # local Y
    ((0, 4), (1, 5), (2, 6), (3, 7)),  # local Z
)


def from_corners(corners: ArrayLike, atol: float = CORNER_ATOL) -> np.ndarray:
    """Canonical box from its 8 corners ``(8, 3)`` in vst's corner order (see ``boxes``).

    The centre is the corner mean; each local axis and size comes from the mean of its four
    parallel edges, and the rotation is the best-fitting proper rotation. Raises ValueError if the
    corners are not a box in that order within ``atol`` metres (plus ``1e-6`` times the largest
    coordinate magnitude), e.g. skewed, non-rectangular, mirrored or shuffled corners.
    """
    try:
        pts = np.asarray(corners, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"corners must be an (8, 3) array, got {corners!r}") from exc
    if pts.shape != (8, 3):
        raise ValueError(f"corners must have shape (8, 3), got {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise ValueError("corners must be finite")
    center = pts.mean(axis=0)
    edges = np.stack(
        [np.mean([pts[j] - pts[i] for i, j in pairs], axis=0) for pairs in _AXIS_EDGES], axis=1
    )  # columns: mean edge vector along local X, Y, Z
    sizes = np.linalg.norm(edges, axis=0)
    # Orthogonal Procrustes: rotation R minimising ||R @ diag(sizes) - edges||.
    R = _nearest_rotation(edges * sizes[None, :])
    box = _box(center, sizes, R)
    # check against the fitted rotation itself: the returned angles are the canonical spelling,
    # whose corner order may start elsewhere
    fitted = center + (CORNER_SIGNS * (sizes / 2.0)) @ R.T
    err = float(np.max(np.abs(fitted - pts)))
    tol = atol + 1e-6 * float(np.max(np.abs(pts)))
    if err > tol:
        mirrored = np.all(sizes > tol) and np.linalg.det(edges) < 0
        why = " (mirrored: left-handed corner order)" if mirrored else ""
        raise ValueError(
            f"corners are not a box in vst corner order{why}: the best-fitting box misses a "
            f"corner by {err:.3g} m > tolerance {tol:.3g} m"
        )
    return box
