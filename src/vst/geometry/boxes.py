"""9-DoF oriented 3D boxes: the one box format every part of vst speaks.

Conventions (FACTS.md, byte-compatible with released VST models):

* A box is ``[x, y, z, x_size, y_size, z_size, pitch, yaw, roll]``: centre and sizes in metres,
  angles in DEGREES. Arrays of boxes have shape ``(N, 9)``.
* In the camera frame X points right, Y down, Z forward. The same parametrisation is used in a
  scene's world frame (then the angles are about the world axes).
* ``x_size, y_size, z_size`` are the box's extents along its own local X, Y, Z axes (local X is
  front-back, Y vertical, Z lateral for upright objects).
* Box-to-frame rotation ``R = Rotation.from_euler("xyz", [pitch, yaw, roll], degrees=True)``
  (lower-case: extrinsic rotations about the fixed X, then Y, then Z axis), i.e.
  ``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)``. A local point ``p`` maps to ``center + R @ p``.

Corner order of :func:`box3d_corners` (signs of the local half-sizes, X/Y/Z)::

    0 (-,-,-)  1 (+,-,-)  2 (+,+,-)  3 (-,+,-)
    4 (-,-,+)  5 (+,-,+)  6 (+,+,+)  7 (-,+,+)

Corners 0-3 form the local ``-Z`` face and 4-7 the ``+Z`` face, each going round the face;
corner ``i`` and ``i + 4`` are joined by an edge along local Z.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

EULER_ORDER = "xyz"
"""scipy Euler order of the box angles: extrinsic X (pitch), Y (yaw), Z (roll)."""

CORNER_SIGNS = np.array(
    [
        [-1, -1, -1],
        [1, -1, -1],
        [1, 1, -1],
        [-1, 1, -1],
        [-1, -1, 1],
        [1, -1, 1],
        [1, 1, 1],
        [-1, 1, 1],
    ],
    dtype=np.float64,
)
"""Local corner signs in the documented corner order, shape (8, 3)."""

BOX_EDGES = np.array(
    [[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4], [0, 4], [1, 5], [2, 6], [3, 7]]
)
"""The 12 edges of a box as pairs of corner indices."""


def as_boxes(boxes: np.ndarray | list) -> np.ndarray:
    """Return ``boxes`` as a float64 array of shape (N, 9); a single (9,) box becomes (1, 9)."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 9:
        raise ValueError(
            f"boxes must have shape (N, 9) [x, y, z, x_size, y_size, z_size, pitch, yaw, roll], "
            f"got {arr.shape}"
        )
    return arr


def euler_to_matrix(angles_deg: np.ndarray) -> np.ndarray:
    """Rotation matrices (N, 3, 3) from (N, 3) ``[pitch, yaw, roll]`` degrees: the same as scipy
    ``Rotation.from_euler("xyz", ..., degrees=True)``, i.e. ``Rz(roll) @ Ry(yaw) @ Rx(pitch)``,
    written out in closed form (scipy's object set-up costs ~70 us per call, and rewards build
    rotations for thousands of small box sets)."""
    angles = np.asarray(angles_deg, dtype=np.float64)
    single = angles.ndim == 1
    a = np.radians(angles.reshape(-1, 3))
    cx, cy, cz = np.cos(a[:, 0]), np.cos(a[:, 1]), np.cos(a[:, 2])
    sx, sy, sz = np.sin(a[:, 0]), np.sin(a[:, 1]), np.sin(a[:, 2])
    mats = np.empty((len(a), 3, 3))
    mats[:, 0, 0] = cz * cy
    mats[:, 0, 1] = cz * sy * sx - sz * cx
    mats[:, 0, 2] = cz * sy * cx + sz * sx
    mats[:, 1, 0] = sz * cy
    mats[:, 1, 1] = sz * sy * sx + cz * cx
    mats[:, 1, 2] = sz * sy * cx - cz * sx
    mats[:, 2, 0] = -sy
    mats[:, 2, 1] = cy * sx
    mats[:, 2, 2] = cy * cx
    return mats[0] if single else mats


