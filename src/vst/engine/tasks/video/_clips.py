"""Video clips for the video tasks: which frames of a scene's trajectory a sample shows.

A :class:`Clip` is a time-ordered list of a scene's timestamped frames (see
:func:`vst.engine.multiview.video_frames`), subsampled evenly to at most ``max_frames``
(:data:`DEFAULT_MAX_FRAMES`), with its effective frame rate ``fps`` (after subsampling: the
number of intervals over the clip's duration, so ``1 / fps`` is the mean time between the
frames the model sees).

Typical use in a task::

    from vst.engine.tasks.video._clips import candidate_clips, clip_from_meta

    for clip in candidate_clips(scene, rng, windows=2):      # whole video + random windows
        views = clip.views(ctx)                              # cached FrameViews, time order
        ...
        sample = Sample(
            messages=[user(VIDEO, question), assistant(answer)],
            images=[],
            videos=[clip.images(ctx)],                       # shared (unmarked) model images
            meta={**clip.meta(), "scene_id": scene.id, ...}, # frame_ids + video_fps
            ...
        )

    # in derive_answer(scene, meta):
    clip = clip_from_meta(scene, meta)
    views = clip.gt_views()                                  # cached default-settings views

Per-object visibility over a clip: :func:`pixel_series` (mask pixels per frame, frame
resolution), :func:`first_frame_at` (first clip frame where a count reaches a threshold) and
:func:`label_sightings` (per category: which instances are seen clearly or only faintly, and
when the category is first seen).

Conventions: frame indices in a clip are 0-based positions in ``clip.frames``; pixel counts are
``FrameView.pixel_counts`` (mask pixels at the frame's own resolution); windows are contiguous
runs of the trajectory (before subsampling). Everything is deterministic given ``rng``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from vst.engine.context import EngineContext, EngineSettings, FrameView
from vst.engine.multiview import video_fps, video_frames
from vst.engine.registry import Task, TaskNeeds
from vst.scenes.model import Frame, Scene

__all__ = [
    "DEFAULT_MAX_FRAMES",
    "MIN_CLIP_FRAMES",
    "Clip",
    "Sightings",
    "candidate_clips",
    "clear_series",
    "clip_from_meta",
    "clip_windows",
    "effective_fps",
    "first_frame_at",
    "label_sightings",
    "make_clip",
    "pixel_series",
    "scene_clip",
    "subsample_indices",
]

DEFAULT_MAX_FRAMES = 16
"""Clips show at most this many frames (long trajectories are subsampled evenly)."""

MIN_CLIP_FRAMES = 4
"""Clips (and random windows) have at least this many frames."""


def subsample_indices(n: int, max_frames: int = DEFAULT_MAX_FRAMES) -> list[int]:
    """Evenly spread indices into ``range(n)``: all of them when ``n <= max_frames``, else
    ``max_frames`` indices from the first to the last (rounded ``linspace``, strictly
    increasing)."""
    if n <= 0:
        return []
    if max_frames <= 0:
        raise ValueError(f"max_frames must be positive, got {max_frames}")
    if n <= max_frames:
        return list(range(n))
    if max_frames == 1:
        return [0]
    return [int(i) for i in np.linspace(0, n - 1, max_frames).round().astype(int)]


def effective_fps(frames: Sequence[Frame], fallback: float = 1.0) -> float:
    """Frame rate of a subsampled frame list: ``(k - 1) / (t_last - t_first)`` from the
    timestamps (the mean rate, what the model is told); ``fallback`` when it is undefined (one
    frame, missing or equal timestamps). Rounded to 6 decimals (stable in JSON)."""
    times = [f.timestamp for f in frames]
    if len(frames) < 2 or any(t is None for t in times):
        return float(fallback)
    span = float(times[-1]) - float(times[0])
    if span <= 0:
        return float(fallback)
    return round((len(frames) - 1) / span, 6)


_GT_VIEWS: OrderedDict[tuple[int, str, EngineSettings], tuple[Scene, FrameView]] = OrderedDict()
_GT_VIEWS_MAX = 64


def _gt_view(scene: Scene, frame: Frame, settings: EngineSettings) -> FrameView:
    """A cached view for ``derive_answer`` (the last few clips' frames are kept)."""
    key = (id(scene), frame.id, settings)
    hit = _GT_VIEWS.get(key)
    if hit is not None and hit[0] is scene:
        _GT_VIEWS.move_to_end(key)
        return hit[1]
    view = FrameView(scene, frame, settings)
    _GT_VIEWS[key] = (scene, view)  # holding the scene keeps id(scene) from being reused
    while len(_GT_VIEWS) > _GT_VIEWS_MAX:
        _GT_VIEWS.popitem(last=False)
    return view


@dataclass(frozen=True)
class Clip:
    """Frames of one scene shown as a video, in time order, at ``fps`` frames per second."""

    scene: Scene
    frames: tuple[Frame, ...]
    fps: float

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def frame_ids(self) -> list[str]:
        return [f.id for f in self.frames]

    def views(self, ctx: EngineContext) -> list[FrameView]:
        """The frames' cached views (``ctx.view``), in time order."""
        return [ctx.view(self.scene, f) for f in self.frames]

    def gt_views(self, settings: EngineSettings | None = None) -> list[FrameView]:
        """Views for ``derive_answer`` (no context there): ``settings`` (default
        ``EngineSettings()``), cached across calls so checking many samples of one clip reads
        each frame once."""
        s = settings or EngineSettings()
        return [_gt_view(self.scene, f, s) for f in self.frames]

    def images(self, ctx: EngineContext) -> list[Image.Image]:
        """The frames as the model sees them: ``FrameView.shared_model_image()`` (shared, do
        not draw on them), one per frame. Pass as ``Sample(videos=[clip.images(ctx)])``."""
        return [v.shared_model_image() for v in self.views(ctx)]

    def meta(self) -> dict[str, Any]:
        """``{"frame_ids": [...], "video_fps": fps}`` for the sample's ``meta``."""
        return {"frame_ids": self.frame_ids, "video_fps": self.fps}

    @property
    def has_pixel_info(self) -> bool:
        """True if every frame has an instance mask or per-object pixel counts (without them
        an object's absence from a frame cannot be told from a missing annotation)."""
        return all(f.mask is not None or f.visible_pixels for f in self.frames)

    def visible_any(self, ctx: EngineContext) -> list[int]:
        """Objects visible enough to ask about (``FrameView.visible_ids``) in at least one
        frame, sorted."""
        out: set[int] = set()
        for view in self.views(ctx):
            out.update(view.visible_ids)
        return sorted(out)


def make_clip(scene: Scene, frames: Sequence[Frame], max_frames: int = DEFAULT_MAX_FRAMES) -> Clip:
    """A clip of ``frames`` (time-ordered), subsampled evenly to at most ``max_frames``; its
    ``fps`` is :func:`effective_fps` of the kept frames (falling back to the full list's
    :func:`~vst.engine.multiview.video_fps`)."""
    frames = list(frames)
    if not frames:
        raise ValueError(f"scene {scene.id!r}: a clip needs at least one frame")
    kept = [frames[i] for i in subsample_indices(len(frames), max_frames)]
    return Clip(scene, tuple(kept), effective_fps(kept, fallback=video_fps(frames)))


def scene_clip(scene: Scene, max_frames: int = DEFAULT_MAX_FRAMES) -> Clip | None:
    """The whole trajectory (:func:`~vst.engine.multiview.video_frames`) as one clip, or None
    when the scene has fewer than :data:`MIN_CLIP_FRAMES` timestamped frames."""
    frames = video_frames(scene)
    if len(frames) < MIN_CLIP_FRAMES:
        return None
    return make_clip(scene, frames, max_frames)


def clip_windows(
    scene: Scene,
    rng: np.random.Generator,
    count: int,
    min_frames: int = MIN_CLIP_FRAMES,
    max_frames: int = DEFAULT_MAX_FRAMES,
) -> list[Clip]:
    """Up to ``count`` random contiguous windows of the trajectory ("this part of the video"),
    each subsampled to at most ``max_frames``: length uniform in ``[min_frames, n - 1]``, start
    uniform. Never the whole trajectory; duplicates dropped; in draw order."""
    frames = video_frames(scene)
    n = len(frames)
    if n - 1 < min_frames or count <= 0:
        return []
    out: list[Clip] = []
    seen: set[tuple[int, int]] = set()
    for _ in range(count):
        length = int(rng.integers(min_frames, n))  # n - 1 at most
        start = int(rng.integers(0, n - length + 1))
        if (start, length) in seen:
            continue
        seen.add((start, length))
        out.append(make_clip(scene, frames[start : start + length], max_frames))
    return out


def candidate_clips(
    scene: Scene,
    rng: np.random.Generator,
    windows: int = 2,
    min_frames: int = MIN_CLIP_FRAMES,
    max_frames: int = DEFAULT_MAX_FRAMES,
) -> list[Clip]:
    """The whole-video clip (first) plus up to ``windows`` random windows
    (:func:`clip_windows`); clips showing the same frames are kept once. Empty when the scene
    has no usable video."""
    full = scene_clip(scene, max_frames)
    if full is None:
        return []
    out = [full]
    seen = {tuple(full.frame_ids)}
    for clip in clip_windows(scene, rng, windows, min_frames, max_frames):
        if tuple(clip.frame_ids) not in seen:
            seen.add(tuple(clip.frame_ids))
            out.append(clip)
    return out


def clip_from_meta(scene: Scene, meta: Mapping[str, Any]) -> Clip:
    """The clip of a sample: ``meta["frame_ids"]`` in that order at ``meta["video_fps"]``."""
    frames = tuple(scene.frame(fid) for fid in meta["frame_ids"])
    return Clip(scene, frames, float(meta["video_fps"]))


def pixel_series(
    views: Sequence[FrameView], object_ids: Iterable[int] | None = None
) -> dict[int, list[int]]:
    """Object id -> its mask pixel count in each view (frame resolution, 0 where unseen), for
    ``object_ids`` (default: every scene object with pixels in some view), sorted by id."""
    known = {o.id for o in views[0].scene.objects} if views else set()
    if object_ids is None:
        ids: set[int] = set()
        for v in views:
            ids.update(o for o, c in v.pixel_counts.items() if c > 0 and o in known)
    else:
        ids = {int(o) for o in object_ids}
    return {o: [int(v.pixel_counts.get(o, 0)) for v in views] for o in sorted(ids)}


def first_frame_at(counts: Sequence[int], threshold: int) -> int | None:
    """Index of the first entry of ``counts`` that is ``>= threshold`` (None if none)."""
    for k, c in enumerate(counts):
        if c >= threshold:
            return k
    return None


@dataclass(frozen=True)
class Sightings:
    """How one category shows up in a clip, with two pixel thresholds (frame resolution):
    ``clear`` (e.g. ``min_object_pixels``) and ``faint`` (< ``clear``), and a visible fraction
    ``min_fraction`` (e.g. ``min_visible_fraction``). An instance is *clear* in a frame when it
    has ``>= clear`` pixels there and shows at least ``min_fraction`` of its silhouette
    (:meth:`FrameView.visible_fraction`).

    ``clear_ids``: instances clear in some frame; ``faint_ids``: the others whose largest count
    is ``>= faint`` (glimpsed, or seen only mostly hidden: neither clearly seen nor clearly
    absent); ``first_clear`` / ``first_faint``: the first clip frame where any instance is clear
    / has ``>= faint`` pixels (None if never; ``first_faint <= first_clear``)."""

    label: str
    clear_ids: tuple[int, ...]
    faint_ids: tuple[int, ...]
    first_clear: int | None
    first_faint: int | None

    @property
    def ambiguous(self) -> bool:
        """True when some instance is only glimpsed (its count in the clip is unclear)."""
        return bool(self.faint_ids)


def clear_series(
    views: Sequence[FrameView], series: Mapping[int, Sequence[int]], clear: int, min_fraction: float
) -> dict[int, list[bool]]:
    """Object id -> whether it is clear in each view: ``>= clear`` pixels (``series``, as
    :func:`pixel_series`) and a visible fraction ``>= min_fraction``."""
    out: dict[int, list[bool]] = {o: [] for o in series}
    for k, view in enumerate(views):
        sharp = [o for o, counts in series.items() if counts[k] >= clear]
        fractions = view.visible_fractions(sharp)
        for o in series:
            out[o].append(o in fractions and fractions[o] >= min_fraction)
    return out


def label_sightings(
    views: Sequence[FrameView], clear: int, faint: int, min_fraction: float = 0.0
) -> dict[str, Sightings]:
    """:class:`Sightings` of every category with an instance of ``>= faint`` pixels in some
    view, by label (sorted)."""
    if not 0 < faint <= clear:
        raise ValueError(f"need 0 < faint <= clear, got faint={faint}, clear={clear}")
    series = pixel_series(views)
    by_label: dict[str, list[int]] = {}
    for oid, counts in series.items():
        if max(counts) >= faint:
            by_label.setdefault(views[0].object(oid).label, []).append(oid)
    out = {}
    for label in sorted(by_label):
        ids = by_label[label]
        sharp = clear_series(views, {o: series[o] for o in ids}, clear, min_fraction)
        best = [max(c) for c in zip(*(series[o] for o in ids), strict=True)]
        any_clear = [any(c) for c in zip(*(sharp[o] for o in ids), strict=True)]
        out[label] = Sightings(
            label=label,
            clear_ids=tuple(o for o in ids if any(sharp[o])),
            faint_ids=tuple(o for o in ids if not any(sharp[o])),
            first_clear=any_clear.index(True) if any(any_clear) else None,
            first_faint=first_frame_at(best, faint),
        )
    return out


class SightingTask(Task):
    """Base of the video tasks that read which categories a clip shows, clearly or faintly
    (:func:`label_sightings`): random trajectory windows, the clip length, and the pixel
    thresholds of a run."""

    scenario = "video"
    needs = TaskNeeds(mask=True, min_frames=MIN_CLIP_FRAMES)

    MAX_FRAMES: ClassVar[int] = DEFAULT_MAX_FRAMES
    """Clips show at most this many frames (subsampled evenly)."""
    WINDOWS: ClassVar[int] = 3
    """Random windows of the trajectory tried besides the whole video."""
    FAINT_FRACTION: ClassVar[float] = 0.125
    """``faint`` = ``ceil(clear * FAINT_FRACTION)`` pixels: a glimpse of a category or instance
    (below ``clear``, above ``faint`` is neither clearly seen nor unseen)."""

    def thresholds(self, ctx: EngineContext) -> tuple[int, int]:
        """``(clear, faint)`` pixel thresholds of a run (the visible-fraction threshold is
        ``ctx.settings.min_visible_fraction``)."""
        clear = int(ctx.settings.min_object_pixels)
        return clear, max(1, math.ceil(clear * self.FAINT_FRACTION))
