"""Relative camera motion between two frames, decomposed against gravity.

The one decomposition used by ``mi_camera_motion``, ``mi_scene_caption``'s motion sentence and
:func:`vst.engine.teacher.camera_context`. Conventions (metres, degrees; camera frame X right,
Y down, Z forward; scene world right-handed with +Z up):

* Attitude of one camera (:func:`camera_attitudes`): ``(heading, pitch, roll)``, the intrinsic
  ``"YXZ"`` angles of the camera's axes in a gravity-levelled frame (Y = world down): heading
  about the world vertical (> 0 turned RIGHT, clockwise seen from above), pitch of the optical
  axis against the horizon (> 0 looking UP), roll about the optical axis against gravity (> 0
  CLOCKWISE seen from behind the camera: its X axis dips toward the ground; the picture then
  turns counter-clockwise). Defined while the optical axis keeps a horizontal component of at
  least :data:`LEVEL_MIN_HORIZONTAL` (|pitch| below about 84 degrees).
* Rotation from camera 1 to camera 2 (``Motion.angles``): ``pan`` = heading 2 - heading 1
  (a turn about the world vertical, in (-180, 180]), ``tilt`` = pitch 2 - pitch 1, ``roll`` =
  roll 2 - roll 1 (in (-180, 180]); signs as above. A pan about the vertical is a pure pan
  whatever the cameras' pitch, and shows no tilt or roll.
* Translation (``Motion.translation``): camera 2's centre minus camera 1's in camera 1's
  levelled frame (axes: its horizontal right, world down, its horizontal heading): x > 0
  RIGHT and z > 0 FORWARD on the floor plane, y > 0 DOWN along gravity (y < 0 is up).
* Either is None when the camera(s) it needs look (almost) straight up or down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "LEVEL_MIN_HORIZONTAL",
    "ROTATION_AXES",
    "Motion",
    "camera_attitudes",
    "camera_motion",
    "camera_motions",
    "level_points",
]

ROTATION_AXES: tuple[str, ...] = ("pan", "tilt", "roll")
"""The order of ``Motion.angles``."""

LEVEL_MIN_HORIZONTAL = 0.1
"""A camera's optical axis must keep at least this horizontal component (|cos pitch|) for its
heading, roll and levelled frame to be defined."""

_WORLD_LEVEL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]).T
"""A fixed levelled frame (columns X = world +X, Y = world down, Z = world +Y): headings are
measured from world +Y toward world +X. Only heading differences are ever used."""


def _wrap(deg: np.ndarray) -> np.ndarray:
    """Angles wrapped to (-180, 180] degrees."""
    out = np.mod(deg + 180.0, 360.0) - 180.0
    return np.where(out == -180.0, 180.0, out)


def camera_attitudes(rotations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(angles, defined)`` of cameras with rotations ``rotations`` (N, 3, 3; camera-to-world,
    world Z up): ``angles`` (N, 3) = heading, pitch, roll in degrees (see the module docstring;
    heading from world +Y toward +X), ``defined`` (N,) False where the optical axis is within
    :data:`LEVEL_MIN_HORIZONTAL` of vertical (heading and roll are then meaningless)."""
    R = np.asarray(rotations, dtype=np.float64)
    A = np.einsum("ji,njk->nik", _WORLD_LEVEL, R)  # the camera axes in the levelled frame
    # A = Ry(heading) Rx(pitch) Rz(roll): A[1, 2] = -sin(pitch),
    # A[0, 2] / A[2, 2] = tan(heading), A[1, 0] / A[1, 1] = tan(roll)
    pitch = np.degrees(np.arcsin(np.clip(-A[:, 1, 2], -1.0, 1.0)))
    heading = np.degrees(np.arctan2(A[:, 0, 2], A[:, 2, 2]))
    roll = np.degrees(np.arctan2(A[:, 1, 0], A[:, 1, 1]))
    defined = np.hypot(A[:, 0, 2], A[:, 2, 2]) >= LEVEL_MIN_HORIZONTAL
    return np.stack([heading, pitch, roll], axis=1), defined


@dataclass(frozen=True)
class Motion:
    """Camera 2 relative to camera 1, against gravity (see the module docstring): ``angles`` =
    (pan, tilt, roll) degrees or None, ``translation`` = (x right, y down, z forward) metres in
    camera 1's levelled frame or None, ``distance`` = distance between the camera centres (m),
    ``rotation_deg`` = the total rotation angle between the cameras (degrees)."""

    angles: tuple[float, float, float] | None
    translation: tuple[float, float, float] | None
    distance: float
    rotation_deg: float

    def angle(self, axis: str) -> float:
        """The ``pan`` / ``tilt`` / ``roll`` angle (degrees); ValueError when undefined."""
        if self.angles is None:
            raise ValueError("the rotation is undefined (a camera looks straight up or down)")
        return self.angles[ROTATION_AXES.index(axis)]


def _to_level(heading: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """World vectors (N, 3) on the levelled axes (right, down, forward) of cameras with
    headings ``heading`` (N,) degrees (from world +Y toward +X)."""
    h = np.radians(heading)
    sin, cos = np.sin(h), np.cos(h)
    x, y, z = vectors[:, 0], vectors[:, 1], vectors[:, 2]
    return np.stack([x * cos - y * sin, -z, x * sin + y * cos], axis=1)


def level_points(cam_to_world: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """World points (N, 3) relative to a camera on its levelled axes (x right and z forward
    along the floor from where it faces, y down along gravity; metres); None when the camera
    looks (almost) straight up or down."""
    T = np.asarray(cam_to_world, dtype=np.float64)
    att, ok = camera_attitudes(T[None, :3, :3])
    if not ok[0]:
        return None
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return _to_level(np.repeat(att[0, 0], len(pts)), pts - T[:3, 3])


def camera_motion(cam_to_world_1: np.ndarray, cam_to_world_2: np.ndarray) -> Motion:
    """The :class:`Motion` from camera 1 to camera 2 (4x4 camera-to-world poses)."""
    return camera_motions([(cam_to_world_1, cam_to_world_2)])[0]


def camera_motions(pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[Motion]:
    """:func:`camera_motion` of many (camera 1, camera 2) pose pairs at once (vectorised)."""
    if not pairs:
        return []
    T1 = np.stack([a for a, _ in pairs]).astype(np.float64)
    T2 = np.stack([b for _, b in pairs]).astype(np.float64)
    R1, R2 = T1[:, :3, :3], T2[:, :3, :3]
    att1, ok1 = camera_attitudes(R1)
    att2, ok2 = camera_attitudes(R2)
    diff = att2 - att1
    angles = np.stack([_wrap(diff[:, 0]), diff[:, 1], _wrap(diff[:, 2])], axis=1) + 0.0
    d = T2[:, :3, 3] - T1[:, :3, 3]
    level = _to_level(att1[:, 0], d)
    cos_rot = (np.einsum("nji,nji->n", R1, R2) - 1.0) / 2.0  # trace(R1^T R2)
    totals = np.degrees(np.arccos(np.clip(cos_rot, -1.0, 1.0)))
    dist = np.linalg.norm(d, axis=1)
    out = []
    for k in range(len(pairs)):
        out.append(
            Motion(
                tuple(float(v) for v in angles[k]) if ok1[k] and ok2[k] else None,
                tuple(float(v) + 0.0 for v in level[k]) if ok1[k] else None,
                float(dist[k]),
                float(totals[k]),
            )
        )
    return out
