"""Frames seen together: multi-image sets (frame 1's camera frame is the world frame) and video
trajectories.

Conventions:

* In a :class:`MultiView`, the reference frame is ``frames[0]``: every box and camera pose is
  expressed in its camera frame (X right, Y down, Z forward; boxes in the VST convention, local
  Y vertical), as the paper's multi-image samples do.
* Directions "in the floor plane" use the scene's gravity-aligned world frame (Z up): compass
  questions project onto world X-Y, which is frame independent.
* A scene's video is its timestamped frames in time order (the synthetic source timestamps its
  walk-through frames only; datasets' RGB-D scans timestamp every frame).

Selection is deterministic: candidates are enumerated in sorted order; tasks sample from them
with their own generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from itertools import combinations

import numpy as np

from vst.engine.context import EngineContext, FrameView
from vst.geometry.cameras import relative_pose
from vst.scenes.model import Frame, Scene


def video_frames(scene: Scene) -> list[Frame]:
    """The scene's timestamped frames in time order (ties broken by frame id)."""
    timed = [f for f in scene.frames if f.timestamp is not None]
    return sorted(timed, key=lambda f: (f.timestamp, f.id))


def video_fps(frames: list[Frame]) -> float:
    """Frame rate of a frame list from its timestamps (1 / median interval); 1.0 if unknown."""
    times = np.array([f.timestamp for f in frames if f.timestamp is not None], dtype=float)
    if len(times) < 2:
        return 1.0
    dt = float(np.median(np.diff(times)))
    return 1.0 / dt if dt > 0 else 1.0


@dataclass
class MultiView:
    """Several frames of one scene; ``frames[0]`` is the reference (its camera frame is the
    world frame of every quantity here). ``views`` are the cached single-frame views."""

    scene: Scene
    frames: list[Frame]
    ctx: EngineContext

    def __post_init__(self) -> None:
        if not self.frames:
            raise ValueError(f"scene {self.scene.id!r}: a multi-view needs at least one frame")
        self._index = {o.id: i for i, o in enumerate(self.scene.objects)}

    @cached_property
    def views(self) -> list[FrameView]:
        return [self.ctx.view(self.scene, f) for f in self.frames]

    @property
    def frame_ids(self) -> list[str]:
        return [f.id for f in self.frames]

    @cached_property
    def world_to_ref(self) -> np.ndarray:
        """4x4 transform from scene world coordinates to the reference camera frame."""
        return self.frames[0].world_to_cam

    @cached_property
    def boxes_ref(self) -> np.ndarray:
        """All scene objects' boxes (N, 9) in the reference camera frame (VST convention),
        aligned with ``scene.objects``."""
        return self.views[0].boxes_cam  # the reference view's cached camera-frame boxes

    def box_ref(self, object_id: int) -> np.ndarray:
        """One object's (9,) box in the reference camera frame."""
        return self.boxes_ref[self._index[object_id]]

    def camera_pose(self, k: int) -> np.ndarray:
        """4x4 pose of camera ``k`` in the reference camera frame (camera k -> reference)."""
        return relative_pose(self.frames[0].cam_to_world, self.frames[k].cam_to_world)

    def visible(self, k: int) -> set[int]:
        """Objects visible enough to ask about in frame ``k`` (see ``FrameView.visible_ids``)."""
        return set(self.views[k].visible_ids)

    @cached_property
    def visible_any(self) -> list[int]:
        """Objects visible enough in at least one frame, sorted."""
        return sorted(set().union(*(self.visible(k) for k in range(len(self.frames)))))

    def seen_in(self, object_id: int) -> list[int]:
        """Indices of the frames where the object is visible enough."""
        return [k for k in range(len(self.frames)) if object_id in self.visible(k)]

    def shared(self) -> list[int]:
        """Objects visible enough in every frame, sorted."""
        return sorted(set.intersection(*(self.visible(k) for k in range(len(self.frames)))))

    def unique_to(self, k: int) -> list[int]:
        """Objects visible in frame ``k`` and in no other frame at all (not even a pixel)."""
        others = set()
        for j, view in enumerate(self.views):
            if j != k:
                others |= {o for o, c in view.pixel_counts.items() if c > 0}
        return sorted(self.visible(k) - others)

    def label_is_unique(self, object_id: int) -> bool:
        """True if no other object with the same label is visible (any pixel) in any frame."""
        label = self.scene.object(object_id).label
        for view in self.views:
            for o, c in view.pixel_counts.items():
                if o != object_id and c > 0 and self.scene.object(o).label == label:
                    return False
        return True


def frame_pairs(
    ctx: EngineContext,
    scene: Scene,
    min_shared: int = 1,
    min_unique: int = 0,
    frames: list[Frame] | None = None,
) -> list[tuple[Frame, Frame]]:
    """Ordered pairs (frame 1, frame 2) of distinct frames that share at least ``min_shared``
    askable objects and each show at least ``min_unique`` objects the other does not; sorted by
    frame ids. Both orders of a pair are listed (the reference frame matters). Computed once
    per scene and context (``ctx.memo``)."""
    frames = sorted(frames if frames is not None else scene.frames, key=lambda f: f.id)
    key = ("frame_pairs", scene.id, min_shared, min_unique, tuple(f.id for f in frames))
    return list(ctx.memo(key, lambda: _frame_pairs(ctx, scene, frames, min_shared, min_unique)))


def _frame_pairs(
    ctx: EngineContext, scene: Scene, frames: list[Frame], min_shared: int, min_unique: int
) -> list[tuple[Frame, Frame]]:
    visible = {f.id: set(ctx.view(scene, f).visible_ids) for f in frames}
    seen = {f.id: {o for o, c in ctx.view(scene, f).pixel_counts.items() if c > 0} for f in frames}
    out = []
    for a, b in combinations(frames, 2):
        shared = visible[a.id] & visible[b.id]
        if len(shared) < min_shared:
            continue
        if (
            len(visible[a.id] - seen[b.id]) < min_unique
            or len(visible[b.id] - seen[a.id]) < min_unique
        ):
            continue
        out.extend([(a, b), (b, a)])
    return sorted(out, key=lambda p: (p[0].id, p[1].id))
