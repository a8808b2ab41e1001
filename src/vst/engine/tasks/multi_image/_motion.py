"""Relative camera motion between two frames, and its labels (used by ``mi_camera_motion``).

Conventions (camera frame X right, Y down, Z forward, metres, degrees):

* Rotation: ``(pan, tilt, roll)`` of camera 2's orientation in camera 1's frame, split as
  intrinsic ``"YXZ"`` Euler angles by :func:`vst.geometry.cameras.rotation_to_pan_tilt_roll`:
  pan > 0 turns RIGHT, tilt > 0 tilts UP, roll > 0 rolls CLOCKWISE seen from behind the camera
  (the picture then turns counter-clockwise).
* Translation: camera 2's centre in camera 1's frame, ``(x, y, z)``: x > 0 RIGHT, y > 0 DOWN,
  z > 0 FORWARD. :func:`level_translation` gives the same displacement in camera 1's
  gravity-levelled frame (X the horizontal right, Y world down, Z the horizontal heading), using
  the scene's Z-up world; a label is asked only when both readings agree (a camera looking
  down that walks forward also moves "up" along its own -Y: such motions are skipped as
  ambiguous).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from vst.geometry.cameras import MOTION_EULER_ORDER, relative_pose, rotation_to_pan_tilt_roll

ROTATION_AXES: tuple[str, ...] = ("pan", "tilt", "roll")
TRANSLATION_AXES: tuple[str, ...] = ("x", "y", "z")

ROTATION_WORDS: dict[str, tuple[str, str]] = {
    "pan": ("left", "right"),
    "tilt": ("down", "up"),
    "roll": ("counter-clockwise", "clockwise"),
}
"""``(negative, positive)`` one-word answers per rotation axis."""

TRANSLATION_WORDS: dict[str, tuple[str, str]] = {
    "x": ("left", "right"),
    "y": ("up", "down"),
    "z": ("backward", "forward"),
}
"""``(negative, positive)`` one-word answers per translation axis (camera axes: +Y is down)."""

ROTATION_PHRASES: dict[str, tuple[str, str]] = {
    "pan": ("panning to the left", "panning to the right"),
    "tilt": ("tilting downward", "tilting upward"),
    "roll": ("rolling counter-clockwise", "rolling clockwise"),
}
"""``(negative, positive)`` option texts per rotation axis."""

TRANSLATION_ADVERBS: dict[str, tuple[str, str]] = {
    "x": ("leftward", "rightward"),
    "y": ("upward", "downward"),
    "z": ("backward", "forward"),
}
"""``(negative, positive)`` direction words per translation axis, joined into option texts."""

LEVEL_MIN_HORIZONTAL = 0.1
"""Camera 1's optical axis must keep at least this horizontal component (|cos pitch|) for its
levelled frame to be defined (otherwise translation labels are not asked)."""


def round_half_up(value: float, decimals: int = 0) -> float:
    """``value`` rounded half away from zero to ``decimals`` places (not banker's rounding)."""
    scale = 10.0**decimals
    return math.copysign(math.floor(abs(value) * scale + 0.5) / scale, value)


def level_frame(cam_to_world: np.ndarray) -> np.ndarray | None:
    """3x3 rotation whose columns are camera 1's levelled axes in world coordinates (X the
    horizontal right, Y world down, Z the horizontal heading); None when the camera looks
    (almost) straight up or down. The world frame is Z up."""
    z = np.array([cam_to_world[0, 2], cam_to_world[1, 2], 0.0])
    n = float(np.linalg.norm(z))
    if n < LEVEL_MIN_HORIZONTAL:
        return None
    z /= n
    y = np.array([0.0, 0.0, -1.0])
    x = np.cross(y, z)
    return np.stack([x, y, z], axis=1)


def level_translation(cam_to_world_1: np.ndarray, cam_to_world_2: np.ndarray) -> np.ndarray | None:
    """Camera 2's centre minus camera 1's, in camera 1's levelled frame (see
    :func:`level_frame`), metres; None when that frame is undefined."""
    R = level_frame(cam_to_world_1)
    if R is None:
        return None
    return R.T @ (cam_to_world_2[:3, 3] - cam_to_world_1[:3, 3])


@dataclass(frozen=True)
class Motion:
    """Camera 2 relative to camera 1: ``angles`` = (pan, tilt, roll) degrees, ``translation``
    = (x, y, z) in camera 1's frame (m), ``level`` = the same in its levelled frame (or None),
    ``rotation_deg`` = the total rotation angle (degrees)."""

    angles: tuple[float, float, float]
    translation: tuple[float, float, float]
    level: tuple[float, float, float] | None
    rotation_deg: float

    @property
    def distance(self) -> float:
        """Distance between the two camera centres (m)."""
        return float(np.linalg.norm(self.translation))

    def angle(self, axis: str) -> float:
        return self.angles[ROTATION_AXES.index(axis)]


def camera_motion(cam_to_world_1: np.ndarray, cam_to_world_2: np.ndarray) -> Motion:
    """The :class:`Motion` from camera 1 to camera 2 (4x4 camera-to-world poses)."""
    rel = relative_pose(cam_to_world_1, cam_to_world_2)
    pan, tilt, roll = rotation_to_pan_tilt_roll(rel[:3, :3])
    cos = (float(np.trace(rel[:3, :3])) - 1.0) / 2.0
    total = math.degrees(math.acos(min(1.0, max(-1.0, cos))))
    lev = level_translation(cam_to_world_1, cam_to_world_2)
    return Motion(
        (pan, tilt, roll),
        tuple(float(v) for v in rel[:3, 3]),
        None if lev is None else tuple(float(v) for v in lev),
        total,
    )


def camera_motions(pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[Motion]:
    """:func:`camera_motion` of many (camera 1, camera 2) pose pairs at once: the relative
    poses and their pan/tilt/roll in one batched scipy call (same values, same conventions)."""
    if not pairs:
        return []
    T1 = np.stack([a for a, _ in pairs]).astype(np.float64)
    T2 = np.stack([b for _, b in pairs]).astype(np.float64)
    R1, t1 = T1[:, :3, :3], T1[:, :3, 3]
    R2, t2 = T2[:, :3, :3], T2[:, :3, 3]
    R_rel = np.einsum("nji,njk->nik", R1, R2)  # R1^T R2
    t_rel = np.einsum("nji,nj->ni", R1, t2 - t1)  # R1^T (t2 - t1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Gimbal lock detected")
        angles = Rotation.from_matrix(R_rel).as_euler(MOTION_EULER_ORDER, degrees=True)
    cos = (np.trace(R_rel, axis1=1, axis2=2) - 1.0) / 2.0
    totals = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    out = []
    for k, (a, b) in enumerate(pairs):
        lev = level_translation(a, b)
        out.append(
            Motion(
                (float(angles[k, 0]), float(angles[k, 1]), float(angles[k, 2])),
                (float(t_rel[k, 0]), float(t_rel[k, 1]), float(t_rel[k, 2])),
                None if lev is None else tuple(float(v) for v in lev),
                float(totals[k]),
            )
        )
    return out


def rotation_sign(angles: tuple[float, ...], axis: str, min_angle: float, dominance: float) -> int:
    """+1 / -1 when rotation ``axis`` is clear: at least ``min_angle`` degrees and every other
    axis at most ``dominance`` times it; 0 otherwise."""
    k = ROTATION_AXES.index(axis)
    a = abs(angles[k])
    if a < min_angle:
        return 0
    if any(abs(v) > dominance * a for j, v in enumerate(angles) if j != k):
        return 0
    return 1 if angles[k] > 0 else -1


def translation_signs(
    t: tuple[float, ...], min_m: float, include_rel: float, still_m: float, still_rel: float
) -> tuple[int | None, ...]:
    """Per axis: +1 / -1 when the component is clear (>= ``min_m`` and >= ``include_rel`` of the
    largest component), 0 when it is still (<= ``still_m`` or <= ``still_rel`` of the largest),
    None in between (ambiguous)."""
    main = max(abs(v) for v in t)
    out: list[int | None] = []
    for v in t:
        a = abs(v)
        if a >= min_m and a >= include_rel * main:
            out.append(1 if v > 0 else -1)
        elif a <= still_m or a <= still_rel * main:
            out.append(0)
        else:
            out.append(None)
    return tuple(out)


def direction_text(signs: tuple[int, ...]) -> str:
    """``moving rightward and forward`` from per-axis signs (x, y, z order)."""
    words = [
        TRANSLATION_ADVERBS[axis][1 if s > 0 else 0]
        for axis, s in zip(TRANSLATION_AXES, signs, strict=True)
        if s
    ]
    if not words:
        raise ValueError("no motion to describe")
    if len(words) == 1:
        return f"moving {words[0]}"
    return "moving " + ", ".join(words[:-1]) + " and " + words[-1]


def all_directions(max_axes: int = 2) -> list[tuple[int, int, int]]:
    """Every sign triple with 1..``max_axes`` non-zero axes, in a fixed order."""
    out = []
    for sx in (0, 1, -1):
        for sy in (0, 1, -1):
            for sz in (0, 1, -1):
                n = (sx != 0) + (sy != 0) + (sz != 0)
                if 1 <= n <= max_axes:
                    out.append((sx, sy, sz))
    return out
