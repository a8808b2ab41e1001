"""Camera sampling for the synthetic source: single views, multi-view sets, video walk-throughs.

Poses are 4x4 camera-to-world matrices (camera X right, Y down, Z forward; world Z up). Views
are scored with a :data:`Probe`: a function that casts a coarse grid of rays from a pose and
returns how many rays hit each object (object id -> rays) and the median z-depth, so a view is
chosen by what it actually sees (occlusion included) before anything is rendered.

Videos are room scans, as in VSI-Bench's walk-throughs (:meth:`CameraSampler.video`): a walk
along a shortest free route (:mod:`.routes`) between two far-apart spots, at a steady walking
pace (<= :data:`SCAN_STEP` per frame), at eye height, pitched down :data:`SCAN_PITCH`, turning
steadily one way (at most :data:`MAX_TURN` per frame and :data:`SCAN_SWEEP` in all): the camera
first looks ahead along the walk and ends looking back about where it came from. Candidate
scans are scored by :data:`ScanScore` (the share of the floor their frames show) and the best
is kept. When no route exists the older walk (a spline looking ahead and toward the room) and
then a pan in place are the fallbacks.

Multi-view motions (recorded per pair of consecutive views in ``motion``):

* ``pan``: turn about the world vertical through the camera (+ = right);
* ``tilt``: about the camera's X axis (+ = up); ``roll``: about the optical axis
  (+ = clockwise seen from behind the camera, as :mod:`vst.geometry.cameras`);
* ``right``/``up``/``forward`` translations (metres; - = left/down/backward): right along the
  camera's horizontal X, up along world Z, forward along the horizontal optical axis;
* combinations of two of these.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vst.geometry.cameras import (
    pan_tilt_roll_to_rotation,
    relative_pose,
    rotation_to_pan_tilt_roll,
)
from vst.scenes.sources.synthetic.layout import Layout, polygons_overlap, rect_corners
from vst.scenes.sources.synthetic.routes import FreeGrid, far_route

Probe = Callable[[np.ndarray], tuple[dict[int, int], float]]
"""pose -> (rays hitting each object id, median z-depth of the rays in metres)."""

ScanScore = Callable[[list[np.ndarray]], tuple[float, float]]
"""poses of a video -> (fraction 0..1 of the room's floor the frames show, the smallest of the
frames' median z-depths in metres)."""

MIN_RAYS = 2
"""Rays (of the probe grid) an object needs to count as visible when choosing views."""

EYE_HEIGHT = (1.2, 1.8)
MAX_TURN = math.radians(12.0)
"""Largest heading change between consecutive video frames."""
WALL_MARGIN = 0.4
OBJECT_MARGIN = 0.35
PATH_WALL_MARGIN = 0.3
PATH_OBJECT_MARGIN = 0.25
"""Clearances (metres) of every point of a video path (looser than a standing spot's)."""

SCAN_STEP = 0.45
"""Longest walk (metres) between consecutive video frames."""
SCAN_PITCH = (22.0, 35.0)
"""Range of the scan's downward pitch (degrees): the floor up to the walls stays in view."""
SCAN_SWEEP = math.radians(170.0)
"""Largest total turn of a scan (not 180: the first and last frames never face exactly opposite
ways, a turn whose direction, left or right, nobody could tell)."""
SCAN_ROUTES = 16
"""Routes tried per scan (each with both turn directions)."""
SCAN_TARGET = 0.92
"""A scan scoring at least this floor share is taken at once."""
SCAN_MIN_DEPTH = 1.0
"""Every scan frame's median z-depth must reach this (metres; no staring at a wall)."""

MOTIONS = (
    "pan",
    "tilt",
    "roll",
    "right",
    "up",
    "forward",
    "pan+forward",
    "pan+right",
    "tilt+pan",
    "right+forward",
    "up+forward",
    "roll+pan",
)


def look_at(eye, target, roll_deg: float = 0.0) -> np.ndarray:
    """Camera-to-world pose at ``eye`` looking at ``target`` with the image upright (world Z
    up), then rolled by ``roll_deg`` (clockwise seen from behind)."""
    eye = np.asarray(eye, dtype=float)
    f = np.asarray(target, dtype=float) - eye
    f /= np.linalg.norm(f)
    right = np.cross(f, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-6:  # looking straight up/down
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(f, right)
    R = np.stack([right, down, f], axis=1)
    if roll_deg:
        R = R @ _rz(math.radians(roll_deg))
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = eye
    return T


def _rz(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass
class CameraSampler:
    """Samples poses in a furnished room; ``probe`` scores candidate views."""

    rng: np.random.Generator
    layout: Layout
    probe: Probe
    min_visible: int = 3
    tries: int = 40
    scan_score: ScanScore | None = None
    """Scores candidate room scans; None takes the first scan that fits."""
    _floor_fps: list[np.ndarray] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._floor_fps = [
            o.footprint()
            for o in self.layout.objects
            if o.placement != "wall_mount" and o.support is None
        ]

    # -- free space -------------------------------------------------------------------------
    def free_at(
        self, xy, wall_margin: float = WALL_MARGIN, object_margin: float = OBJECT_MARGIN
    ) -> bool:
        """True if a camera can stand at ``xy``: inside the room and clear of furniture."""
        if not self.layout.room.contains_point(xy, wall_margin):
            return False
        probe = rect_corners(float(xy[0]), float(xy[1]), 0.01, 0.01, 0.0)
        return not any(polygons_overlap(probe, fp, object_margin) for fp in self._floor_fps)

    def _free_xy(self) -> np.ndarray | None:
        x0, y0, x1, y1 = self.layout.room.bbox
        for _ in range(200):
            xy = self.rng.uniform([x0, y0], [x1, y1])
            if self.free_at(xy):
                return xy
        return None

    def _visible(self, counts: dict[int, int]) -> set[int]:
        return {k for k, n in counts.items() if n >= MIN_RAYS}

    # -- single views -----------------------------------------------------------------------
    def single_view(self) -> tuple[np.ndarray, set[int]]:
        """An eye-height view (1.2-1.8 m) looking into the room at furniture, with at least
        ``min_visible`` objects when possible (else the best candidate)."""
        best: tuple[int, np.ndarray, set[int]] | None = None
        objects = self.layout.objects
        for _ in range(self.tries):
            xy = self._free_xy()
            if xy is None:
                break
            eye = np.array([xy[0], xy[1], self.rng.uniform(*EYE_HEIGHT)])
            if objects and self.rng.random() < 0.8:
                b = objects[int(self.rng.integers(len(objects)))].box()
                target = b[:3] + self.rng.normal(0, 0.3, size=3) * [1, 1, 0.3]
                target[2] = min(target[2], eye[2] - 0.2)
            else:
                ang = self.rng.uniform(-math.pi, math.pi)
                target = eye + np.array(
                    [math.cos(ang) * 3, math.sin(ang) * 3, -self.rng.uniform(0.6, 1.4)]
                )
            if np.linalg.norm(target[:2] - eye[:2]) < 1.0:
                continue
            T = look_at(eye, target, float(self.rng.normal(0, 1.5)))
            counts, median = self.probe(T)
            if median < 1.0:
                continue
            vis = self._visible(counts)
            if best is None or len(vis) > best[0]:
                best = (len(vis), T, vis)
            if len(vis) >= self.min_visible:
                return T, vis
        if best is None:
            raise RuntimeError("no free spot for a camera in this room")
        return best[1], best[2]

    # -- multi-view -------------------------------------------------------------------------
    def _move(self, T: np.ndarray, kind: str) -> tuple[np.ndarray, dict]:
        rng = self.rng
        sign = lambda: float(rng.choice([-1.0, 1.0]))  # noqa: E731
        pan = tilt = roll = 0.0
        right = up = forward = 0.0
        for part in kind.split("+"):
            if part == "pan":
                pan = sign() * rng.uniform(15, 45)
            elif part == "tilt":
                tilt = sign() * rng.uniform(8, 22)
            elif part == "roll":
                roll = sign() * rng.uniform(5, 25)
            elif part == "right":
                right = sign() * rng.uniform(0.3, 1.2)
            elif part == "up":
                up = sign() * rng.uniform(0.15, 0.35)
            elif part == "forward":
                forward = sign() * rng.uniform(0.3, 1.2)
        R = T[:3, :3]
        x_h = np.array([R[0, 0], R[1, 0], 0.0])
        z_h = np.array([R[0, 2], R[1, 2], 0.0])
        x_h /= max(np.linalg.norm(x_h), 1e-9)
        z_h /= max(np.linalg.norm(z_h), 1e-9)
        t2 = T[:3, 3] + right * x_h + forward * z_h + np.array([0.0, 0.0, up])
        # pan about world vertical (+ = turn right = clockwise seen from above), then tilt about
        # the camera's own X and roll about its optical axis (signs of vst.geometry.cameras)
        R2 = _rz(-math.radians(pan)) @ R @ pan_tilt_roll_to_rotation(0.0, tilt, roll)
        T2 = np.eye(4)
        T2[:3, :3] = R2
        T2[:3, 3] = t2
        rel = relative_pose(T, T2)
        p, ti, ro = rotation_to_pan_tilt_roll(rel[:3, :3])
        motion = {
            "kind": kind,
            "pan_deg": round(pan, 4),
            "tilt_deg": round(tilt, 4),
            "roll_deg": round(roll, 4),
            "right_m": round(right, 4),
            "up_m": round(up, 4),
            "forward_m": round(forward, 4),
            "relative_pan_tilt_roll_deg": [round(p, 4), round(ti, 4), round(ro, 4)],
            "relative_translation_m": [round(float(v), 4) for v in rel[:3, 3]],
        }
        return T2, motion

    def multi_view(
        self, n_views: int, min_shared: int, min_unique: int, motions: tuple[str, ...] = MOTIONS
    ) -> tuple[list[np.ndarray], list[dict]]:
        """``n_views`` poses, each a motion of the previous one, such that consecutive views
        share >= ``min_shared`` visible objects and >= ``min_unique`` objects are seen by only
        one of the two (best effort after ``tries`` attempts)."""
        T, vis = self.single_view()
        poses, records = [T], []
        for _ in range(n_views - 1):
            best = None
            for _ in range(self.tries):
                kind = motions[int(self.rng.integers(len(motions)))]
                T2, motion = self._move(poses[-1], kind)
                eye = T2[:3, 3]
                if not (1.0 <= eye[2] <= 2.0) or not self.free_at(eye[:2], 0.3, 0.25):
                    continue
                counts, median = self.probe(T2)
                if median < 0.6:
                    continue
                vis2 = self._visible(counts)
                shared, unique = len(vis & vis2), len(vis ^ vis2)
                motion.update(shared=sorted(vis & vis2), unique=sorted(vis ^ vis2))
                score = (min(shared, min_shared) + min(unique, min_unique), shared)
                if best is None or score > best[0]:
                    best = (score, T2, vis2, motion)
                if shared >= min_shared and unique >= min_unique:
                    break
            if best is None:  # could not move anywhere: keep a small pan in place
                T2, motion = self._move(poses[-1], "pan")
                T2[:3, 3] = poses[-1][:3, 3]
                vis2 = self._visible(self.probe(T2)[0])
                best = (None, T2, vis2, motion)
            _, T2, vis2, motion = best
            poses.append(T2)
            records.append(motion)
            vis = vis2
        return poses, records

    # -- video ------------------------------------------------------------------------------
    def video(self, n_frames: int) -> tuple[list[np.ndarray], str]:
        """``n_frames`` poses of a video and its kind: ``"scan"`` (module docstring), else
        ``"walk"`` (a smooth walk along a spline through free waypoints, looking ahead and
        toward the room), else ``"pan"`` (a slow pan in place) when no clear path exists."""
        scan = self._scan(n_frames)
        if scan is not None:
            return scan, "scan"
        best = None
        for _ in range(self.tries):
            path = self._walk_path(n_frames)
            if path is None:
                continue
            poses = self._walk_poses(path)
            probes = [self.probe(T) for T in poses[:: max(1, n_frames // 8)]]
            seen = [len(self._visible(c)) if m >= 1.0 else 0 for c, m in probes]
            score = sum(min(s, self.min_visible) for s in seen)
            if best is None or score > best[0]:
                best = (score, poses)
            if min(seen) >= 1 and score >= len(seen) * min(2, self.min_visible):
                break
        if best is not None:
            return best[1], "walk"
        return self._pan_in_place(n_frames), "pan"

    # -- room scans -------------------------------------------------------------------------
    def _scan(self, n_frames: int) -> list[np.ndarray] | None:
        """The best-scoring of up to :data:`SCAN_ROUTES` routes x 2 turn directions (the first
        reaching :data:`SCAN_TARGET`), or None when no route fits."""
        if n_frames < 2:
            return None
        grid = FreeGrid.build(
            self.layout.room.bbox,
            lambda xy: self.free_at(xy, PATH_WALL_MARGIN, PATH_OBJECT_MARGIN),
        )
        budget = SCAN_STEP * (n_frames - 1)
        best: tuple[float, list[np.ndarray]] | None = None
        for _ in range(SCAN_ROUTES):
            legs = far_route(grid, self.rng, budget)
            path = None if legs is None else self._smooth_path(legs, n_frames, budget)
            if path is None:
                continue
            height = self.rng.uniform(1.35, 1.7)
            pitch = math.radians(self.rng.uniform(*SCAN_PITCH))
            ahead = path[min(2, n_frames - 1)] - path[0]
            yaw0 = math.atan2(ahead[1], ahead[0]) + math.radians(self.rng.normal(0.0, 10.0))
            first = float(self.rng.choice([-1.0, 1.0]))
            for turn in (first, -first):
                poses = _scan_poses(path, yaw0, turn, pitch, height)
                if self.scan_score is None:
                    return poses
                cover, near = self.scan_score(poses)
                score = cover if near >= SCAN_MIN_DEPTH else cover - 1.0
                if best is None or score > best[0]:
                    best = (score, poses)
                if score >= SCAN_TARGET:
                    return poses
        return None if best is None else best[1]

    def _smooth_path(self, legs: np.ndarray, n_frames: int, budget: float) -> np.ndarray | None:
        """``n_frames`` evenly spaced points (n, 2) along a spline through ``legs``, at most
        ``budget`` metres long; None if the spline leaves free space."""
        dense = _catmull_rom(legs, 24)
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
        span = min(arc[-1], budget)
        kept = dense[arc <= span + 1e-9]
        if not all(self.free_at(p, PATH_WALL_MARGIN, PATH_OBJECT_MARGIN) for p in kept[::2]):
            return None
        s = np.linspace(0.0, span, n_frames)
        return np.stack([np.interp(s, arc, dense[:, 0]), np.interp(s, arc, dense[:, 1])], axis=1)

    def _segment_free(self, a: np.ndarray, b: np.ndarray) -> bool:
        n = max(2, int(np.linalg.norm(b - a) / 0.1))
        return all(
            self.free_at(a + t * (b - a), PATH_WALL_MARGIN, PATH_OBJECT_MARGIN)
            for t in np.linspace(0, 1, n)
        )

    def _walk_path(self, n_frames: int) -> np.ndarray | None:
        k = int(self.rng.integers(3, 6))
        first = self._free_xy()
        if first is None:
            return None
        pts = [first]
        for _ in range(k - 1):  # each waypoint 1-3 m from the previous, in plain sight of it
            for _ in range(30):
                ang = self.rng.uniform(-math.pi, math.pi)
                nxt = pts[-1] + self.rng.uniform(1.0, 3.0) * np.array(
                    [math.cos(ang), math.sin(ang)]
                )
                if self.free_at(nxt) and self._segment_free(pts[-1], nxt):
                    pts.append(nxt)
                    break
            else:
                break
        if len(pts) < 2:
            return None
        pts = np.asarray(pts)
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        if seg.sum() < 1.5:
            return None
        dense = _catmull_rom(pts, 24)
        if not all(self.free_at(p, PATH_WALL_MARGIN, PATH_OBJECT_MARGIN) for p in dense[::2]):
            return None
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
        length = arc[-1]
        step_max = 0.35
        span = min(length, step_max * (n_frames - 1))
        start = self.rng.uniform(0, length - span)
        s = np.linspace(start, start + span, n_frames)
        x = np.interp(s, arc, dense[:, 0])
        y = np.interp(s, arc, dense[:, 1])
        return np.stack([x, y], axis=1)

    def _walk_poses(self, path: np.ndarray) -> list[np.ndarray]:
        n = len(path)
        h = self.rng.uniform(1.35, 1.7)
        pitch = math.radians(self.rng.uniform(8, 20))
        amp = math.radians(self.rng.uniform(10, 30))
        phase = self.rng.uniform(0, 2 * math.pi)
        x0, y0, x1, y1 = self.layout.room.bbox
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        tang = np.gradient(path, axis=0)
        headings = []
        for i in range(n):
            t = tang[i] / max(np.linalg.norm(tang[i]), 1e-9)
            c = centre - path[i]
            c = c / max(np.linalg.norm(c), 1e-9)
            d = 0.4 * t + 0.6 * c
            headings.append(math.atan2(d[1], d[0]))
        headings = np.unwrap(np.asarray(headings))
        kernel = np.ones(5) / 5
        padded = np.pad(headings, 2, mode="edge")
        headings = np.convolve(padded, kernel, mode="valid")
        yaws = [
            headings[i] + amp * math.sin(phase + 2 * math.pi * i / max(n, 16)) for i in range(n)
        ]
        for i in range(1, n):  # at most MAX_TURN per frame: a smooth walk, not a whip pan
            yaws[i] = yaws[i - 1] + float(np.clip(yaws[i] - yaws[i - 1], -MAX_TURN, MAX_TURN))
        poses = []
        for i in range(n):
            yaw = yaws[i]
            eye = np.array([path[i, 0], path[i, 1], h + 0.02 * math.sin(1.3 * i)])
            f = np.array(
                [math.cos(yaw) * math.cos(pitch), math.sin(yaw) * math.cos(pitch), -math.sin(pitch)]
            )
            poses.append(look_at(eye, eye + f))
        return poses

    def _pan_in_place(self, n_frames: int) -> list[np.ndarray]:
        xy = self._free_xy()
        if xy is None:
            raise RuntimeError("no free spot for a camera in this room")
        eye = np.array([xy[0], xy[1], self.rng.uniform(1.35, 1.7)])
        start = self.rng.uniform(-math.pi, math.pi)
        sweep = min(math.radians(self.rng.uniform(120, 240)), MAX_TURN * (n_frames - 1))
        sweep *= float(self.rng.choice([-1, 1]))
        pitch = math.radians(self.rng.uniform(8, 20))
        out = []
        for i in range(n_frames):
            yaw = start + sweep * i / max(n_frames - 1, 1)
            f = np.array(
                [math.cos(yaw) * math.cos(pitch), math.sin(yaw) * math.cos(pitch), -math.sin(pitch)]
            )
            out.append(look_at(eye, eye + f))
        return out


def _scan_poses(
    path: np.ndarray, yaw0: float, turn: float, pitch: float, height: float
) -> list[np.ndarray]:
    """Poses along ``path`` (n, 2): eye at ``height`` (+ a 2 cm bob), yaw ``yaw0`` turning by
    ``turn`` (+1 left / counter-clockwise seen from above, -1 right) at a steady rate (total
    ``min(SCAN_SWEEP, MAX_TURN * (n - 1))``), pitched down ``pitch`` radians, image upright."""
    n = len(path)
    rate = min(SCAN_SWEEP, MAX_TURN * (n - 1)) / max(n - 1, 1)
    out = []
    for i, (x, y) in enumerate(path):
        yaw = yaw0 + turn * rate * i
        eye = np.array([x, y, height + 0.02 * math.sin(1.3 * i)])
        f = np.array(
            [math.cos(yaw) * math.cos(pitch), math.sin(yaw) * math.cos(pitch), -math.sin(pitch)]
        )
        out.append(look_at(eye, eye + f))
    return out


def _catmull_rom(pts: np.ndarray, per_segment: int) -> np.ndarray:
    """Centripetal-free (uniform) Catmull-Rom spline through ``pts`` (K, 2), end points kept."""
    p = np.vstack([pts[0], pts, pts[-1]])
    out = []
    t = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(
            0.5
            * (
                2 * p1
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    out.append(pts[-1][None, :])
    return np.vstack(out)
