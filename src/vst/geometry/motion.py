"""Relative camera motion between two frames, decomposed against gravity.

The one decomposition used by ``mi_camera_motion``, ``mi_scene_caption``'s motion sentence and
:func:`vst.engine.teacher.camera_context`. Conventions (metres, degrees; camera frame X right,
Y down, Z forward; scene world right-handed with +Z up):

* Attitude of one camera (:func:`camera_attitude`): ``(heading, pitch, roll)``, the intrinsic
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

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "LEVEL_MIN_HORIZONTAL",
    "ROTATION_AXES",
    "Motion",
    "camera_attitude",
    "camera_motion",
    "camera_motions",
    "level_points",
]

ROTATION_AXES: tuple[str, ...] = ("pan", "tilt", "roll")
"""The order of ``Motion.angles``."""

LEVEL_MIN_HORIZONTAL = 0.1
"""A camera's optical axis must keep at least this horizontal component (|cos pitch|) for its
heading, roll and levelled frame to be defined."""


def _wrap(deg: float) -> float:
    """An angle wrapped to (-180, 180] degrees."""
    out = math.fmod(deg + 180.0, 360.0)
    out = out + 360.0 if out < 0 else out
    return 180.0 if out == 0.0 else out - 180.0


def camera_attitude(cam_to_world: np.ndarray) -> tuple[float, float, float] | None:
    """``(heading, pitch, roll)`` degrees of a camera (4x4 or 3x3 camera-to-world, world Z up;
    see the module docstring; heading from world +Y toward +X, only differences are used), or
    None when its optical axis is within :data:`LEVEL_MIN_HORIZONTAL` of vertical."""
    R = np.asarray(cam_to_world, dtype=np.float64)[:3, :3].tolist()
    # The camera axes in the levelled frame (X = world X, Y = world down, Z = world Y) are
    # A = [R[0]; -R[2]; R[1]] (rows), and A = Ry(heading) Rx(pitch) Rz(roll) gives
    # A[1, 2] = -sin(pitch), A[0, 2] / A[2, 2] = tan(heading), A[1, 0] / A[1, 1] = tan(roll).
    fx, fy, fz = R[0][2], R[1][2], R[2][2]
    if math.hypot(fx, fy) < LEVEL_MIN_HORIZONTAL:
        return None
    return (
        math.degrees(math.atan2(fx, fy)),
        math.degrees(math.asin(max(-1.0, min(1.0, fz)))),
        math.degrees(math.atan2(-R[2][0], -R[2][1])),
    )


def _to_level(heading: float, vectors: np.ndarray) -> np.ndarray:
    """World vectors (N, 3) on the levelled axes (right, down, forward) of a camera with
    heading ``heading`` degrees (from world +Y toward +X)."""
    h = math.radians(heading)
    sin, cos = math.sin(h), math.cos(h)
    x, y, z = vectors[:, 0], vectors[:, 1], vectors[:, 2]
    return np.stack([x * cos - y * sin, -z, x * sin + y * cos], axis=1)


def level_points(cam_to_world: np.ndarray, points: Sequence[Sequence[float]]) -> np.ndarray | None:
    """World points (N, 3) relative to a camera on its levelled axes (x right and z forward
    along the floor from where it faces, y down along gravity; metres); None when the camera
    looks (almost) straight up or down."""
    att = camera_attitude(cam_to_world)
    if att is None:
        return None
    T = np.asarray(cam_to_world, dtype=np.float64)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return _to_level(att[0], pts - T[:3, 3])


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


def _motion(
    T1: list[list[float]],
    att1: tuple[float, float, float] | None,
    T2: list[list[float]],
    att2: tuple[float, float, float] | None,
) -> Motion:
    """The motion between two poses (4x4 as nested lists) with their attitudes."""
    d = [T2[i][3] - T1[i][3] for i in range(3)]
    angles = translation = None
    if att1 is not None:
        h = math.radians(att1[0])
        sin, cos = math.sin(h), math.cos(h)
        translation = (d[0] * cos - d[1] * sin, -d[2] + 0.0, d[0] * sin + d[1] * cos)
        if att2 is not None:
            angles = (
                _wrap(att2[0] - att1[0]),
                att2[1] - att1[1] + 0.0,
                _wrap(att2[2] - att1[2]),
            )
    trace = sum(T1[i][j] * T2[i][j] for i in range(3) for j in range(3))  # trace(R1^T R2)
    total = math.degrees(math.acos(max(-1.0, min(1.0, (trace - 1.0) / 2.0))))
    return Motion(angles, translation, math.sqrt(sum(v * v for v in d)), total)


def camera_motion(cam_to_world_1: np.ndarray, cam_to_world_2: np.ndarray) -> Motion:
    """The :class:`Motion` from camera 1 to camera 2 (4x4 camera-to-world poses)."""
    return camera_motions([(cam_to_world_1, cam_to_world_2)])[0]


def camera_motions(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[Motion]:
    """:func:`camera_motion` of many (camera 1, camera 2) pose pairs; each distinct pose array
    is decomposed once."""
    cache: dict[int, tuple[list[list[float]], tuple[float, float, float] | None]] = {}

    def pose(T: np.ndarray) -> tuple[list[list[float]], tuple[float, float, float] | None]:
        if id(T) not in cache:
            cache[id(T)] = (np.asarray(T, dtype=np.float64).tolist(), camera_attitude(T))
        return cache[id(T)]

    return [_motion(*pose(a), *pose(b)) for a, b in pairs]