def matrix_to_euler(R: np.ndarray) -> np.ndarray:
    """``[pitch, yaw, roll]`` degrees from rotation matrices (3, 3) or (N, 3, 3).

    Inverse of :func:`euler_to_matrix`; yaw is in [-90, 90], pitch and roll in (-180, 180].
    At gimbal lock (yaw = +-90) scipy picks roll = 0; the matrix is still reproduced exactly.
    """
    mats = np.asarray(R, dtype=np.float64)
    single = mats.ndim == 2
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Gimbal lock detected")
        angles = Rotation.from_matrix(mats.reshape(-1, 3, 3)).as_euler(EULER_ORDER, degrees=True)
    return angles[0] if single else angles


def box_rotations(boxes: np.ndarray) -> np.ndarray:
    """Box-to-frame rotation matrices, shape (N, 3, 3)."""
    return euler_to_matrix(as_boxes(boxes)[:, 6:9])


def box3d_corners(boxes: np.ndarray) -> np.ndarray:
    """The 8 corners of each box, shape (N, 8, 3), in the corner order of the module docstring."""
    arr = as_boxes(boxes)
    local = CORNER_SIGNS[None, :, :] * (arr[:, None, 3:6] / 2.0)
    rot = box_rotations(arr)
    return np.einsum("nij,nkj->nki", rot, local) + arr[:, None, 0:3]


def box3d_volume(boxes: np.ndarray) -> np.ndarray:
    """Volumes (N,) in cubic metres; degenerate boxes (non-positive or non-finite sizes) give 0."""
    sizes = as_boxes(boxes)[:, 3:6]
    ok = np.all(np.isfinite(sizes) & (sizes > 0), axis=1)
    return np.where(ok, np.prod(np.where(ok[:, None], sizes, 0.0), axis=1), 0.0)


_BOX_SYMMETRIES = np.array(
    [
        np.diag([1.0, 1.0, 1.0]),
        np.diag([1.0, -1.0, -1.0]),
        np.diag([-1.0, 1.0, -1.0]),
        np.diag([-1.0, -1.0, 1.0]),
    ]
)
"""The half-turns about the box's own axes: they map a box onto itself with the same sizes."""


def canonical_euler(rotations: np.ndarray) -> np.ndarray:
    """``[pitch, yaw, roll]`` degrees (N, 3) of the box orientation, chosen among the four
    equivalent rotations ``R @ D`` (``D`` a half-turn about a local axis, which leaves the box and
    its sizes unchanged) to minimise ``|pitch| + |roll|``, then ``|yaw|``.

    So an upright box seen by a level camera gets pitch = roll = 0 and yaw in [-90, 90] instead
    of an equivalent like (178, 7, 178); the VST answer format needs one spelling per box.
    """
    mats = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
    cands = np.einsum("nij,kjl->nkil", mats, _BOX_SYMMETRIES)  # (N, 4, 3, 3)
    angles = matrix_to_euler(cands.reshape(-1, 3, 3)).reshape(-1, 4, 3)
    # round the score so float noise cannot flip a tie between equivalent spellings
    score = np.round(np.abs(angles[..., 0]) + np.abs(angles[..., 2]), 6) * 1e3 + np.abs(
        angles[..., 1]
    )
    best = np.argmin(score, axis=1)
    return angles[np.arange(len(mats)), best]


def make_boxes(centers: np.ndarray, sizes: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Assemble (N, 9) boxes from centres (N, 3), sizes (N, 3) and rotation matrices (N, 3, 3);
    the angles are the canonical spelling of :func:`canonical_euler`."""
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 3)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 3)
    angles = canonical_euler(rotations)
    return np.concatenate([centers, sizes, angles], axis=1)


def canonicalize_boxes(boxes: np.ndarray) -> np.ndarray:
    """The same boxes (same corners as a set, same sizes) with canonical Euler angles."""
    arr = as_boxes(boxes)
    return make_boxes(arr[:, 0:3], arr[:, 3:6], box_rotations(arr))


def transform_boxes(boxes: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Move boxes from frame A to frame B with the 4x4 rigid transform ``T`` (A -> B).

    Centres map as ``R_T @ c + t_T``, orientations as ``R_T @ R_box``; the Euler angles are
    re-derived from the new rotation (canonical spelling, see :func:`canonical_euler`). Sizes are
    unchanged. ``T`` must be rigid (no scale).
    """
    arr = as_boxes(boxes)
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f"T must be a 4x4 rigid transform, got shape {T.shape}")
    R_T, t_T = T[:3, :3], T[:3, 3]
    if not np.allclose(R_T @ R_T.T, np.eye(3), atol=1e-6) or np.linalg.det(R_T) < 0:
        raise ValueError("T's rotation block is not a proper rotation (orthonormal, det +1)")
    centers = arr[:, 0:3] @ R_T.T + t_T
    rot = np.einsum("ij,njk->nik", R_T, box_rotations(arr))
    return make_boxes(centers, arr[:, 3:6], rot)  # canonical angles


ZUP_TO_CAMERA_AXES = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
"""Change of local box axes from the Z-up world convention (local X front, Y left, Z up: how
scene objects are stored, as in EmbodiedScan and ScanNet) to the VST camera convention (local X
front, Y down, Z lateral). Columns are the new local axes in old local coordinates:
X' = X, Y' = -Z, Z' = Y (a proper rotation, det +1)."""


def reorient_box_axes(boxes: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Describe the same boxes with other local axes: ``axes`` (3, 3) holds the new local axes
    as columns in old local coordinates (a signed permutation with det +1). The corners are
    unchanged as a set; sizes are permuted and Euler angles re-derived."""
    arr = as_boxes(boxes)
    P = np.asarray(axes, dtype=np.float64)
    if P.shape != (3, 3) or not np.allclose(np.abs(P).sum(0), 1) or np.linalg.det(P) < 0.5:
        raise ValueError("axes must be a 3x3 signed permutation matrix with det +1")
    sizes = np.abs(arr[:, 3:6] @ P)
    return make_boxes(arr[:, 0:3], sizes, box_rotations(arr) @ P)


def world_boxes_to_camera(boxes_world: np.ndarray, world_to_cam: np.ndarray) -> np.ndarray:
    """Z-up world boxes (local Z up) -> VST camera-frame boxes (local Y vertical, Z lateral).

    For an upright object seen by a level camera the result has pitch = roll = 0, ``y_size`` is
    the object's height and yaw its heading about the camera's (downward) Y axis.
    """
    return reorient_box_axes(transform_boxes(boxes_world, world_to_cam), ZUP_TO_CAMERA_AXES)


@dataclass(frozen=True)
class Box3D:
    """One 9-DoF box: centre (m), size along local X/Y/Z (m), ``[pitch, yaw, roll]`` (degrees)."""

    center: tuple[float, float, float]
    size: tuple[float, float, float]
    angles: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def from_array(cls, box: np.ndarray | list) -> Box3D:
        """Build from a (9,) array."""
        b = as_boxes(box)
        if b.shape[0] != 1:
            raise ValueError(f"Box3D.from_array wants one box, got {b.shape[0]}")
        v = [float(x) for x in b[0]]
        return cls(center=(v[0], v[1], v[2]), size=(v[3], v[4], v[5]), angles=(v[6], v[7], v[8]))

    def to_array(self) -> np.ndarray:
        """The (9,) array form."""
        return np.array([*self.center, *self.size, *self.angles], dtype=np.float64)

    @property
    def rotation(self) -> np.ndarray:
        """Box-to-frame rotation matrix (3, 3)."""
        return euler_to_matrix(np.array(self.angles))

    def corners(self) -> np.ndarray:
        """The 8 corners, shape (8, 3)."""
        return box3d_corners(self.to_array())[0]

    @property
    def volume(self) -> float:
        """Volume in cubic metres (0 when degenerate)."""
        return float(box3d_volume(self.to_array())[0])
